"""Notices kept in the chat: the gray lines WeChat shows in a packet's room, each for one user
(李四领取了你的红包 to its sender, 你领取了张三的红包 to its grabber, 你的红包已被领完, the refund).

Each is kept with the change that causes it, in its transaction, and reaches its user as a
`message` event once that commits; chat.history gives each back to its user alone.
"""
from rtserver import views
from rtserver.chat import room_of
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.slots import Packet
from rtserver.uow import UnitOfWork
from storage import chat, people
from storage.schema import PacketType


def grabbed(packet: Packet, grabber: int, names: dict[int, str], now: int) -> list[dict]:
    """To the sender, who took a share; to the grabber, whose packet it was (one notice when
    the sender grabs their own group packet)."""
    details = {"grabber": views.person(grabber, names),
               "sender": views.person(packet.sender, names)}
    if grabber == packet.sender:
        return [_notice(packet, grabber, "你领取了自己发的红包", "grabbed", now, details)]
    return [_notice(packet, packet.sender, f"{names.get(grabber, '')}领取了你的红包", "grabbed",
                    now, details),
            _notice(packet, grabber, f"你领取了{names.get(packet.sender, '')}的红包", "grabbed",
                    now, details)]


def finished(packet: Packet, now: int) -> list[dict]:
    return [_notice(packet, packet.sender, "你的红包已被领完", "finished", now, {})]


def refunded(packet: Packet, returned: int, now: int) -> list[dict]:
    money = format_fen(returned)
    return [_notice(packet, packet.sender, f"你的红包已过期，未领取的{money}元已退回", "refunded", now,
                    {"return_money": money})]


def _notice(packet: Packet, for_user: int, text: str, code: str, now: int, details: dict) -> dict:
    """A notice sits in the packet's conversation, from its sender as the packet's message is,
    so that clients file it beside it."""
    to_type = "user" if packet.type == PacketType.PERSONAL else "group"
    return {"room": room_of(to_type, packet.for_id, packet.sender), "to_type": to_type,
            "to_id": packet.for_id, "from_id": packet.sender, "for_user": for_user, "text": text,
            "notice": {"code": code, "rp_id": packet.id, **details}, "add_time": now}


async def keep(uow: UnitOfWork, notices: list[dict]) -> None:
    """Keep notices in `uow`'s transaction; each goes to its user once it commits."""
    names = await people.names(uow.cur, {n["from_id"] for n in notices})
    tell(uow, [await chat.insert_notice(uow.cur, notice) for notice in notices], names)


def tell(uow: UnitOfWork, rows: list[dict], names: dict[int, str]) -> None:
    """Send kept notices, each to its user alone, once `uow` commits."""
    for row in rows:
        uow.emit([user_room(row["for_user"])],
                 {"ev": "message", "message": views.message(row, names, None)})
