-- Third-party payment orders and the notifications received for them. A notification is unique
-- per provider trade and outcome: Alipay tells WAIT_BUYER_PAY and then TRADE_SUCCESS for one trade.
CREATE TABLE payment_orders (
    out_trade_no VARCHAR(64) NOT NULL PRIMARY KEY,
    rp_id        BIGINT UNSIGNED NOT NULL,
    provider     VARCHAR(16) NOT NULL,
    amount       DECIMAL(10,2) NOT NULL,
    sync_result  TEXT NULL COMMENT 'what the app reported synchronously, never trusted for money',
    add_time     INT UNSIGNED NOT NULL,
    UNIQUE KEY one_order_per_packet (rp_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE payment_notifications (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    provider     VARCHAR(16) NOT NULL,
    trade_no     VARCHAR(64) NOT NULL,
    out_trade_no VARCHAR(64) NOT NULL,
    amount       DECIMAL(10,2) NOT NULL,
    status       VARCHAR(16) NOT NULL COMMENT 'accepted (money arrived) or unpaid',
    body         TEXT NOT NULL,
    add_time     INT UNSIGNED NOT NULL,
    UNIQUE KEY one_per_trade_outcome (provider, trade_no, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
