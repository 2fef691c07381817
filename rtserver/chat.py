"""Chat: text messages, packet messages, and the history a reconnecting client catches up from."""
import logging
import time

from rtserver import access, codec, views
from rtserver.context import Context
from rtserver.errors import BadRequest, NotFound, RateLimited
from rtserver.hub import group_room, user_room
from rtserver.slots import load_slots
from rtserver.uow import UnitOfWork
from storage import chat, people
from storage.schema import PacketType

log = logging.getLogger(__name__)
MAX_TEXT = 2000
HISTORY_BYTES = codec.MAX_REPLY - 1024  # the messages of one reply; the rest is its envelope


def room_of(to_type: str, to_id: int, from_id: int) -> str:
    """The stored room key: the group, or the pair of users whichever of them writes."""
    if to_type == "group":
        return f"g:{to_id}"
    low, high = sorted((to_id, from_id))
    return f"u:{low}:{high}"


def rooms_of(to_type: str, to_id: int, from_id: int) -> list[str]:
    """The hub rooms that hear a message."""
    if to_type == "group":
        return [group_room(to_id)]
    return [user_room(from_id), user_room(to_id)]


async def check_can_talk(cur, user_id: int, to_type: str, to_id: int) -> int:
    """Refuse unless the user may talk in the room; return since when they may read it (WeChat
    shows a group's members only what was sent since they last joined)."""
    if to_type == "group":
        return await access.check_member(cur, to_id, user_id)
    if to_id == user_id:
        raise BadRequest("a 1:1 chat needs another user")
    if not await people.get_user(cur, to_id):
        raise NotFound(f"no user {to_id}")
    return 0


async def send(ctx: Context, user_id: int, to_type: str, to_id: int, text: str) -> dict:
    text = text.strip()
    if not text:
        raise BadRequest("text is empty")
    async with UnitOfWork(ctx) as uow:
        await check_can_talk(uow.cur, user_id, to_type, to_id)
        message = await post_text(uow, user_id, to_type, to_id, text)
        await uow.commit()
    return {"message": message}


async def say_password(ctx: Context, user_id: int, group_id: int, password: str) -> None:
    """Post a 口令红包's phrase into its group as the grabber's own words, as QQ does, once the
    grab that said it has won its share (the grabber is known to be a member)."""
    try:
        async with UnitOfWork(ctx) as uow:
            await post_text(uow, user_id, "group", group_id, password)
            await uow.commit()
    except Exception:  # the share is booked and stays so: the grab is answered all the same
        log.warning("the password of a packet in group %s could not be posted", group_id,
                    exc_info=True)


async def post_text(uow: UnitOfWork, user_id: int, to_type: str, to_id: int, text: str) -> dict:
    """Store a text message and send it to its room once committed; return its view."""
    row = await chat.insert(uow.cur, room_of(to_type, to_id, user_id), to_type, to_id, user_id,
                            "text", text, None, int(time.time()))
    message = views.message(row, await people.names(uow.cur, [user_id]), None)
    uow.emit(rooms_of(to_type, to_id, user_id), {"ev": "message", "message": message})
    return message


async def put_in_room(uow: UnitOfWork, packet: dict, now: int) -> dict:
    """Post a packet that may now be grabbed into its room's stream, and load its slots once
    committed. Returns the packet's summary."""
    names = await people.names(uow.cur, views.people_in([packet]))
    packet_summary = views.summary(packet, names, now)
    to_type = "user" if packet["type"] == PacketType.PERSONAL else "group"
    row = await chat.insert(uow.cur, room_of(to_type, packet["for_id"], packet["user_id"]), to_type,
                            packet["for_id"], packet["user_id"], "packet", packet["intro"],
                            packet["id"], now)
    message = views.message(row, names, packet_summary)
    uow.emit(access.packet_rooms(packet), {"ev": "message", "message": message})
    uow.send_out("packet.sent", {"rp_id": packet["id"], "packet": packet_summary,
                                 "to_type": to_type, "to_id": packet["for_id"]})
    uow.after_commit(lambda: load_slots(uow.ctx, packet["id"]))
    return packet_summary


async def history(ctx: Context, user_id: int, to_type: str, to_id: int, before: int | None,
                  limit: int) -> dict:
    if not ctx.quotas.may_read_history(user_id):
        raise RateLimited("chat history asked for too often; wait a moment")
    async with ctx.db.cursor() as cur:
        since = await check_can_talk(cur, user_id, to_type, to_id)
        rows = await chat.history(cur, room_of(to_type, to_id, user_id), user_id, since, before,
                                  limit)
        messages = await views.messages(cur, rows, int(time.time()))
    page, size = newest_within(messages, HISTORY_BYTES)
    ctx.quotas.history_read(user_id, size)
    return {"messages": page}


def newest_within(messages: list[dict], budget: int) -> tuple[list[dict], int]:
    """The newest of `messages` (oldest first) whose replies fit in `budget` bytes, and their
    size: a client asks for more pages on from the oldest it got, with `before`."""
    kept, size = 0, 0
    for message in reversed(messages):
        message_size = codec.size_at_most(message)
        if size + message_size > budget:
            break
        kept, size = kept + 1, size + message_size
    return messages[len(messages) - kept:], size
