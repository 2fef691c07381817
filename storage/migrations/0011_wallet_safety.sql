-- Wallet safety: frozen accounts, daily limits on sending, and withdrawals (kind 'withdraw').

-- A frozen user still connects and reads, but may not create, pay, grab or withdraw. Every
-- change of `frozen` adds one to `frozen_version`, so that nodes hearing of changes in another
-- order than they were made keep the latest (rtserver/frozen.py).
ALTER TABLE users
    ADD COLUMN frozen TINYINT NOT NULL DEFAULT 0 COMMENT '1: may not create, pay, grab or withdraw',
    ADD COLUMN frozen_reason VARCHAR(200) NOT NULL DEFAULT '' COMMENT 'why, as the back end said',
    ADD COLUMN frozen_time INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'when frozen or thawed last',
    ADD COLUMN frozen_version INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'changes of frozen so far',
    ADD KEY frozen_changes (frozen_version);

-- What a user sent on a Beijing day (UTC+8), against --daily-send-limit and --daily-send-count:
-- the packets counted on that day (red_packet.send_day), paid or still payable. A create adds
-- itself here in its own transaction and is rolled back if the totals pass the limit (the row
-- lock makes one user's creates count one after another); a void, or an unpaid packet's
-- --payment-timeout, gives its place back (rtserver/daily.py).
CREATE TABLE daily_sends (
    user_id     BIGINT UNSIGNED NOT NULL,
    day         DATE NOT NULL COMMENT 'the Beijing day',
    packets     INT UNSIGNED NOT NULL DEFAULT 0,
    amount      DECIMAL(14,2) NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

ALTER TABLE red_packet
    ADD COLUMN send_day DATE NULL
        COMMENT 'the daily_sends row that counts it, NULL for none (voided, or unpaid and lapsed)',
    ADD KEY counted_on (user_id, send_day),
    ADD KEY unpaid_holds (pay_status, send_day, add_time);

ALTER TABLE wallet_ledger
    MODIFY kind VARCHAR(16) NOT NULL COMMENT 'deposit, withdraw, pay, grab, refund, void_refund';
