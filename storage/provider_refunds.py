"""Refunds of provider money back to where it came from, and what the providers said of them.

A refund is `requested` when it is written (in the transaction that takes its money out of
rtserver), `accepted` once the provider took it, and then `succeeded` or `failed`; a failed one
is credited to the payer's balance instead, in the transaction that records the failure. Every
change of state is a guarded update from the states it may come from.
"""
import json

from storage.db import to_decimal, to_fen

COLUMNS = ("out_refund_no, kind, ref, provider, out_trade_no, trade_no, rp_id, user_id, amount,"
           " state, refund_id, tries, add_time")
OPEN = "('requested', 'accepted')"  # the states of a refund still on its way, for SQL
MOST_ANSWERS = 20  # the latest answers kept per refund
# Keep the provider's answer (a JSON object) as the newest of the latest MOST_ANSWERS.
KEEP_ANSWER = ("answers = JSON_ARRAY_APPEND(IF(JSON_LENGTH(answers) >= %s,"
               " JSON_REMOVE(answers, '$[0]'), answers), '$', JSON_EXTRACT(%s, '$'))")


async def insert(cur, out_refund_no: str, kind: str, ref: str, provider: str, out_trade_no: str,
                 trade_no: str, rp_id: int, user_id: int, amount: int, now: int) -> None:
    """Write a refund to be sent; a second refund of the same cause raises IntegrityError."""
    await cur.execute(
        "INSERT INTO provider_refunds (out_refund_no, kind, ref, provider, out_trade_no,"
        " trade_no, rp_id, user_id, amount, answers, next_try, add_time, update_time)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '[]', %s, %s, %s)",
        (out_refund_no, kind, ref, provider, out_trade_no, trade_no, rp_id, user_id,
         to_decimal(amount), now, now, now))


def _refund(row: dict | None) -> dict | None:
    return row and {**row, "amount": to_fen(row["amount"])}


async def get(cur, out_refund_no: str) -> dict | None:
    await cur.execute(f"SELECT {COLUMNS} FROM provider_refunds WHERE out_refund_no = %s",
                      (out_refund_no,))
    return _refund(await cur.fetchone())


async def of_cause(cur, kind: str, ref: str) -> dict | None:
    await cur.execute(f"SELECT {COLUMNS} FROM provider_refunds WHERE kind = %s AND ref = %s",
                      (kind, ref))
    return _refund(await cur.fetchone())


async def due(cur, now: int, limit: int) -> list[dict]:
    """Refunds on their way whose next try (or look) is due."""
    await cur.execute(f"SELECT {COLUMNS} FROM provider_refunds WHERE state IN {OPEN}"
                      " AND next_try <= %s ORDER BY next_try LIMIT %s", (now, limit))
    return [_refund(row) for row in await cur.fetchall()]


async def move(cur, out_refund_no: str, to_state: str, answer: str, now: int,
               refund_id: str = "", next_try: int = 0) -> bool:
    """Move a refund still on its way to `to_state`, keeping the provider's answer; True for
    the call that moved it. An answer that leaves it where it is keeps it and says when next."""
    if to_state not in ("accepted", "succeeded", "failed"):
        raise ValueError(to_state)
    from_states = "('requested')" if to_state == "accepted" else OPEN
    await cur.execute(
        "UPDATE provider_refunds SET state = %s, refund_id = IF(%s = '', refund_id, %s),"
        f" {KEEP_ANSWER}, tries = tries + 1, next_try = %s, update_time = %s"
        f" WHERE out_refund_no = %s AND state IN {from_states}",
        (to_state, refund_id, refund_id, MOST_ANSWERS, answer, next_try, now, out_refund_no))
    return cur.rowcount == 1


async def try_later(cur, out_refund_no: str, answer: str, next_try: int, now: int) -> None:
    """Keep the answer (or the failure to get one) and try again at `next_try`."""
    await cur.execute(
        f"UPDATE provider_refunds SET tries = tries + 1, next_try = %s, update_time = %s,"
        f" {KEEP_ANSWER} WHERE out_refund_no = %s AND state IN {OPEN}",
        (next_try, now, MOST_ANSWERS, answer, out_refund_no))


def answer_text(state: str, detail: str, now: int) -> str:
    """One kept answer: when, what state, the provider's own words (never a key or a body)."""
    return json.dumps({"at": now, "state": state, "detail": detail[:200]}, ensure_ascii=False)
