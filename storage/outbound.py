"""Outbound events (migration 0014): written with the change they report, claimed and sent by
a job on every node (rtserver/outbound.py)."""
import json

from storage.db import Pipeline, marks
from storage.schema import EventState

COLUMNS = "id, type, rp_id, data, created, state, tries, next_try, deadline, last_error, delivered"
_INSERT = "INSERT INTO outbound_events (type, rp_id, data, created, next_try, deadline) VALUES "
_ROW = "(%s, %s, %s, %s, %s, %s)"


def _insert(events: list[tuple[str, dict]], now_ms: int, deadline_ms: int) -> tuple[str, list]:
    return (_INSERT + ", ".join([_ROW] * len(events)),
            [value for kind, data in events
             for value in (kind, data["rp_id"], json.dumps(data, ensure_ascii=False), now_ms,
                           now_ms, deadline_ms)])


async def insert(cur, events: list[tuple[str, dict]], now_ms: int, deadline_ms: int) -> None:
    """Keep events, (type, data) each, due at once, in `cur`'s transaction."""
    await cur.execute(*_insert(events, now_ms, deadline_ms))


def queue(pipeline: Pipeline, events: list[tuple[str, dict]], now_ms: int,
          deadline_ms: int) -> None:
    """The same, as one more statement of a pipelined transaction."""
    pipeline.add(*_insert(events, now_ms, deadline_ms))


async def claim(cur, claim: str, now_ms: int, until_ms: int, limit: int) -> list[dict]:
    """Claim up to `limit` due events for this round (`claim`, unique to it) until `until_ms`,
    and return them: a row another node holds a live claim on is left to it."""
    await cur.execute(
        "UPDATE outbound_events SET claimed_by = %s, claim_until = %s"
        f" WHERE state = {EventState.PENDING} AND next_try <= %s AND claim_until <= %s"
        " ORDER BY next_try, id LIMIT %s", [claim, until_ms, now_ms, now_ms, limit])
    if not cur.rowcount:
        return []
    await cur.execute(f"SELECT {COLUMNS} FROM outbound_events"
                      " WHERE claimed_by = %s AND claim_until = %s ORDER BY id", [claim, until_ms])
    return [_row(row) for row in await cur.fetchall()]


async def delivered(cur, event_ids: list[int], now_ms: int) -> None:
    # Not guarded by the claim: a POST answered 2xx is delivered, whoever sent it.
    await cur.execute(f"UPDATE outbound_events SET state = {EventState.DELIVERED}, delivered = %s,"
                      f" claim_until = 0, tries = tries + 1 WHERE id IN ({marks(event_ids)})",
                      [now_ms, *event_ids])


async def not_delivered(cur, event_id: int, claim: str, next_try_ms: int, error: str,
                        given_up: bool) -> None:
    """A try failed: try again at `next_try_ms`, or give up (failed). Guarded by the claim, so a
    node whose claim ran out never undoes another's delivery."""
    state = EventState.FAILED if given_up else EventState.PENDING
    await cur.execute(
        f"UPDATE outbound_events SET state = {state}, tries = tries + 1, next_try = %s,"
        " last_error = %s, claim_until = 0"
        f" WHERE id = %s AND claimed_by = %s AND state = {EventState.PENDING}",
        [next_try_ms, error[:255], event_id, claim])


async def listing(cur, state: EventState, after: int, limit: int) -> list[dict]:
    """Events in `state`, oldest first, from id `after` on (exclusive)."""
    await cur.execute(f"SELECT {COLUMNS} FROM outbound_events WHERE state = %s AND id > %s"
                      " ORDER BY id LIMIT %s", [state, after, limit])
    return [_row(row) for row in await cur.fetchall()]


async def replay(cur, ids: list[int] | None, now_ms: int, deadline_ms: int) -> int:
    """Make failed events (those of `ids`, or every one) pending again, due now, with a new
    deadline; return how many."""
    which = f" AND id IN ({marks(ids)})" if ids else ""
    await cur.execute(f"UPDATE outbound_events SET state = {EventState.PENDING}, next_try = %s,"
                      f" deadline = %s, claim_until = 0 WHERE state = {EventState.FAILED}"
                      + which, [now_ms, deadline_ms, *(ids or [])])
    return cur.rowcount


async def forget_delivered(cur, before_ms: int, limit: int) -> int:
    """Delete up to `limit` events delivered before `before_ms`; return how many."""
    await cur.execute(f"DELETE FROM outbound_events WHERE state = {EventState.DELIVERED}"
                      " AND delivered < %s LIMIT %s", [before_ms, limit])
    return cur.rowcount


async def count(cur, state: EventState) -> int:
    await cur.execute("SELECT COUNT(*) AS n FROM outbound_events WHERE state = %s", [state])
    return (await cur.fetchone())["n"]


def _row(row: dict) -> dict:
    return {**row, "data": json.loads(row["data"]), "state": EventState(row["state"])}
