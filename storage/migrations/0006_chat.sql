-- Chat messages, kept so that a reconnecting client can catch up. `room` is 'g:GROUP' or
-- 'u:LOW:HIGH' (the two user ids of a 1:1 chat), so both sides read one index.
CREATE TABLE chat_messages (
    id        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room      VARCHAR(48) NOT NULL,
    to_type   VARCHAR(8) NOT NULL,
    to_id     BIGINT UNSIGNED NOT NULL,
    from_id   BIGINT UNSIGNED NOT NULL,
    kind      VARCHAR(8) NOT NULL COMMENT 'text or packet',
    text      VARCHAR(2000) NOT NULL DEFAULT '',
    rp_id     BIGINT UNSIGNED NULL,
    add_time  INT UNSIGNED NOT NULL,
    KEY by_room (room, id),
    UNIQUE KEY one_message_per_packet (rp_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
