"""The delivery of outbound events (rtserver/outbound.py), on every node with --events-url.

Rounds follow each other while a full round was delivered; otherwise it waits for a commit of
this node that kept some, or a second at most, for retries coming due and the events other
nodes kept. A receiver that took nothing of a round is down or refusing: it is not asked again
for a second, then two, four, … up to half a minute, whatever commits meanwhile, so that an
outage costs the node next to nothing while grabs go on.
"""
import asyncio
import contextlib
import logging
import time

from rtserver.context import Context
from rtserver.outbound import ROUND, deliver_due, tidy

log = logging.getLogger("rtserver.outbound")

POLL = 1.0  # seconds between looks when nothing woke it
MAX_PAUSE = 30.0  # seconds the job rests at most after rounds the receiver took nothing of
TIDY_EVERY = 600.0  # seconds between forgetting old deliveries and counting the failed


class Delivery:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._stopping = False
        self._task = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop after the round under way (its POSTs time out at the latest)."""
        self._stopping = True
        self.ctx.outbox.wake()
        await self._task

    async def _run(self) -> None:
        tidied, fruitless = 0.0, 0
        while not self._stopping:
            claimed = delivered = 0
            try:
                if time.monotonic() - tidied > TIDY_EVERY:
                    await tidy(self.ctx)
                    tidied = time.monotonic()
                claimed, delivered = await deliver_due(self.ctx)
            except Exception as exc:  # its rows stay pending: the next round takes them
                self.ctx.outages.failed(exc, "delivering outbound events", log)
            fruitless = fruitless + 1 if claimed and not delivered else 0
            if fruitless:
                await self._rest(min(POLL * 2 ** (fruitless - 1), MAX_PAUSE))
            elif delivered < ROUND:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.ctx.outbox.due.wait(), POLL)
            self.ctx.outbox.due.clear()

    async def _rest(self, seconds: float) -> None:
        """Wait, deaf to commits' wake-ups, unless stopping."""
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            self.ctx.outbox.due.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.ctx.outbox.due.wait(), deadline - time.monotonic())
