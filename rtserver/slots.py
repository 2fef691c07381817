"""Keeping a packet's grab slots in Redis in step with MariaDB, which is the truth."""
import asyncio
import time

from rtserver import lifecycle
from rtserver.context import Context
from rtserver.errors import Unavailable
from storage import packets, slots

KEEP_AFTER_EXPIRY = 3600  # seconds slots outlive expiry, so late grabs still get a fast answer
LOCK_WAIT = 0.02  # seconds between looks while another request rebuilds the slots
LOCK_TRIES = 150


def meta_of(packet: dict) -> dict:
    return {"sender": packet["user_id"], "type": packet["type"], "for_id": packet["for_id"],
            "number": packet["number"], "expire_time": packet["expire_time"]}


async def load_slots(ctx: Context, rp_id: int) -> dict | None:
    """Make sure a grabbable packet's slots are in Redis; return its meta (None: not grabbable).

    Used when a packet is paid and whenever its keys are found missing (Redis flushed or
    restarted): free shares become free slots, grabbed ones their holders' slots, under a lock
    so that one rebuild runs at a time.
    """
    meta = await _loaded(ctx, rp_id)
    if meta is not None:
        ctx.caches.packets.put(rp_id, meta)  # what a grab needs to know, without asking Redis
    return meta


async def _loaded(ctx: Context, rp_id: int) -> dict | None:
    for _ in range(LOCK_TRIES):
        meta = await slots.meta(ctx.redis, ctx.keys, rp_id)
        if meta:
            return {k: int(v) for k, v in meta.items()}
        if await slots.lock_rebuild(ctx.redis, ctx.keys, rp_id):
            try:
                return await _rebuild(ctx, rp_id)
            finally:
                await slots.unlock_rebuild(ctx.redis, ctx.keys, rp_id)
        await asyncio.sleep(LOCK_WAIT)
    raise Unavailable("the packet is being prepared; retry")


async def _rebuild(ctx: Context, rp_id: int) -> dict | None:
    if meta := await slots.meta(ctx.redis, ctx.keys, rp_id):  # loaded while we waited
        return {k: int(v) for k, v in meta.items()}
    async with ctx.db.cursor() as cur:
        packet = await packets.get(cur, rp_id)
        if packet is None or lifecycle.status(packet, int(time.time())) != "active":
            return None
        shares = await packets.shares(cur, rp_id)
    meta = meta_of(packet)
    ctx.caches.shares.put(rp_id, {s["seq"]: s["id"] for s in shares})  # for booking its grabs
    free = [s["seq"] for s in shares if s["user_id"] is None and not s["is_refunded"]]
    holders = {s["user_id"]: s["seq"] for s in shares if s["user_id"] is not None}
    await slots.load(ctx.redis, ctx.keys, rp_id, meta, free, holders,
                     packet["expire_time"] + KEEP_AFTER_EXPIRY)
    return meta
