"""The delivery of outbound events (rtserver/outbound.py), on every node with --events-url.

Rounds follow each other while a full round was delivered; otherwise it waits for a commit of
this node that kept some, or a second at most, for retries coming due and the events other
nodes kept (a receiver that takes nothing is not asked again at once).
"""
import asyncio
import contextlib
import logging
import time

from rtserver.context import Context
from rtserver.outbound import ROUND, deliver_due, tidy

log = logging.getLogger("rtserver.outbound")

POLL = 1.0  # seconds between looks when nothing woke it
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
        tidied = 0.0
        while not self._stopping:
            delivered = 0
            try:
                if time.monotonic() - tidied > TIDY_EVERY:
                    await tidy(self.ctx)
                    tidied = time.monotonic()
                _, delivered = await deliver_due(self.ctx)
            except Exception as exc:  # its rows stay pending: the next round takes them
                self.ctx.outages.failed(exc, "delivering outbound events", log)
            if delivered < ROUND:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.ctx.outbox.due.wait(), POLL)
                self.ctx.outbox.due.clear()
