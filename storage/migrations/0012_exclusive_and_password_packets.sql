-- 专属红包 name the one member who may open them (to_user); 口令红包 carry the phrase (password)
-- a member must say to open them. Both are fixed at creation and NULL on every other packet.
ALTER TABLE red_packet
    ADD COLUMN to_user BIGINT UNSIGNED NULL COMMENT 'the one member an exclusive packet is for' AFTER for_id,
    ADD COLUMN password VARCHAR(20) NULL COMMENT 'the phrase of a 口令红包, as the sender set it' AFTER intro;
