-- WeChat's rule for late joiners and leavers, and the notices it keeps in the chat.
--
-- group_members stays the current membership, its add_time when each member last joined (a
-- member removed loses the row; added again, they get a new one). The history keeps every
-- span: joined, and left (NULL while still a member).
CREATE TABLE group_membership_history (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    group_id     BIGINT UNSIGNED NOT NULL,
    user_id      BIGINT UNSIGNED NOT NULL,
    joined_time  INT UNSIGNED NOT NULL,
    left_time    INT UNSIGNED NULL,
    KEY by_member (group_id, user_id, joined_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO group_membership_history (group_id, user_id, joined_time)
    SELECT group_id, user_id, add_time FROM group_members ORDER BY add_time, group_id, user_id;

-- A notice (kind 'notice') is for one user of its room (for_user); every other message is for
-- the whole room (NULL). `notice` is its JSON: code, rp_id and what the code tells. by_time
-- finds the first message a member who joined at a given second may read, so that reading a
-- long room's history from there never scans what was sent before.
ALTER TABLE chat_messages
    MODIFY COLUMN kind VARCHAR(8) NOT NULL COMMENT 'text, packet or notice',
    ADD COLUMN for_user BIGINT UNSIGNED NULL AFTER from_id,
    ADD COLUMN notice VARCHAR(1000) NULL AFTER rp_id,
    ADD KEY by_time (room, add_time);
