"""Booking a batch of grabs in MariaDB, in one round trip.

Four statements go together: claim the shares (credited at once when the packet is paid, left
for settlement while a third-party payment is pending), credit the wallets of the credited
shares, write their ledger rows, and read back what was booked. They run inside the caller's
transaction, which must roll back unless every share was claimed: only then are the credits
the claimants' own.
"""
from storage.db import run_together, to_fen


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


async def book(cur, claims: list[tuple[int, int]], now: int) -> tuple[int, list[dict]]:
    """Give shares to users, (share id, user id) each; return how many shares were claimed, and
    every share as booked: id, user_id, money and balance in fen (the wallet after the batch),
    is_into_account."""
    ids = [share_id for share_id, _ in claims]
    which = _marks(ids)
    claim = (
        # Joining the packet makes a claim wait for, and then respect, a concurrent void.
        "UPDATE red_packet_log s JOIN red_packet p ON p.id = s.rp_id"
        f" SET s.user_id = CASE s.id {' '.join(['WHEN %s THEN %s'] * len(claims))} END,"
        " s.is_into_account = (p.pay_status = 1), s.update_time = %s"
        f" WHERE s.id IN ({which}) AND s.user_id IS NULL AND s.is_refunded = 0"
        " AND p.pay_status IN (1, 2)",
        [v for pair in claims for v in pair] + [now] + ids)
    # Wallets in user-id order, so that concurrent batches lock them in the same order.
    credit = (
        "INSERT INTO wallets (user_id, balance, update_time)"
        " SELECT user_id, SUM(money), %s FROM red_packet_log"
        f" WHERE id IN ({which}) AND is_into_account = 1 GROUP BY user_id ORDER BY user_id"
        " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance),"
        " update_time = VALUES(update_time)",
        [now] + ids)
    # Each ledger row holds the balance right after its own movement: the wallet's final
    # balance less what the same user's later shares of this batch added.
    record = (
        "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
        " SELECT s.user_id, 'grab', s.id, s.money, w.balance - COALESCE(SUM(s.money) OVER"
        " (PARTITION BY s.user_id ORDER BY s.id ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING),"
        " 0), %s FROM red_packet_log s JOIN wallets w ON w.user_id = s.user_id"
        f" WHERE s.id IN ({which}) AND s.is_into_account = 1 ORDER BY s.user_id, s.id",
        [now] + ids)
    read = (
        "SELECT s.id, s.user_id, s.money, s.is_into_account, w.balance"
        " FROM red_packet_log s LEFT JOIN wallets w ON w.user_id = s.user_id"
        f" WHERE s.id IN ({which})", ids)
    (claimed, _), _, _, (_, rows) = await run_together(cur, [claim, credit, record, read])
    return claimed, [{**row, "money": to_fen(row["money"]),
                      "balance": None if row["balance"] is None else to_fen(row["balance"])}
                     for row in rows]
