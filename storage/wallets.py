"""Wallets and the ledger: the only module that writes either. A balance only ever changes
together with its ledger row."""
from typing import NamedTuple

from storage.db import Pipeline, ints, to_decimal, to_fen


class Balance(NamedTuple):
    """A wallet's balance and the id of the ledger row that made it (0 before any movement).

    Every movement locks the wallet row before it writes its ledger row, so a user's later
    balance always has the larger `ledger_id`: events that overtake each other can be put back
    in order by it."""
    fen: int
    ledger_id: int


async def balance(cur, user_id: int) -> Balance:
    # One statement, one snapshot: the balance and its newest ledger row agree.
    await cur.execute(
        "SELECT w.balance, (SELECT MAX(l.id) FROM wallet_ledger l WHERE l.user_id = w.user_id)"
        " AS ledger_id FROM wallets w WHERE w.user_id = %s", (user_id,))
    row = await cur.fetchone()
    return Balance(to_fen(row["balance"]), row["ledger_id"] or 0) if row else Balance(0, 0)


async def credit(cur, user_id: int, fen: int, kind: str, ref: str, now: int) -> Balance:
    """Add money and book it; return the new balance. A repeated (kind, ref) raises IntegrityError."""
    await cur.execute(
        "INSERT INTO wallets (user_id, balance, update_time) VALUES (%s, %s, %s)"
        " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance),"
        " update_time = VALUES(update_time)", (user_id, to_decimal(fen), now))
    return await _ledger(cur, user_id, fen, kind, ref, now)


async def debit(cur, user_id: int, fen: int, kind: str, ref: str, now: int) -> Balance | None:
    """Take money if the balance covers it and book it; return the new balance, or None if short."""
    await cur.execute(
        "UPDATE wallets SET balance = balance - %s, update_time = %s "
        "WHERE user_id = %s AND balance >= %s",
        (to_decimal(fen), now, user_id, to_decimal(fen)))
    if cur.rowcount != 1:
        return None
    return await _ledger(cur, user_id, -fen, kind, ref, now)


def credit_shares(pipeline: Pipeline, share_ids: list[int], now: int) -> None:
    """Queue crediting the wallets of the credited shares among `share_ids`, and their ledger
    rows (kind `grab`, ref the share id), in a pipelined transaction that has just claimed them."""
    which = ints(share_ids)
    # Wallets in user-id order, so that concurrent batches lock them in the same order.
    pipeline.add(
        "INSERT INTO wallets (user_id, balance, update_time)"
        " SELECT user_id, SUM(money), %s FROM red_packet_log"
        f" WHERE id IN ({which}) AND is_into_account = 1 GROUP BY user_id ORDER BY user_id"
        " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance),"
        " update_time = VALUES(update_time)",
        [now])
    # Each ledger row holds the balance right after its own movement: the wallet's final
    # balance less what the same user's later shares of this batch added.
    pipeline.add(
        "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
        " SELECT s.user_id, 'grab', s.id, s.money, w.balance - COALESCE(SUM(s.money) OVER"
        " (PARTITION BY s.user_id ORDER BY s.id ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING),"
        " 0), %s FROM red_packet_log s JOIN wallets w ON w.user_id = s.user_id"
        f" WHERE s.id IN ({which}) AND s.is_into_account = 1 ORDER BY s.user_id, s.id",
        [now])


async def ledger_page(cur, user_id: int, before: int | None, limit: int) -> list[dict]:
    """A user's ledger rows with ids below `before`, newest first, amounts in fen."""
    await cur.execute(
        "SELECT id, kind, ref, amount, balance, add_time FROM wallet_ledger"
        " WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
        (user_id, before or 2**63, limit))
    return [{**row, "amount": to_fen(row["amount"]), "balance": to_fen(row["balance"])}
            for row in await cur.fetchall()]


async def movement(cur, kind: str, ref: str) -> dict | None:
    """The ledger row booked for (kind, ref), if any, with its amount in fen."""
    await cur.execute("SELECT user_id, amount FROM wallet_ledger WHERE kind = %s AND ref = %s",
                      (kind, ref))
    row = await cur.fetchone()
    return row and {"user_id": row["user_id"], "amount": to_fen(row["amount"])}


async def _ledger(cur, user_id: int, fen: int, kind: str, ref: str, now: int) -> Balance:
    """Book a movement of a wallet that this transaction has just changed, and so locked."""
    await cur.execute("SELECT balance FROM wallets WHERE user_id = %s", (user_id,))
    after = to_fen((await cur.fetchone())["balance"])
    await cur.execute(
        "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (user_id, kind, ref, to_decimal(fen), to_decimal(after), now))
    return Balance(after, cur.lastrowid)
