-- The red packet and its shares, as in the original design, with the columns correctness needs.
CREATE TABLE red_packet (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id       BIGINT UNSIGNED NOT NULL COMMENT 'sender',
    for_id        BIGINT UNSIGNED NOT NULL COMMENT 'recipient user (personal) or group',
    pay_status    TINYINT NOT NULL DEFAULT 0 COMMENT '0 unpaid, 1 paid, 2 awaiting settlement, 3 voided',
    pay_type      TINYINT NOT NULL DEFAULT 0 COMMENT '0 balance, 1 Alipay, 2 WeChat Pay, 3 UnionPay, 4 sandbox',
    trade_no      VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'the payment provider''s trade number',
    type          TINYINT NOT NULL COMMENT '1 personal, 2 group normal, 3 group lucky',
    intro         VARCHAR(100) NOT NULL,
    number        SMALLINT UNSIGNED NOT NULL,
    total_money   DECIMAL(10,2) NOT NULL,
    single_money  DECIMAL(10,2) NOT NULL DEFAULT 0 COMMENT '0 for lucky packets',
    return_money  DECIMAL(10,2) NOT NULL DEFAULT 0 COMMENT 'refunded by the expiry job',
    is_cli_handle TINYINT NOT NULL DEFAULT 0 COMMENT '1 once the expiry refund is done',
    expend_time   INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'seconds from payment to the last share taken',
    add_time      INT UNSIGNED NOT NULL,
    pay_time      INT UNSIGNED NOT NULL DEFAULT 0,
    KEY sent_by (user_id, id),
    KEY to_refund (pay_status, is_cli_handle, pay_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE red_packet_log (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    rp_id           BIGINT UNSIGNED NOT NULL,
    user_id         BIGINT UNSIGNED NULL COMMENT 'grabber, NULL until grabbed',
    money           DECIMAL(10,2) NOT NULL,
    is_good         TINYINT NOT NULL DEFAULT 0 COMMENT '手气最佳',
    is_into_account TINYINT NOT NULL DEFAULT 0 COMMENT '0 not yet credited, 1 credited',
    add_time        INT UNSIGNED NOT NULL,
    update_time     INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'grab time',
    KEY grabbed_by (user_id, update_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
