-- Wallets and the wallet ledger (流水). Every balance change writes one ledger row in the same
-- transaction; (kind, ref) is unique, so the same movement can never be booked twice.
CREATE TABLE wallets (
    user_id     BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    balance     DECIMAL(12,2) NOT NULL DEFAULT 0,
    update_time INT UNSIGNED NOT NULL,
    CONSTRAINT balance_not_negative CHECK (balance >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE wallet_ledger (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id     BIGINT UNSIGNED NOT NULL,
    kind        VARCHAR(16) NOT NULL COMMENT 'deposit, pay, grab, refund, void_refund',
    ref         VARCHAR(128) NOT NULL COMMENT 'what caused it: deposit ref, packet id, share id, provider:trade',
    amount      DECIMAL(12,2) NOT NULL COMMENT 'signed: debits are negative',
    balance     DECIMAL(12,2) NOT NULL COMMENT 'the balance after this movement',
    add_time    INT UNSIGNED NOT NULL,
    UNIQUE KEY one_movement (kind, ref),
    KEY by_user (user_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
