"""Users, chat groups and members."""
from storage.db import marks


async def put_user(cur, user_id: int, name: str, now: int) -> None:
    await cur.execute(
        "INSERT INTO users (id, name, add_time) VALUES (%s, %s, %s) "
        "ON DUPLICATE KEY UPDATE name = VALUES(name)", (user_id, name, now))
    await cur.execute(
        "INSERT IGNORE INTO wallets (user_id, balance, update_time) VALUES (%s, 0, %s)",
        (user_id, now))


async def get_user(cur, user_id: int) -> dict | None:
    await cur.execute("SELECT id, name FROM users WHERE id = %s", (user_id,))
    return await cur.fetchone()


async def names(cur, user_ids) -> dict[int, str]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    await cur.execute(f"SELECT id, name FROM users WHERE id IN ({marks(ids)})",
                      ids)
    return {row["id"]: row["name"] for row in await cur.fetchall()}


async def missing_users(cur, user_ids) -> list[int]:
    known = await names(cur, user_ids)
    return sorted(set(user_ids) - set(known))


async def put_group(cur, group_id: int, name: str, now: int) -> None:
    await cur.execute(
        "INSERT INTO chat_groups (id, name, add_time) VALUES (%s, %s, %s) "
        "ON DUPLICATE KEY UPDATE name = VALUES(name)", (group_id, name, now))


async def get_group(cur, group_id: int) -> dict | None:
    await cur.execute("SELECT id, name FROM chat_groups WHERE id = %s", (group_id,))
    return await cur.fetchone()


async def member_ids(cur, group_id: int) -> list[int]:
    await cur.execute("SELECT user_id FROM group_members WHERE group_id = %s ORDER BY user_id",
                      (group_id,))
    return [row["user_id"] for row in await cur.fetchall()]


async def members_since(cur, group_id: int) -> dict[int, int]:
    """The group's members, each with when they last joined it."""
    await cur.execute("SELECT user_id, add_time FROM group_members WHERE group_id = %s",
                      (group_id,))
    return {row["user_id"]: row["add_time"] for row in await cur.fetchall()}


async def member_since(cur, group_id: int, user_id: int) -> int | None:
    """When the user last joined the group; None when they are not in it."""
    await cur.execute("SELECT add_time FROM group_members WHERE group_id = %s AND user_id = %s",
                      (group_id, user_id))
    row = await cur.fetchone()
    return None if row is None else row["add_time"]


async def add_members(cur, group_id: int, user_ids, now: int) -> list[int]:
    """Add members, joined now (kept in the history too); return those who were not members
    before."""
    before = set(await member_ids(cur, group_id))
    added = sorted(set(user_ids) - before)
    if added:
        await cur.executemany(
            "INSERT IGNORE INTO group_members (group_id, user_id, add_time) VALUES (%s, %s, %s)",
            [(group_id, uid, now) for uid in added])
        await cur.executemany(
            "INSERT INTO group_membership_history (group_id, user_id, joined_time)"
            " VALUES (%s, %s, %s)", [(group_id, uid, now) for uid in added])
    return added


async def remove_members(cur, group_id: int, user_ids, now: int) -> list[int]:
    """Remove members, left now (their open span of the history closed); return those who were
    members."""
    removed = []
    for uid in sorted(set(user_ids)):
        await cur.execute("DELETE FROM group_members WHERE group_id = %s AND user_id = %s",
                          (group_id, uid))
        if cur.rowcount:
            removed.append(uid)
            await cur.execute(
                "UPDATE group_membership_history SET left_time = %s"
                " WHERE group_id = %s AND user_id = %s AND left_time IS NULL", (now, group_id, uid))
    return removed


async def membership_history(cur, group_id: int, user_id: int) -> list[dict]:
    """Every span the user was in the group, oldest first: joined_time, left_time (None: still)."""
    await cur.execute(
        "SELECT joined_time, left_time FROM group_membership_history"
        " WHERE group_id = %s AND user_id = %s ORDER BY joined_time, id", (group_id, user_id))
    return list(await cur.fetchall())


async def groups_of(cur, user_id: int) -> list[dict]:
    """The user's groups with their member counts."""
    await cur.execute(
        "SELECT g.id, g.name, (SELECT COUNT(*) FROM group_members c WHERE c.group_id = g.id)"
        " AS members FROM group_members m JOIN chat_groups g ON g.id = m.group_id"
        " WHERE m.user_id = %s ORDER BY g.id", (user_id,))
    return list(await cur.fetchall())


async def is_member(cur, group_id: int, user_id: int) -> bool:
    await cur.execute("SELECT 1 FROM group_members WHERE group_id = %s AND user_id = %s",
                      (group_id, user_id))
    return await cur.fetchone() is not None


async def member_count(cur, group_id: int) -> int:
    await cur.execute("SELECT COUNT(*) AS n FROM group_members WHERE group_id = %s", (group_id,))
    return (await cur.fetchone())["n"]


async def set_frozen(cur, user_id: int, frozen: bool, reason: str, now: int) -> int | None:
    """Freeze or thaw a user; return the change's version, None if there is no such user."""
    await cur.execute("UPDATE users SET frozen = %s, frozen_reason = %s, frozen_time = %s,"
                      " frozen_version = frozen_version + 1 WHERE id = %s",
                      (int(frozen), reason, now, user_id))
    if cur.rowcount != 1:
        return None
    await cur.execute("SELECT frozen_version FROM users WHERE id = %s", (user_id,))
    return (await cur.fetchone())["frozen_version"]


async def is_frozen(cur, user_id: int) -> bool | None:
    """Whether a user is frozen (None: no such user). The row is share-locked until the
    transaction ends: a freeze waits for this transaction, and it for a freeze under way."""
    await cur.execute("SELECT frozen FROM users WHERE id = %s LOCK IN SHARE MODE", (user_id,))
    row = await cur.fetchone()
    return None if row is None else bool(row["frozen"])


async def freeze_changes(cur) -> list[tuple[int, bool, int]]:
    """(user id, frozen, version) of every user ever frozen."""
    await cur.execute("SELECT id, frozen, frozen_version FROM users WHERE frozen_version > 0")
    return [(row["id"], bool(row["frozen"]), row["frozen_version"])
            for row in await cur.fetchall()]
