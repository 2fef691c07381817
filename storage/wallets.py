"""Wallets and the ledger. A balance only ever changes together with its ledger row."""
from storage.db import to_decimal, to_fen


async def balance(cur, user_id: int) -> int:
    await cur.execute("SELECT balance FROM wallets WHERE user_id = %s", (user_id,))
    row = await cur.fetchone()
    return to_fen(row["balance"]) if row else 0


async def credit(cur, user_id: int, fen: int, kind: str, ref: str, now: int) -> int:
    """Add money and book it; return the new balance. A repeated (kind, ref) raises IntegrityError."""
    await cur.execute(
        "INSERT INTO wallets (user_id, balance, update_time) VALUES (%s, %s, %s)"
        " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance),"
        " update_time = VALUES(update_time)", (user_id, to_decimal(fen), now))
    # The wallet row is locked by the statement above, so this read is this transaction's own.
    new_balance = await balance(cur, user_id)
    await _ledger(cur, user_id, fen, kind, ref, new_balance, now)
    return new_balance


async def debit(cur, user_id: int, fen: int, kind: str, ref: str, now: int) -> int | None:
    """Take money if the balance covers it and book it; return the new balance, or None if short."""
    await cur.execute(
        "UPDATE wallets SET balance = balance - %s, update_time = %s "
        "WHERE user_id = %s AND balance >= %s",
        (to_decimal(fen), now, user_id, to_decimal(fen)))
    if cur.rowcount != 1:
        return None
    # The wallet row is locked by the update above, so this read is this transaction's own.
    new_balance = await balance(cur, user_id)
    await _ledger(cur, user_id, -fen, kind, ref, new_balance, now)
    return new_balance


async def movement(cur, kind: str, ref: str) -> dict | None:
    """The ledger row booked for (kind, ref), if any, with its amount in fen."""
    await cur.execute("SELECT user_id, amount FROM wallet_ledger WHERE kind = %s AND ref = %s",
                      (kind, ref))
    row = await cur.fetchone()
    return row and {"user_id": row["user_id"], "amount": to_fen(row["amount"])}


async def _ledger(cur, user_id: int, fen: int, kind: str, ref: str, balance_after: int,
                  now: int) -> None:
    await cur.execute(
        "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (user_id, kind, ref, to_decimal(fen), to_decimal(balance_after), now))
