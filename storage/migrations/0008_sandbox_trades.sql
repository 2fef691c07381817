-- The --dev sandbox gateway's record of what it paid: one trade per order, so that paying an
-- order again answers the same trade and notifies nothing, on any node and after a restart.
CREATE TABLE sandbox_trades (
    out_trade_no VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY,
    trade_no     VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    status       VARCHAR(16) NOT NULL COMMENT 'SUCCESS or FAILED, as the first payer chose',
    add_time     INT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
