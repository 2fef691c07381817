"""Keeping a packet's grab slots in Redis in step with MariaDB, which is the truth."""
import asyncio
import time
from dataclasses import dataclass

from rtserver import lifecycle
from rtserver.context import Context
from rtserver.errors import Unavailable
from storage import packets, slots
from storage.schema import PacketType

KEEP_AFTER_EXPIRY = 3600  # seconds slots outlive expiry, so late grabs still get a fast answer
LOCK_WAIT = 0.02  # seconds between looks while another request rebuilds the slots
LOCK_TRIES = 150


@dataclass(frozen=True)
class Packet:
    """What the grab path knows of a paid packet. None of it changes once it is paid, so it is
    kept beside the packet's slots in Redis, and in each node's cache."""
    id: int
    sender: int
    type: PacketType
    for_id: int  # its group, or the one person a personal packet is for
    number: int  # of shares
    expire_time: int
    pay_time: int = 0  # when it became grabbable: who joined its group later may not grab it
    to_user: int | None = None  # the one member who may open an exclusive packet (专属红包)
    password: str | None = None  # the phrase a 口令红包's grabbers must say

    @classmethod
    def of_row(cls, row: dict) -> "Packet":
        """From the packet's row in MariaDB (`storage.packets.get`)."""
        return cls(row["id"], row["user_id"], PacketType(row["type"]), row["for_id"],
                   row["number"], row["expire_time"], row["pay_time"], row["to_user"],
                   row["password"])

    @classmethod
    def of_meta(cls, rp_id: int, meta: dict[str, str]) -> "Packet":
        """From its meta hash in Redis (a field left out is None)."""
        return cls(rp_id, int(meta["sender"]), PacketType(int(meta["type"])),
                   int(meta["for_id"]), int(meta["number"]), int(meta["expire_time"]),
                   # Slots loaded by a version before pay_time was kept: v1's rule, any member.
                   int(meta.get("pay_time", meta["expire_time"])),
                   int(meta["to_user"]) if "to_user" in meta else None, meta.get("password"))

    def meta(self) -> dict[str, int | str]:
        meta = {"sender": self.sender, "type": int(self.type), "for_id": self.for_id,
                "number": self.number, "expire_time": self.expire_time,
                "pay_time": self.pay_time}
        if self.to_user is not None:
            meta["to_user"] = self.to_user
        if self.password is not None:
            meta["password"] = self.password
        return meta


async def load_slots(ctx: Context, rp_id: int) -> Packet | None:
    """Make sure a grabbable packet's slots are in Redis; return it (None: not grabbable).

    Used when a packet is paid and whenever its keys are found missing (Redis flushed or
    restarted): free shares become free slots, grabbed ones their holders' slots, under a lock
    so that one rebuild runs at a time.
    """
    packet = await _loaded(ctx, rp_id)
    if packet is not None:
        ctx.caches.packets.put(rp_id, packet)  # what a grab needs to know, without asking Redis
    return packet


async def _loaded(ctx: Context, rp_id: int) -> Packet | None:
    for _ in range(LOCK_TRIES):
        if meta := await slots.meta(ctx.redis, ctx.keys, rp_id):
            return Packet.of_meta(rp_id, meta)
        if await slots.lock_rebuild(ctx.redis, ctx.keys, rp_id):
            try:
                return await _rebuild(ctx, rp_id)
            finally:
                await slots.unlock_rebuild(ctx.redis, ctx.keys, rp_id)
        await asyncio.sleep(LOCK_WAIT)
    raise Unavailable("the packet is being prepared; retry")


async def _rebuild(ctx: Context, rp_id: int) -> Packet | None:
    if meta := await slots.meta(ctx.redis, ctx.keys, rp_id):  # loaded while we waited
        return Packet.of_meta(rp_id, meta)
    async with ctx.db.cursor() as cur:
        row = await packets.get(cur, rp_id)
        if row is None or lifecycle.status(row, int(time.time())) != "active":
            return None
        shares = await packets.shares(cur, rp_id)
    packet = Packet.of_row(row)
    ctx.caches.shares.put(rp_id, packets.ShareBook.of(shares))  # for booking its grabs
    free = [s["seq"] for s in shares if s["user_id"] is None and not s["is_refunded"]]
    holders = {s["user_id"]: s["seq"] for s in shares if s["user_id"] is not None}
    await slots.load(ctx.redis, ctx.keys, rp_id, packet.meta(), free, holders,
                     packet.expire_time + KEEP_AFTER_EXPIRY)
    return packet
