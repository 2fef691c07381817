"""Runs the background jobs until stopped: the settlement consumer, and sweeps every
--job-interval seconds. Every job is safe on many nodes at once (guarded updates)."""
import asyncio
import logging

from jobs.settler import Settler, requeue_unsettled
from rtserver.context import Context
from rtserver.daily import uncount_lapsed
from rtserver.order_checks import close_overdue, query_unnotified
from rtserver.orphans import book_orphaned_grabs
from rtserver.payments import void_overdue
from rtserver.provider_refunds import send_due
from rtserver.refund import refund_expired

log = logging.getLogger("rtserver.jobs")

SWEEPS = (refund_expired, void_overdue, requeue_unsettled, book_orphaned_grabs, uncount_lapsed)
# The sweeps that call payment providers run in a loop of their own: a provider that is slow
# to answer never holds back a refund, a void or a settlement.
CALLING_SWEEPS = (query_unnotified, close_overdue, send_due)


class JobRunner:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._stop = asyncio.Event()
        self._tasks = []

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._sweep_forever(SWEEPS)),
                       asyncio.ensure_future(self._sweep_forever(CALLING_SWEEPS)),
                       asyncio.ensure_future(Settler(self.ctx).run(self._stop))]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _sweep_forever(self, sweeps) -> None:
        while not self._stop.is_set():
            for sweep in sweeps:
                try:
                    await sweep(self.ctx)
                except Exception as exc:  # retried next sweep
                    self.ctx.outages.failed(exc, f"job {sweep.__name__}", log)
            try:
                await asyncio.wait_for(self._stop.wait(), self.ctx.settings.job_interval)
            except asyncio.TimeoutError:
                pass
