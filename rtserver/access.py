"""Who may do what: membership of groups, and who may see a packet."""
from types import MappingProxyType

from rtserver.context import Context
from rtserver.errors import Forbidden, NotFound
from rtserver.hub import group_room, user_room
from storage import packets, people
from storage.schema import PacketType


async def check_member(cur, group_id: int, user_id: int) -> int:
    """Refuse unless the group exists and the user is in it; return when they last joined."""
    if not await people.get_group(cur, group_id):
        raise NotFound(f"no group {group_id}")
    since = await people.member_since(cur, group_id, user_id)
    if since is None:
        raise Forbidden("not a member of this group")
    return since


async def member_since_fast(ctx: Context, group_id: int, user_id: int) -> int | None:
    """When the user last joined the group (None: not a member), from this node's cache of the
    member list, filled from MariaDB when stale: the grab path asks it of every grab."""
    async def load():
        async with ctx.db.cursor() as cur:
            return MappingProxyType(await people.members_since(cur, group_id))

    return (await ctx.caches.members.get_or_load(group_id, load)).get(user_id)


def packet_rooms(packet: dict) -> list[str]:
    """The room a packet lives in: its group, or both users of a personal packet."""
    if packet["type"] == PacketType.PERSONAL:
        return [user_room(packet["user_id"]), user_room(packet["for_id"])]
    return [group_room(packet["for_id"])]


async def check_can_see(cur, packet: dict | None, user_id: int) -> dict:
    """Only the sender, the packet's room (group members, or the recipient) and whoever holds a
    share of it may see it."""
    if packet is None:
        raise NotFound("no such packet")
    if packet["user_id"] == user_id:
        return packet
    if packet["type"] == PacketType.PERSONAL:
        if packet["for_id"] != user_id:
            raise Forbidden("this packet is not for you")
    elif not await people.is_member(cur, packet["for_id"], user_id) and \
            not await packets.share_of(cur, packet["id"], user_id):
        # Someone who left the group still sees a packet they hold a share of (我的红包 lists it).
        raise Forbidden("not a member of this packet's group")
    return packet
