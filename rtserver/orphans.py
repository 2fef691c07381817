"""Grabs whose slot was taken in Redis but whose share was never booked (the grabber's request
died in between): a sweep books them, so every share ends grabbed or refunded, never stuck."""
import time

from rtserver.booking import booker_of
from rtserver.context import Context
from rtserver.slots import load_slots
from storage import packets, slots

ORPHAN_GRACE = 10  # seconds a taken slot may wait for its own request to book it


async def book_orphaned_grabs(ctx: Context, grace: float = ORPHAN_GRACE) -> int:
    """Book every slot held in Redis without its share claimed; return how many were booked."""
    now = int(time.time())
    async with ctx.db.cursor() as cur:
        candidates = await packets.with_unclaimed_shares(cur, now - grace, now, limit=200)
    booked = 0
    for rp_id in candidates:
        holders = await slots.holders(ctx.redis, ctx.keys, rp_id)
        meta = await load_slots(ctx, rp_id)
        if meta is None:
            continue
        async with ctx.db.cursor() as cur:
            claimed = {s["user_id"] for s in await packets.grabs(cur, rp_id)}
        left = await slots.free_count(ctx.redis, ctx.keys, rp_id)
        for user_id, seq in holders.items():
            if user_id not in claimed:
                answer = await booker_of(ctx).book(meta, rp_id, user_id, seq, left == 0)
                booked += bool(answer and answer["result"] == "ok")
    return booked
