"""Booking a batch of grabs in MariaDB, as the statements of one pipelined transaction.

The transaction claims the shares (credited at once when the packet is paid, left for
settlement while a third-party payment is pending), stops with an error unless every share was
still free, credits the wallets of the credited shares and writes their ledger rows
(storage/wallets.py), and reads back what was booked.
"""
import pymysql

from storage import wallets
from storage.db import Pipeline, Statement, ints, number, to_fen
from storage.schema import GRABBABLE, PayStatus

SHARE_TAKEN = 1644  # MariaDB's error for SIGNAL SQLSTATE '45000'


def is_share_taken(exc: Exception) -> bool:
    """The commit failed because a share of the batch was no longer free: nothing was booked."""
    return isinstance(exc, pymysql.err.MySQLError) and exc.args[0] == SHARE_TAKEN


def book(pipeline: Pipeline, claims: list[tuple[int, int]], now: int) -> Statement:
    """Queue giving shares to users, (share id, user id) each; once committed, the returned
    statement's rows are the shares as booked (read them with `booked`)."""
    ids = [share_id for share_id, _ in claims]
    which = ints(ids)
    whens = " ".join([f"WHEN {number(share)} THEN {number(user)}" for share, user in claims])
    pipeline.add(
        # Joining the packet makes a claim wait for, and then respect, a concurrent void.
        "BEGIN NOT ATOMIC"
        " UPDATE red_packet_log s JOIN red_packet p ON p.id = s.rp_id"
        f" SET s.user_id = CASE s.id {whens} END,"
        f" s.is_into_account = (p.pay_status = {PayStatus.PAID}), s.update_time = %s"
        f" WHERE s.id IN ({which}) AND s.user_id IS NULL AND s.is_refunded = 0"
        f" AND p.pay_status IN {GRABBABLE};"
        " IF ROW_COUNT() <> %s THEN"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a share was no longer free'; END IF;"
        " END",
        [now, len(claims)])
    wallets.credit_shares(pipeline, ids, now)
    return pipeline.add(
        "SELECT s.id, s.user_id, s.money, s.is_into_account, w.balance, l.id AS ledger_id"
        " FROM red_packet_log s LEFT JOIN wallets w ON w.user_id = s.user_id"
        " LEFT JOIN wallet_ledger l ON l.kind = 'grab' AND l.ref = CAST(s.id AS CHAR)"
        f" WHERE s.id IN ({which})", [])


def booked(read: Statement) -> list[dict]:
    """Every share of a committed batch: id, user_id, money and balance in fen (the wallet
    after the batch), is_into_account and ledger_id (its ledger row; None when not credited)."""
    return [{**row, "money": to_fen(row["money"]),
             "balance": None if row["balance"] is None else to_fen(row["balance"])}
            for row in read.rows]
