"""What clients see of packets and messages: the wire shapes of docs/protocol.md."""
from rtserver import lifecycle
from rtserver.money import format_fen
from storage import packets, people
from storage.schema import PacketType


def person(user_id: int, names: dict[int, str]) -> dict:
    return {"id": user_id, "name": names.get(user_id, "")}


def summary(packet: dict, names: dict[int, str], now: int) -> dict:
    view = {
        "rp_id": packet["id"],
        "type": packet["type"],
        "sender": person(packet["user_id"], names),
        "for_id": packet["for_id"],
        "intro": packet["intro"],
        "number": packet["number"],
        "total": format_fen(packet["total"]),
        "status": lifecycle.status(packet, now),
        "pay_status": packet["pay_status"],
        "pay_time": packet["pay_time"] or None,
        "expires_at": packet["expire_time"] or None,
    }
    if packet["type"] == PacketType.GROUP_NORMAL:
        view["single"] = format_fen(packet["single"])
    if packet["to_user"] is not None:
        view["to_user"] = person(packet["to_user"], names)
    if packet["password"] is not None:
        view["password"] = packet["password"]
    return view


def people_in(packets_: list[dict]) -> list[int]:
    """Whose names the summaries of `packets_` show: senders, and who exclusive ones are for."""
    return [p["user_id"] for p in packets_] + [p["to_user"] for p in packets_ if p["to_user"]]


async def summaries(cur, rp_ids, now: int) -> dict[int, dict]:
    found = await packets.get_many(cur, rp_ids)
    names = await people.names(cur, people_in(list(found.values())))
    return {rp_id: summary(p, names, now) for rp_id, p in found.items()}


def message(row: dict, names: dict[int, str], packet_summary: dict | None) -> dict:
    view = {
        "id": row["id"],
        "to_type": row["to_type"],
        "to_id": row["to_id"],
        "from": person(row["from_id"], names),
        "kind": row["kind"],
        "text": row["text"],
        "time": row["add_time"],
    }
    if packet_summary is not None:
        view["packet"] = packet_summary
    if row.get("notice") is not None:  # a notice: its code, rp_id and what it tells
        view["notice"] = row["notice"]
    return view


async def messages(cur, rows: list[dict], now: int) -> list[dict]:
    names = await people.names(cur, [r["from_id"] for r in rows])
    packet_views = await summaries(cur, [r["rp_id"] for r in rows if r["rp_id"]], now)
    return [message(r, names, packet_views.get(r["rp_id"])) for r in rows]


def shows_best(packet: dict, now: int) -> bool:
    """Best luck is shown only on lucky packets whose every share was taken."""
    return packet["type"] == PacketType.GROUP_LUCKY and lifecycle.status(packet, now) == "finished"


def share_mine(share: dict | None, best_shown: bool) -> dict | None:
    if share is None:
        return None
    return {"money": format_fen(share["money"]), "into_account": bool(share["is_into_account"]),
            "is_good": best_shown and bool(share["is_good"])}
