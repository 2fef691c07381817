"""Chat messages, kept for catching up."""

COLUMNS = "id, to_type, to_id, from_id, kind, text, rp_id, add_time"


async def insert(cur, room: str, to_type: str, to_id: int, from_id: int, kind: str, text: str,
                 rp_id: int | None, now: int) -> dict:
    await cur.execute(
        "INSERT INTO chat_messages (room, to_type, to_id, from_id, kind, text, rp_id, add_time)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (room, to_type, to_id, from_id, kind, text, rp_id, now))
    return {"id": cur.lastrowid, "to_type": to_type, "to_id": to_id, "from_id": from_id,
            "kind": kind, "text": text, "rp_id": rp_id, "add_time": now}


async def history(cur, room: str, before: int | None, limit: int) -> list[dict]:
    """The room's last `limit` messages before message `before`, oldest first."""
    await cur.execute(f"SELECT {COLUMNS} FROM chat_messages WHERE room = %s AND id < %s"
                      " ORDER BY id DESC LIMIT %s", (room, before or 2**63, limit))
    return list(reversed(await cur.fetchall()))
