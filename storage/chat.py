"""Chat messages, kept for catching up; notices among them, each for one user of its room."""
import json

from storage.db import Pipeline, Statement, number, string

COLUMNS = "id, to_type, to_id, from_id, for_user, kind, text, rp_id, notice, add_time"
NOTICE_COLUMNS = "room, to_type, to_id, from_id, for_user, kind, text, notice, add_time"


async def insert(cur, room: str, to_type: str, to_id: int, from_id: int, kind: str, text: str,
                 rp_id: int | None, now: int) -> dict:
    await cur.execute(
        "INSERT INTO chat_messages (room, to_type, to_id, from_id, kind, text, rp_id, add_time)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (room, to_type, to_id, from_id, kind, text, rp_id, now))
    return {"id": cur.lastrowid, "to_type": to_type, "to_id": to_id, "from_id": from_id,
            "for_user": None, "kind": kind, "text": text, "rp_id": rp_id, "notice": None,
            "add_time": now}


def _notice_row(notice: dict) -> str:
    """A notice's row of VALUES, its values written out (`number`, `string`): a batch of grabs
    keeps two notices a grab, and escaping each value as a parameter was most of its cost."""
    n = notice
    to_id, from_id, for_user, add_time = (number(n[key])
                                          for key in ("to_id", "from_id", "for_user", "add_time"))
    return (f"({string(n['room'])}, {string(n['to_type'])}, {to_id}, {from_id}, {for_user},"
            f" 'notice', {string(n['text'])}, {string(json.dumps(n['notice']))}, {add_time})")


async def insert_notice(cur, notice: dict) -> dict:
    """Keep a notice (room, to_type, to_id, from_id, for_user, text, notice: a dict, add_time);
    return it as a message row."""
    await cur.execute(f"INSERT INTO chat_messages ({NOTICE_COLUMNS}) VALUES {_notice_row(notice)}")
    return _row_of_notice(notice, cur.lastrowid)


def queue_notices(pipeline: Pipeline, notices: list[dict]) -> Statement:
    """Queue keeping notices with one multi-row INSERT, and reading the first one's id; once
    committed, `notices_kept` gives them as message rows."""
    pipeline.add(f"INSERT INTO chat_messages ({NOTICE_COLUMNS}) VALUES"
                 f" {', '.join(map(_notice_row, notices))}", [])
    return pipeline.add("SELECT LAST_INSERT_ID() AS first_id", [])


def notices_kept(read: Statement, notices: list[dict]) -> list[dict]:
    """The message rows of notices queued together. One multi-row INSERT whose row count is
    known numbers its rows one after the other from LAST_INSERT_ID(), under InnoDB's autoinc
    lock modes 0 and 1 (MariaDB's default, 1; mode 2 may interleave them with other INSERTs)."""
    first = read.rows[0]["first_id"]
    return [_row_of_notice(notice, first + i) for i, notice in enumerate(notices)]


def _row_of_notice(notice: dict, message_id: int) -> dict:
    return {"id": message_id, "to_type": notice["to_type"], "to_id": notice["to_id"],
            "from_id": notice["from_id"], "for_user": notice["for_user"], "kind": "notice",
            "text": notice["text"], "rp_id": None, "notice": notice["notice"],
            "add_time": notice["add_time"]}


async def history(cur, room: str, reader: int, since: int, before: int | None,
                  limit: int) -> list[dict]:
    """The room's last `limit` messages before message `before` that `reader` may read, oldest
    first: those sent at `since` or later, notices only when they are for the reader.

    The scan of by_room stops at the first message sent since (found by by_time), not at the
    room's first message: a newcomer to a long group reads a short range. Ids follow time, but
    for a message stamped by a node whose clock ran ahead: one such, sent within that skew of the
    join and before the first one stamped since, would be left out."""
    await cur.execute(
        f"SELECT {COLUMNS} FROM chat_messages WHERE room = %s AND id < %s"
        " AND id >= (SELECT id FROM chat_messages WHERE room = %s AND add_time >= %s"
        "            ORDER BY add_time, id LIMIT 1)"
        " AND add_time >= %s AND (for_user IS NULL OR for_user = %s)"
        " ORDER BY id DESC LIMIT %s", (room, before or 2**63, room, since, since, reader, limit))
    rows = await cur.fetchall()
    return [{**row, "notice": row["notice"] and json.loads(row["notice"])}
            for row in reversed(rows)]
