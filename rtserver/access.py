"""Who may do what: membership of groups, and who may see a packet."""
from rtserver.context import Context
from rtserver.errors import Forbidden, NotFound
from rtserver.hub import group_room, user_room
from storage import people
from storage.schema import PacketType


async def check_member(cur, group_id: int, user_id: int) -> None:
    """Refuse unless the group exists and the user is in it."""
    if not await people.get_group(cur, group_id):
        raise NotFound(f"no group {group_id}")
    if not await people.is_member(cur, group_id, user_id):
        raise Forbidden("not a member of this group")


async def is_member_fast(ctx: Context, group_id: int, user_id: int) -> bool:
    """Membership from this node's cache of the member list, filled from MariaDB when stale."""
    async def load():
        async with ctx.db.cursor() as cur:
            return frozenset(await people.member_ids(cur, group_id))

    return user_id in await ctx.caches.members.get_or_load(group_id, load)


def packet_rooms(packet: dict) -> list[str]:
    """The room a packet lives in: its group, or both users of a personal packet."""
    if packet["type"] == PacketType.PERSONAL:
        return [user_room(packet["user_id"]), user_room(packet["for_id"])]
    return [group_room(packet["for_id"])]


async def check_can_see(cur, packet: dict | None, user_id: int) -> dict:
    """Only the sender and the packet's room (group members, or the recipient) may see it."""
    if packet is None:
        raise NotFound("no such packet")
    if packet["user_id"] == user_id:
        return packet
    if packet["type"] == PacketType.PERSONAL:
        if packet["for_id"] != user_id:
            raise Forbidden("this packet is not for you")
    elif not await people.is_member(cur, packet["for_id"], user_id):
        raise Forbidden("not a member of this packet's group")
    return packet
