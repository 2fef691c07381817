-- Users, chat groups and their members, provisioned by the chat app through the admin API.
CREATE TABLE users (
    id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name        VARCHAR(64) NOT NULL,
    add_time    INT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE chat_groups (
    id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name        VARCHAR(64) NOT NULL,
    add_time    INT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE group_members (
    group_id    BIGINT UNSIGNED NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    add_time    INT UNSIGNED NOT NULL,
    PRIMARY KEY (group_id, user_id),
    KEY member_of (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
