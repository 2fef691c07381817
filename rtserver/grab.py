"""Grabbing a share (抢红包): know the packet, may this user open it, Redis decides, MariaDB
books, answer.

Once a paid packet is finished and its every share credited, who holds what is final: the taps
that come after (most of a big group's, 手慢了 all) are answered from the node's copy of that,
without Redis.

Redis decides who takes which share, with one script and no SQL: a free slot won, the slot this
user holds already, or none left. MariaDB books the share the slot names, in a batch with the
grabs of other users (rtserver/booking.py). A grab that holds a slot is answered only with what
became of it: never `unavailable`, which would be a lie once its share is booked.
"""
import asyncio
import time

from rtserver import access, chat, lifecycle
from rtserver.booking import already, share_outcome
from rtserver.context import Context
from rtserver.errors import Frozen, NotFound, NotPaid, OutcomeUnknown, Unavailable
from rtserver.opening import check_may_open, needs_membership
from rtserver.slots import Packet, load_slots
from storage import packets, people, slots
from storage.errors import is_dependency_down
from storage.schema import PayStatus

MAX_SAID = 200  # characters a grab may say to a 口令红包 (longer: bad_request; phrases are ≤ 20)
MAX_TAKES = 5  # a slot whose share went elsewhere (after a Redis rebuild) is retried this often
TOO_SLOW_PATIENCE = 5.0  # seconds a grab with no slot waits for the last ones to be booked
KNOWN_PATIENCE = 10.0  # seconds a grab keeps taking or booking its slot through an outage
RETRY_FIRST, RETRY_MOST = 0.1, 1.0  # seconds between those tries, doubling


async def grab(ctx: Context, user_id: int, rp_id: int, password: str | None = None) -> dict:
    """Try to take a share of a packet for a user: `ok` with the money, `already`, `too_slow`
    (every share went to others) or `expired`. `password`: what the user said to a 口令红包."""
    if ctx.frozen.holds(user_id):  # this node's copy: no query, and no slot taken
        raise Frozen()
    packet = await ctx.caches.packets.get_or_load(rp_id, lambda: load_slots(ctx, rp_id))
    if packet is None or int(time.time()) >= packet.expire_time:
        # Not grabbable (any more) — or not yet when its slots were looked for, and paid since.
        if answer := await answer_from_database(ctx, user_id, rp_id, password):
            return answer
        packet = await load_slots(ctx, rp_id)
        if packet is None:
            raise Unavailable("the packet is being opened; tap again")
    since = await access.member_since_fast(ctx, packet.for_id, user_id) \
        if needs_membership(packet) else None
    check_may_open(packet, user_id, since, password)  # before Redis: a refusal takes no slot
    answer = await answer_if_final(ctx, rp_id, user_id) or await take_share(ctx, packet, user_id)
    if packet.password is not None and answer["result"] == "ok":
        await chat.say_password(ctx, user_id, packet.for_id, packet.password)
    return answer


async def answer_if_final(ctx: Context, rp_id: int, user_id: int) -> dict | None:
    """`already` or 手慢了 for a paid packet known finished (here, or by another node's event);
    None while the packet's shares may still change hands."""
    if not ctx.caches.finished.get(rp_id) or ctx.caches.not_final.get(rp_id):
        return None
    try:
        holders = await ctx.caches.holders.get_or_load(rp_id, lambda: final_holders(ctx, rp_id))
    except Exception as exc:
        if not is_dependency_down(exc):
            raise
        return None  # MariaDB away: Redis and the caches can still say 手慢了
    if holders is None:
        ctx.caches.not_final.put(rp_id, True)
        return None
    if user_id not in holders:
        return {"result": "too_slow"}
    return already({"money": holders[user_id], "is_into_account": True})


async def final_holders(ctx: Context, rp_id: int) -> dict[int, int] | None:
    """{user id: fen} of a finished packet that is paid, every share credited; None for one
    that is not so yet: still awaiting its payment (a payment that fails voids its shares), or
    its settlement."""
    async with ctx.db.cursor() as cur:
        return await packets.final_holders(cur, rp_id) or None


async def take_share(ctx: Context, packet: Packet, user_id: int) -> dict:
    """Redis decides, MariaDB books: the answer of a grab that may open the packet."""
    rp_id = packet.id
    for _ in range(MAX_TAKES):
        # The script may have taken a slot even when its reply was lost: asked again, it
        # answers the same slot (or none), so it is asked until Redis answers.
        take, _ = await until_known(lambda: ctx.taker.take(rp_id, user_id))
        if take.outcome == slots.MISSING:  # Redis lost the slots: rebuilt from MariaDB
            if await load_slots(ctx, rp_id) is None and \
                    (answer := await answer_from_database(ctx, user_id, rp_id, packet.password)):
                return answer
            continue
        if take.outcome == slots.TOO_SLOW:
            return await too_slow(ctx, rp_id)
        if take.outcome == slots.ALREADY:
            if take.left == 0:
                ctx.finisher.notice_drained(rp_id)
            # What an earlier tap of this user won with the slot they hold; nothing if that
            # request died before booking it, so that this grab books it.
            if answer := await share_outcome(ctx, rp_id, user_id, take.slot):
                return answer
        if answer := await book(ctx, packet, user_id, take):
            return answer
        await slots.release(ctx.redis, ctx.keys, rp_id, user_id)  # its share went elsewhere
    raise Unavailable("no share could be had for this grab; retry")


async def too_slow(ctx: Context, rp_id: int) -> dict:
    """手慢了, once every share is booked: they went to others. A slot taken but not booked yet
    may still come back to the packet (a Redis rebuild, a refund), so until then, no answer."""
    if await ctx.finisher.until_booked(rp_id, TOO_SLOW_PATIENCE):
        return {"result": "too_slow"}
    raise Unavailable("the last shares are still being booked; tap again")


async def book(ctx: Context, packet: Packet, user_id: int, take: slots.Take) -> dict | None:
    """Book the share of a slot won now, or taken earlier by a request that died before booking
    it; None when that share went to someone else.

    Booking again is safe: a share this user holds already is found so, and if this grab's own
    first attempt booked it (a commit whose reply was lost), the grab won it now."""
    answer, retried = await until_known(
        lambda: ctx.booker.book(packet, user_id, take.slot, take.left == 0))
    if retried and answer is not None and answer["result"] == "already":
        return {**answer, "result": "ok"}
    return answer


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


async def answer_from_database(ctx: Context, user_id: int, rp_id: int,
                               password: str | None) -> dict | None:
    """Answer a grab on a packet whose slots are not (or no longer) in Redis; None when the
    packet turns out to be grabbable (paid a moment ago): then the grab goes on."""
    async with ctx.db.cursor() as cur:
        row = await packets.get(cur, rp_id)
        if row is None:
            raise NotFound("no such packet")
        packet = Packet.of_row(row)
        since = await people.member_since(cur, packet.for_id, user_id) \
            if needs_membership(packet) else None
        check_may_open(packet, user_id, since, password)
        if row["pay_status"] == PayStatus.UNPAID:
            raise NotPaid()
        share = await packets.share_of(cur, rp_id, user_id)
        status = lifecycle.status(row, int(time.time()))
        if status == "expired" and not share and \
                await packets.taken_but_unfinished(cur, [rp_id]):
            # Drained, but the node that booked its last share died before finishing it, and
            # Redis forgot it since: the shares went to others (the expiry refund finishes it).
            status = "finished"
    if share and status != "voided":
        return already(share)
    if status == "finished":
        return {"result": "too_slow"}
    if status == "active":
        return None
    return {"result": "expired"}
