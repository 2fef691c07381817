-- The payment password (支付密码) of a wallet: a slow salted hash of it, never the PIN itself,
-- and the wrong tries in a row that lock it. Kept in MariaDB, not in a node's memory or Redis,
-- so that the count holds across nodes and restarts. The hash is compared byte for byte
-- (ascii_bin): base64 is case-sensitive.
CREATE TABLE wallet_pins (
    user_id      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    pin_hash     VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
        COMMENT '$scrypt$ln=…,r=…,p=…$salt$hash: the parameters beside the hash they made',
    wrong        TINYINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT 'wrong tries in a row since the last right one or the last lock',
    locked_until INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'refused, the right PIN too, until then',
    update_time  INT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
