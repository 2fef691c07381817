"""Payment passwords: their hashes and the wrong tries that lock them (wallet_pins).

Every change of a count is one guarded update, never a read and then a write: concurrent tries
from many sockets and nodes are put in one order by the row's lock, and each is judged by the
row as its own update left it.
"""
from typing import NamedTuple

from storage.db import is_duplicate


class PinRecord(NamedTuple):
    pin_hash: str
    wrong: int  # wrong tries in a row
    locked_until: int  # Unix time; refused until then


async def get(cur, user_id: int) -> PinRecord | None:
    await cur.execute("SELECT pin_hash, wrong, locked_until FROM wallet_pins WHERE user_id = %s",
                      (user_id,))
    row = await cur.fetchone()
    return row and PinRecord(row["pin_hash"], row["wrong"], row["locked_until"])


async def exists(cur, user_id: int) -> bool:
    await cur.execute("SELECT 1 FROM wallet_pins WHERE user_id = %s", (user_id,))
    return await cur.fetchone() is not None


async def insert(cur, user_id: int, pin_hash: str, now: int) -> bool:
    """Store a user's first PIN; False, storing nothing, when they have one already."""
    try:
        await cur.execute("INSERT INTO wallet_pins (user_id, pin_hash, update_time)"
                          " VALUES (%s, %s, %s)", (user_id, pin_hash, now))
    except Exception as exc:
        if not is_duplicate(exc):
            raise
        return False
    return True


async def record_try(cur, user_id: int, checked_hash: str, right: bool, now: int,
                     lock_until: int, max_wrong: int, new_hash: str | None = None
                     ) -> PinRecord | None:
    """Record a try of the PIN whose hash was `checked_hash`, and return the row as it is now.

    Run inside a transaction: the update locks the row until the commit, so what is read back
    is what this try left. A try counts only while the PIN is not locked and is still the one
    that was checked. A wrong one adds to the count, and the `max_wrong`-th locks the PIN until
    `lock_until` and starts the count again from 0 (the lock, not the count, refuses tries
    then). A right one sets the count to 0, and with `new_hash` becomes that PIN.
    """
    guard = "WHERE user_id = %s AND pin_hash = %s AND locked_until <= %s"
    if not right:
        # locked_until first: MariaDB gives each assignment the values the previous ones set.
        await cur.execute(
            "UPDATE wallet_pins SET locked_until = IF(wrong + 1 >= %s, %s, 0),"
            " wrong = IF(wrong + 1 >= %s, 0, wrong + 1), update_time = %s " + guard,
            (max_wrong, lock_until, max_wrong, now, user_id, checked_hash, now))
    elif new_hash is not None:
        await cur.execute("UPDATE wallet_pins SET pin_hash = %s, wrong = 0, update_time = %s "
                          + guard, (new_hash, now, user_id, checked_hash, now))
    else:
        await cur.execute("UPDATE wallet_pins SET wrong = 0 " + guard,
                          (user_id, checked_hash, now))
    return await get(cur, user_id)


async def delete(cur, user_id: int) -> None:
    """Remove a user's PIN, its count and its lock."""
    await cur.execute("DELETE FROM wallet_pins WHERE user_id = %s", (user_id,))
