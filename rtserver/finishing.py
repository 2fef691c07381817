"""Finishing a packet: once its every share is booked, record when, mark 手气最佳, tell the room.

The booking that takes a packet's last free share is not always the grab of its last slot: a
slot taken earlier may be booked later (by the other writer, on another node, or by the orphan
sweep). So the packets of every committed batch are checked, as committed and outside any
transaction: whichever booking commits last sees no free share, and the guarded update lets one
finisher win. The checks run beside the grabs, not in their way: one task per node takes the
packets of all the batches committed meanwhile, asks Redis which have no free slot left, and
MariaDB about those alone.
"""
import asyncio
import logging
import time

from rtserver import access, lifecycle, views
from rtserver.context import Context
from rtserver.limits import GROUP_LUCKY
from rtserver.money import format_fen
from rtserver.uow import UnitOfWork, publish
from storage import packets, people, slots

log = logging.getLogger("rtserver.finishing")

RETRY_AFTER = 1.0  # seconds before checking again packets whose check failed (MariaDB away)


class Finisher:
    """Checks, in the background, whether the packets of committed bookings are finished."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.waiting: dict[int, int] = {}  # rp_id → packet type
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None

    def check(self, types: dict[int, int]) -> None:
        self.waiting.update(types)
        self.wake.set()
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Check what is waiting, then stop."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.waiting:
            await finish_taken(self.ctx, self.waiting)

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            types, self.waiting = self.waiting, {}
            try:
                await finish_taken(self.ctx, types)
            except Exception:
                log.exception("finishing packets failed; checking them again shortly")
                self.waiting = {**types, **self.waiting}
                await asyncio.sleep(RETRY_AFTER)
                self.wake.set()


async def finish_taken(ctx: Context, types: dict[int, int]) -> None:
    """Finish those of the packets (rp_id → type) that have no free share left."""
    # A share is booked only after its slot was taken: while a packet still has a free slot in
    # Redis, it has a free share too, and MariaDB need not be asked.
    drained = await slots.drained(ctx.redis, ctx.keys, list(types))
    if not drained:
        return
    async with ctx.db.cursor() as cur:
        taken = await packets.taken_but_unfinished(cur, drained)
    for rp_id in taken:
        await finish(ctx, rp_id, types[rp_id])


async def finish(ctx: Context, rp_id: int, type_: int) -> None:
    async with UnitOfWork(ctx) as uow:
        if await packets.finish(uow.cur, rp_id, int(time.time())):
            if type_ == GROUP_LUCKY:
                best = lifecycle.best_share(await packets.shares(uow.cur, rp_id))
                await packets.mark_best(uow.cur, best["id"])
            uow.after_commit(lambda: announce_finished(ctx, rp_id))
        await uow.commit()


async def announce_finished(ctx: Context, rp_id: int) -> None:
    """Tell the room the packet is empty, with its best luck when it is a lucky one."""
    async with ctx.db.cursor() as cur:
        packet = await packets.get(cur, rp_id)
        event = {"ev": "packet.state", "rp_id": rp_id, "status": "finished",
                 "grabbed_count": packet["number"], "expend_time": packet["expend_time"]}
        if packet["type"] == GROUP_LUCKY:
            best = lifecycle.best_share(await packets.shares(cur, rp_id))
            names = await people.names(cur, [best["user_id"]])
            event["best"] = {"user": views.person(best["user_id"], names),
                             "money": format_fen(best["money"])}
    await publish(ctx, [(access.packet_rooms(packet), event)])
