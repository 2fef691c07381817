"""Finishing a packet: once its every share is booked, record when, mark 手气最佳, tell the room.

The booking that takes a packet's last free share is not always the grab of its last slot: a
slot taken earlier may be booked later (by the other writer, on another node, or by the orphan
sweep). So the packets of every committed batch are checked, as committed and outside any
transaction: whichever booking commits last sees no free share, and the guarded update lets one
finisher win. The checks run beside the grabs, not in their way: one round at a time per node
takes the packets of all the batches committed meanwhile, asks Redis which have no free slot
left and MariaDB about those alone, and finishes those whose every share is booked side by side.
"""
import asyncio
import logging
import time

from rtserver import access, notices, views
from rtserver.batching import Batcher, Closed
from rtserver.context import Context
from rtserver.money import format_fen
from rtserver.slots import Packet
from rtserver.uow import UnitOfWork, retrying
from storage import packets, people, slots
from storage.schema import PacketType

log = logging.getLogger("rtserver.finishing")

RETRY_AFTER = 1.0  # seconds before checking again packets whose check failed (MariaDB away)
# Seconds between asking MariaDB whether a packet a grab waits on has every share booked, when
# nothing has said so meanwhile (its last bookings may be an orphan the sweep books).
RECHECK_AFTER = 0.5


class Finisher:
    """Checks, in the background, whether the packets of committed bookings are finished."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.rounds = Batcher(self._check_round, lanes=1)

    def check(self, rp_ids) -> asyncio.Future:
        """Have these packets checked soon; the future is done once they have been."""
        try:
            return asyncio.gather(*(self.rounds.submit(rp_id) for rp_id in rp_ids))
        except Closed:  # the node is stopping: the next tap, or the expiry refund, finishes it
            return _done_already()

    def notice_drained(self, rp_id: int) -> None:
        """A tap found no free slot left: have the packet finished if nobody has.

        The booking that took its last share normally does, but its node may have died in
        between (kill -9): whoever taps next, and the expiry refund at the latest, finish it
        instead. A packet known finished costs nothing more here."""
        if not self.ctx.caches.finished.get(rp_id):
            self.check([rp_id])

    async def until_booked(self, rp_id: int, patience: float) -> bool:
        """Whether every share of a packet with no free slot left is booked, waiting up to
        `patience` seconds for the bookings of its last slots.

        Only then is 手慢了 true: a slot taken but not yet booked (its request waiting for
        MariaDB, or dead) may still come back to the packet, by a Redis rebuild or a refund.
        The wait ends when the caches learn it: from this node's checks after its bookings,
        or another node's packet.state event. The first grab to wait has MariaDB asked at once
        (this node may have missed the finish: restarted, or away from the bus meanwhile); the
        others wait with it, and MariaDB is asked again after each RECHECK_AFTER of silence."""
        deadline = time.monotonic() + patience
        if not self.ctx.caches.booked.awaited(rp_id):
            self.check([rp_id])
        while not await self.ctx.caches.booked.until_put(
                rp_id, min(RECHECK_AFTER, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                return False
            self.check([rp_id])
        return True

    async def until_finished(self, rp_id: int, checked: asyncio.Future) -> None:
        """Until a packet is known finished, or `checked`, the check after its last booking,
        is done: at its own finish's commit, not at the end of the round it was checked in,
        which finishes the round's other packets too (under a storm, dozens side by side)."""
        finished = asyncio.ensure_future(self.ctx.caches.finished.until_put(rp_id, None))
        try:  # neither is cancelled if this is: `checked` has other waiters
            await asyncio.wait((checked, finished), return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()

    def known_booked(self, rp_id: int) -> None:
        """Remember that every share of a packet is booked (waking the grabs waiting for it)."""
        self.ctx.caches.booked.put(rp_id, True)

    def known_finished(self, rp_id: int) -> None:
        self.ctx.caches.packet_finished(rp_id)

    async def close(self) -> None:
        """Check what is waiting, then stop."""
        await self.rounds.close()

    async def _check_round(self, rp_ids: list[int]) -> list[None]:
        try:
            await finish_taken(self.ctx, set(rp_ids))
        except Exception as exc:  # checked again shortly
            self.ctx.outages.failed(exc, "finishing packets", log)
            asyncio.get_running_loop().call_later(RETRY_AFTER, self.check, set(rp_ids))
        return [None] * len(rp_ids)


def _done_already() -> asyncio.Future:
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


async def finish_taken(ctx: Context, rp_ids) -> None:
    """Finish those of the packets that have no free share left."""
    # A share is booked only after its slot was taken: while a packet still has a free slot in
    # Redis, it has a free share too, and MariaDB need not be asked.
    rp_ids = [rp_id for rp_id in rp_ids if not ctx.caches.finished.get(rp_id)]
    if not rp_ids:
        return
    drained = await slots.drained(ctx.redis, ctx.keys, sorted(rp_ids))
    if not drained:
        return
    async with ctx.db.cursor() as cur:
        taken = await packets.taken_but_unfinished(cur, drained)
    for rp_id in taken:
        ctx.finisher.known_booked(rp_id)  # 手慢了 is true from here on, finished or not
    await asyncio.gather(*(finish(ctx, rp_id) for rp_id in taken))
    if len(taken) < len(drained):  # the others may have been finished elsewhere
        async with ctx.db.cursor() as cur:
            for rp_id in await packets.finished_among(cur, set(drained) - set(taken)):
                ctx.finisher.known_finished(rp_id)


async def finish(ctx: Context, rp_id: int) -> None:
    """Record the finish, mark the best luck of a lucky packet, and tell the room.

    Under a storm the finish meets the bookings of the packet's last shares in MariaDB, and now
    and then one of them is made a deadlock's victim: the finish is tried again at once, so that
    the room hears 已被领完 and 手气最佳 without waiting for the next check."""
    async def attempt():
        async with UnitOfWork(ctx) as uow:
            await do_finish(uow, rp_id)
            await uow.commit()

    await retrying(attempt)


async def do_finish(uow: UnitOfWork, rp_id: int) -> bool:
    """Finish a packet whose every share is claimed, in `uow`; False if it was finished (or
    voided) already. The event goes to the room, and the sender's notice to them, once `uow`
    commits."""
    if not await packets.finish(uow.cur, rp_id):
        return False  # another node or task finished it (the next check learns it), or a void
    uow.after_commit(lambda: _known_finished(uow.ctx, rp_id))
    packet = await packets.get(uow.cur, rp_id)
    event = {"ev": "packet.state", "rp_id": rp_id, "status": "finished",
             "grabbed_count": packet["number"], "expend_time": packet["expend_time"]}
    if packet["type"] == PacketType.GROUP_LUCKY:
        best = await packets.mark_best(uow.cur, rp_id)
        names = await people.names(uow.cur, [best["user_id"]])
        event["best"] = {"user": views.person(best["user_id"], names),
                         "money": format_fen(best["money"])}
    uow.emit(access.packet_rooms(packet), event)
    uow.send_out("packet.finished", {k: v for k, v in event.items() if k not in ("ev", "status")})
    await notices.keep(uow, notices.finished(Packet.of_row(packet), packet["finish_time"]))
    return True


async def _known_finished(ctx: Context, rp_id: int) -> None:
    ctx.finisher.known_finished(rp_id)
