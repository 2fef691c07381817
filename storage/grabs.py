"""Booking a batch of grabs in MariaDB: one transaction, sent in one round trip.

The transaction begins, claims the shares (credited at once when the packet is paid, left for
settlement while a third-party payment is pending), stops with an error unless every share was
still free, credits the wallets of the credited shares, writes their ledger rows, reads back
what was booked, and commits. A batch waits for MariaDB once instead of once per statement:
under a storm of grabs each wait is also a turn of a busy event loop.
"""
import contextlib

import pymysql

from storage.db import run_together, to_fen

SHARE_TAKEN = 1644  # MariaDB's error for SIGNAL SQLSTATE '45000'


class SharesTaken(Exception):
    """A share of the batch was no longer free: nothing was booked."""


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


async def book(cur, claims: list[tuple[int, int]], now: int) -> list[dict]:
    """Give shares to users, (share id, user id) each, and commit; return every share as booked:
    id, user_id, money and balance in fen (the wallet after the batch), is_into_account and
    ledger_id (the share's ledger row, None when it is not credited yet).

    `cur` is on an autocommit connection: the transaction is this call's own."""
    ids = [share_id for share_id, _ in claims]
    which = _marks(ids)
    claim = (
        # Joining the packet makes a claim wait for, and then respect, a concurrent void.
        "BEGIN NOT ATOMIC"
        " UPDATE red_packet_log s JOIN red_packet p ON p.id = s.rp_id"
        f" SET s.user_id = CASE s.id {' '.join(['WHEN %s THEN %s'] * len(claims))} END,"
        " s.is_into_account = (p.pay_status = 1), s.update_time = %s"
        f" WHERE s.id IN ({which}) AND s.user_id IS NULL AND s.is_refunded = 0"
        " AND p.pay_status IN (1, 2);"
        " IF ROW_COUNT() <> %s THEN"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a share was no longer free'; END IF;"
        " END",
        [v for pair in claims for v in pair] + [now] + ids + [len(claims)])
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
        "SELECT s.id, s.user_id, s.money, s.is_into_account, w.balance, l.id AS ledger_id"
        " FROM red_packet_log s LEFT JOIN wallets w ON w.user_id = s.user_id"
        " LEFT JOIN wallet_ledger l ON l.kind = 'grab' AND l.ref = CAST(s.id AS CHAR)"
        f" WHERE s.id IN ({which})", ids)
    try:
        results = await run_together(cur, [("START TRANSACTION", []), claim, credit, record, read,
                                           ("COMMIT", [])])
    except Exception as exc:
        # The statements after the failing one did not run: the transaction is still open.
        with contextlib.suppress(Exception):
            await cur.execute("ROLLBACK")
        if isinstance(exc, pymysql.err.MySQLError) and exc.args[0] == SHARE_TAKEN:
            raise SharesTaken() from None
        raise
    return [{**row, "money": to_fen(row["money"]),
             "balance": None if row["balance"] is None else to_fen(row["balance"])}
            for row in results[4][1]]
