"""Grabbing a share (抢红包): one Redis script decides, a batched transaction books it."""
import asyncio
import time

from rtserver import access, lifecycle
from rtserver.booking import already, booker_of
from rtserver.context import Context
from rtserver.errors import Forbidden, NotPaid, OutcomeUnknown, Unavailable
from rtserver.finishing import finisher_of
from rtserver.limits import PERSONAL
from rtserver.slots import load_slots
from storage import packets, slots
from storage.errors import is_dependency_down

MAX_TAKES = 5  # a slot whose share went elsewhere (after a Redis rebuild) is retried this often
TOO_SLOW_PATIENCE = 5.0  # seconds a grab with no slot waits for the last ones to be booked
KNOWN_PATIENCE = 10.0  # seconds a grab keeps taking or booking its slot through an outage
RETRY_FIRST, RETRY_MOST = 0.1, 1.0  # seconds between those tries, doubling


async def grab(ctx: Context, user_id: int, rp_id: int) -> dict:
    """Try to take a share of a packet for a user.

    "too_slow" is said only of a packet whose every share MariaDB holds booked: on one this
    node knows so, it costs one Redis call and no SQL. A won slot is booked in
    MariaDB, credited at once when the packet is paid (or left for settlement while a
    third-party payment is pending).
    """
    meta = await ctx.caches.packets.get_or_load(rp_id, lambda: load_slots(ctx, rp_id))
    if meta is None:
        return await answer_from_database(ctx, user_id, rp_id)
    await check_may_grab(ctx, meta, user_id)
    if int(time.time()) >= meta["expire_time"]:
        return await answer_from_database(ctx, user_id, rp_id)
    for _ in range(MAX_TAKES):
        # The script may have taken a slot even when its reply was lost: asked again, it
        # answers the same slot (or none), so it is asked until Redis answers.
        take, _ = await until_known(lambda: ctx.taker.take(rp_id, user_id))
        if take.outcome == slots.MISSING:
            if await load_slots(ctx, rp_id) is None:
                return await answer_from_database(ctx, user_id, rp_id)
            continue
        if take.outcome == slots.TOO_SLOW:
            if await finisher_of(ctx).until_booked(rp_id, TOO_SLOW_PATIENCE):
                return {"result": "too_slow"}  # every share is booked: they went to others
            raise Unavailable("the last shares are still being booked; tap again")
        if take.left == 0 and take.outcome == slots.ALREADY:
            finisher_of(ctx).notice_drained(rp_id)
        if take.outcome == slots.ALREADY:
            async with ctx.db.cursor() as cur:
                share = await packets.share_at(cur, rp_id, take.slot)
            if share["user_id"] == user_id:
                return already(share)
            if share["is_refunded"]:
                return {"result": "expired"}
        # Won now, or taken earlier by a request that died before booking it. Booking again
        # is safe: a share this user holds already is found so, and if this grab's own first
        # attempt booked it (a commit whose reply was lost), the grab won it now.
        answer, retried = await until_known(
            lambda: booker_of(ctx).book(meta, rp_id, user_id, take.slot, take.left == 0))
        if retried and answer is not None and answer["result"] == "already":
            return {**answer, "result": "ok"}
        if answer is not None:
            return answer
        await slots.release(ctx.redis, ctx.keys, rp_id, user_id)
    raise Unavailable("could not settle on a share; retry")


async def until_known(attempt):
    """`await attempt()` through an outage of MariaDB or Redis of up to KNOWN_PATIENCE; return
    its result and whether an attempt failed first.

    For the steps of a grab that may have changed something though their reply was lost (a slot
    taken, a share booked): such a grab is never told `unavailable`, which would be a lie once
    its slot is booked (by its next tap, the orphan sweep, or a commit that had landed). When
    the outage lasts, OutcomeUnknown closes its socket instead of answering."""
    deadline, delay, failed = time.monotonic() + KNOWN_PATIENCE, RETRY_FIRST, False
    while True:
        try:
            return await attempt(), failed
        except Exception as exc:
            if not is_dependency_down(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise OutcomeUnknown("a dependency is away; the grab's outcome is not known") \
                    from exc
        failed = True
        await asyncio.sleep(delay)
        delay = min(2 * delay, RETRY_MOST)


async def check_may_grab(ctx: Context, meta: dict, user_id: int) -> None:
    if meta["type"] == PERSONAL:
        if user_id == meta["sender"]:
            raise Forbidden("the sender cannot open a personal packet")
        if user_id != meta["for_id"]:
            raise Forbidden("this packet is not for you")
    elif not await access.is_member_fast(ctx, meta["for_id"], user_id):
        raise Forbidden("not a member of this packet's group")


async def answer_from_database(ctx: Context, user_id: int, rp_id: int) -> dict:
    """Answer a grab on a packet whose slots are not (or no longer) in Redis."""
    async with ctx.db.cursor() as cur:
        packet = await access.check_can_see(cur, await packets.get(cur, rp_id), user_id)
        if packet["type"] == PERSONAL and packet["user_id"] == user_id:
            raise Forbidden("the sender cannot open a personal packet")
        if packet["pay_status"] == lifecycle.UNPAID:
            raise NotPaid()
        share = await packets.share_of(cur, rp_id, user_id)
    status = lifecycle.status(packet, int(time.time()))
    if share and status != "voided":
        return already(share)
    if status == "finished":
        return {"result": "too_slow"}
    return {"result": "expired"}
