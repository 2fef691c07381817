-- Later additions: the share's slot number, one share per user enforced by the database itself,
-- the refund marker, the client's idempotency key, the expiry instant fixed at payment, and when
-- the last share was taken (expend_time alone cannot tell: a packet emptied within a second has 0).
ALTER TABLE red_packet
    ADD COLUMN client_key VARCHAR(64) NULL AFTER trade_no,
    ADD COLUMN expire_time INT UNSIGNED NOT NULL DEFAULT 0 AFTER pay_time,
    ADD COLUMN finish_time INT UNSIGNED NOT NULL DEFAULT 0 AFTER expire_time,
    ADD UNIQUE KEY one_per_client_key (user_id, client_key);

ALTER TABLE red_packet_log
    ADD COLUMN seq SMALLINT UNSIGNED NOT NULL AFTER rp_id,
    ADD COLUMN is_refunded TINYINT NOT NULL DEFAULT 0 COMMENT '1 when returned by the expiry refund' AFTER is_into_account,
    ADD UNIQUE KEY one_share_per_slot (rp_id, seq),
    ADD UNIQUE KEY one_share_per_user (rp_id, user_id),
    ADD KEY to_settle (is_into_account, update_time);
