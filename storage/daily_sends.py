"""What each user sends on each Beijing day (daily_sends): the packets counted on it, paid or
still payable, for the daily limits."""
import datetime

from storage.db import to_decimal, to_fen


async def add(cur, user_id: int, day: datetime.date, fen: int) -> tuple[int, int]:
    """Count one more packet of `fen` on the user's day; return the day's totals with it
    (packets, fen). The row stays locked until the transaction ends, so one user's creates
    are counted one after another, each seeing the others' totals."""
    await cur.execute(
        "INSERT INTO daily_sends (user_id, day, packets, amount) VALUES (%s, %s, 1, %s)"
        " ON DUPLICATE KEY UPDATE packets = packets + 1, amount = amount + VALUES(amount)",
        (user_id, day, to_decimal(fen)))
    # A locking read sees the row as this transaction left it, whatever its snapshot.
    await cur.execute("SELECT packets, amount FROM daily_sends WHERE user_id = %s AND day = %s"
                      " FOR UPDATE", (user_id, day))
    row = await cur.fetchone()
    return row["packets"], to_fen(row["amount"])


async def take_back(cur, user_id: int, day: datetime.date, fen: int) -> None:
    """Uncount a packet of `fen` from the user's day."""
    await cur.execute("UPDATE daily_sends SET packets = packets - 1, amount = amount - %s"
                      " WHERE user_id = %s AND day = %s", (to_decimal(fen), user_id, day))
