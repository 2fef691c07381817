-- References that come from outside (deposit refs, client keys, order and provider trade numbers)
-- are compared byte for byte. The default utf8mb4_general_ci makes 'abc', 'ABC' and 'ábc' one
-- reference, and even utf8mb4_bin pads, so that 'abc ' is 'abc': utf8mb4_nopad_bin does neither.
-- Every unique key stays; its columns only compare differently.
ALTER TABLE wallet_ledger
    MODIFY ref VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        COMMENT 'what caused it: deposit ref, packet id, share id, provider:trade';

ALTER TABLE red_packet
    MODIFY trade_no VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        DEFAULT '' COMMENT 'the payment provider''s trade number',
    MODIFY client_key VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL;

ALTER TABLE payment_orders
    MODIFY out_trade_no VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;

ALTER TABLE payment_notifications
    MODIFY trade_no VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY out_trade_no VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
