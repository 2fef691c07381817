"""Grabs whose slot was taken in Redis but whose share was never booked (the grabber's request
died in between): a sweep books them, so every share ends grabbed or refunded, never stuck."""
import logging
import time

from rtserver.context import Context
from rtserver.errors import InvalidAmount
from rtserver.slots import Packet, load_slots
from storage import packets, slots
from storage.errors import is_refused

log = logging.getLogger("rtserver.orphans")

ORPHAN_GRACE = 10  # seconds a taken slot may wait for its own request to book it


async def book_orphaned_grabs(ctx: Context, grace: float = ORPHAN_GRACE) -> int:
    """Book every slot held in Redis without its share claimed; return how many were booked."""
    now = int(time.time())
    async with ctx.db.cursor() as cur:
        candidates = await packets.with_unclaimed_shares(cur, now - grace, now, limit=200)
    booked = 0
    for rp_id in candidates:
        holders = await slots.holders(ctx.redis, ctx.keys, rp_id)
        packet = await load_slots(ctx, rp_id)
        if packet is None:
            continue
        async with ctx.db.cursor() as cur:
            claimed = {s["user_id"] for s in await packets.grabs(cur, rp_id)}
        left = await slots.free_count(ctx.redis, ctx.keys, rp_id)
        for user_id, seq in holders.items():
            if user_id not in claimed:
                booked += await _book(ctx, packet, user_id, seq, left == 0)
    return booked


async def _book(ctx: Context, packet: Packet, user_id: int, seq: int, last: bool) -> bool:
    """Book one orphaned grab. One that MariaDB refuses (a wallet too full for its share) is
    left for the expiry refund: it must not stop the sweep for every orphan after it."""
    try:
        answer = await ctx.booker.book(packet, user_id, seq, last)
    except Exception as exc:
        if not (is_refused(exc) or isinstance(exc, InvalidAmount)):
            raise
        # Every sweep meets it again until the expiry refund: a line each time, not a trace.
        log.warning("orphaned grab of packet %s slot %s not booked: %s", packet.id, seq, exc)
        return False
    return bool(answer and answer["result"] == "ok")
