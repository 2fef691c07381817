-- Round trips with the payment providers. An order remembers what the provider gave the app
-- (WeChat Pay's prepay_id, UnionPay's tn), so that a repeated create answers the same order,
-- and when to ask the provider about it if no notification came.
ALTER TABLE payment_orders
    ADD COLUMN placed VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL
        COMMENT 'the provider''s reference for the app: prepay_id or tn, NULL until placed',
    ADD COLUMN queries SMALLINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'queries made without an answer',
    ADD COLUMN next_query INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'when to query it next',
    ADD KEY to_query (next_query);

-- A refund of provider money back to where it came from (WeChat: 原路退回). It is written in the
-- transaction that takes the money out of its packet (or that receives a payment for a voided
-- one), and then sent, and retried, with the same out_refund_no until the provider accepts it.
-- (kind, ref) names its cause as the ledger would: 'refund' and the packet id for the expiry
-- refund, 'void_refund' and provider:trade_no for a payment that came after its packet's void.
CREATE TABLE provider_refunds (
    out_refund_no VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY,
    kind          VARCHAR(16) NOT NULL COMMENT 'refund or void_refund',
    ref           VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    provider      VARCHAR(16) NOT NULL,
    out_trade_no  VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    trade_no      VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    rp_id         BIGINT UNSIGNED NOT NULL,
    user_id       BIGINT UNSIGNED NOT NULL COMMENT 'who paid, and gets it back',
    amount        DECIMAL(10,2) NOT NULL,
    state         VARCHAR(16) NOT NULL DEFAULT 'requested'
        COMMENT 'requested, accepted (the provider took it), succeeded, or failed (credited to the balance instead)',
    refund_id     VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'the provider''s refund number',
    answers       TEXT NOT NULL COMMENT 'what the provider said, newest last: states and messages only',
    tries         SMALLINT UNSIGNED NOT NULL DEFAULT 0,
    next_try      INT UNSIGNED NOT NULL DEFAULT 0,
    add_time      INT UNSIGNED NOT NULL,
    update_time   INT UNSIGNED NOT NULL,
    UNIQUE KEY one_refund_per_cause (kind, ref),
    KEY to_send (state, next_try)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
