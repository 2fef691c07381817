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
    and return them: a row another node holds a live claim on is left to it.

    The due rows are found by a plain read, which locks nothing, and claimed by id with the
    guard repeated: an UPDATE that searched the `due` index itself would lock the gap where
    every new event is inserted, and hold up the commits that insert them (a grab's batch)."""
    await cur.execute(f"SELECT id FROM outbound_events WHERE state = {EventState.PENDING}"
                      " AND next_try <= %s AND claim_until <= %s ORDER BY next_try, id LIMIT %s",
                      [now_ms, now_ms, limit])
    due = [row["id"] for row in await cur.fetchall()]
    if not due:
        return []
    await cur.execute(f"UPDATE outbound_events SET claimed_by = %s, claim_until = %s"
                      f" WHERE id IN ({marks(due)}) AND state = {EventState.PENDING}"
                      " AND claim_until <= %s", [claim, until_ms, *due, now_ms])
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


async def not_delivered(cur, claim: str, tries: list[tuple[int, int, str, bool]]) -> None:
    """Tries that failed, (id, next try, error, given up) each, in one statement: try again
    then, or give up (failed). Guarded by the claim, so that a node whose claim ran out never
    undoes another's delivery."""
    ids = [event_id for event_id, _, _, _ in tries]
    cases = " ".join(["WHEN %s THEN %s"] * len(tries))
    await cur.execute(
        f"UPDATE outbound_events SET state = CASE id {cases} END,"
        f" next_try = CASE id {cases} END, last_error = CASE id {cases} END,"
        " tries = tries + 1, claim_until = 0"
        f" WHERE id IN ({marks(ids)}) AND claimed_by = %s AND state = {EventState.PENDING}",
        [*(v for event_id, _, _, given_up in tries
           for v in (event_id, EventState.FAILED if given_up else EventState.PENDING)),
         *(v for event_id, next_try, _, _ in tries for v in (event_id, next_try)),
         *(v for event_id, _, error, _ in tries for v in (event_id, error[:255])),
         *ids, claim])


async def listing(cur, state: EventState, after: int, limit: int) -> list[dict]:
    """Events in `state`, oldest first, from id `after` on (exclusive)."""
    await cur.execute(f"SELECT {COLUMNS} FROM outbound_events WHERE state = %s AND id > %s"
                      " ORDER BY id LIMIT %s", [state, after, limit])
    return [_row(row) for row in await cur.fetchall()]


async def failed_ids(cur, after: int, limit: int) -> list[int]:
    await cur.execute(f"SELECT id FROM outbound_events WHERE state = {EventState.FAILED}"
                      " AND id > %s ORDER BY id LIMIT %s", [after, limit])
    return [row["id"] for row in await cur.fetchall()]


async def replay(cur, ids: list[int], now_ms: int, deadline_ms: int) -> int:
    """Make these failed events pending again, due now, with a new deadline and their tries
    counted afresh (the first retry comes soon again); return how many."""
    await cur.execute(f"UPDATE outbound_events SET state = {EventState.PENDING}, next_try = %s,"
                      " deadline = %s, tries = 0, claim_until = 0"
                      f" WHERE id IN ({marks(ids)}) AND state = {EventState.FAILED}",
                      [now_ms, deadline_ms, *ids])
    return cur.rowcount


async def forget_delivered(cur, before_ms: int, limit: int) -> int:
    """Delete up to `limit` events delivered before `before_ms`; return how many. Found by a
    plain read and deleted by id, so that only those rows are ever locked."""
    await cur.execute(f"SELECT id FROM outbound_events WHERE state = {EventState.DELIVERED}"
                      " AND delivered < %s LIMIT %s", [before_ms, limit])
    old = [row["id"] for row in await cur.fetchall()]
    if not old:
        return 0
    await cur.execute(f"DELETE FROM outbound_events WHERE id IN ({marks(old)})"
                      f" AND state = {EventState.DELIVERED}", old)
    return cur.rowcount


async def count(cur, state: EventState) -> int:
    await cur.execute("SELECT COUNT(*) AS n FROM outbound_events WHERE state = %s", [state])
    return (await cur.fetchone())["n"]


def _row(row: dict) -> dict:
    return {**row, "data": json.loads(row["data"]), "state": EventState(row["state"])}
