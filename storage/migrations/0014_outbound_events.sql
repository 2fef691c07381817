-- Events for the chat app's back end (--events-url): each row is written in the transaction
-- of the change it reports, and delivered at least once by a job on every node.
--
-- A row is pending until a POST of it is answered 2xx (delivered) or its deadline passes
-- (failed; `POST /admin/events/replay` makes it pending again with a new deadline). A node
-- claims due rows with a guarded update (claimed_by, claim_until), so that two nodes send a
-- row at once only when the first one's claim ran out. Delivered rows are deleted a week on.
-- Times are unix milliseconds.
CREATE TABLE outbound_events (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    type         VARCHAR(32) NOT NULL COMMENT 'packet.sent, packet.grabbed, ...',
    rp_id        BIGINT UNSIGNED NOT NULL,
    data         TEXT NOT NULL COMMENT 'JSON, as sent',
    created      BIGINT UNSIGNED NOT NULL,
    state        TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT '0 pending, 1 delivered, 2 failed',
    tries        INT UNSIGNED NOT NULL DEFAULT 0,
    next_try     BIGINT UNSIGNED NOT NULL,
    deadline     BIGINT UNSIGNED NOT NULL COMMENT 'retried until then',
    claimed_by   CHAR(16) NULL,
    claim_until  BIGINT UNSIGNED NOT NULL DEFAULT 0,
    last_error   VARCHAR(255) NULL,
    delivered    BIGINT UNSIGNED NULL,
    KEY due (state, next_try),
    KEY by_state (state, id),
    KEY by_claim (claimed_by),
    KEY old (state, delivered)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
