"""The settlement consumer: takes packets off the queue, settles them, and settles each once more.

The second pass, 5 seconds later, catches grabs that committed while the first pass ran.
"""
import asyncio
import logging
import os
import secrets
import socket

from rtserver import settlement
from rtserver.context import Context
from storage.queue import SettlementQueue

log = logging.getLogger("rtserver.jobs")

SECOND_PASS_DELAY = 5.0  # seconds, as the original design prescribes


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Settler:
    def __init__(self, ctx: Context, name: str | None = None, reclaim_idle_ms: int = 30_000):
        self.ctx = ctx
        self.name = name or consumer_name()
        self.queue = SettlementQueue(ctx.redis, ctx.keys)
        self.reclaim_idle_ms = reclaim_idle_ms

    async def run_once(self, block_ms: int = 1000) -> int:
        """Handle what is due now; return how many queue messages were handled."""
        await self.queue.ensure_group()
        await self.queue.move_due()
        messages = await self.queue.take(self.name, block_ms=block_ms,
                                         reclaim_idle_ms=self.reclaim_idle_ms)
        for message_id, rp_id, settle_pass in messages:
            credited = await settlement.settle(self.ctx, rp_id)
            log.info("settled packet %d (pass %d): %d share(s) credited", rp_id, settle_pass,
                     credited)
            if settle_pass == 1:
                await self.queue.put_later(rp_id, 2, SECOND_PASS_DELAY)
            await self.queue.done(message_id)
        return len(messages)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:
                self.ctx.outages.failed(exc, "settlement", log)
                await asyncio.sleep(1)


async def requeue_unsettled(ctx: Context) -> int:
    """Put back on the queue paid packets whose credits are overdue."""
    overdue = await settlement.unsettled(ctx)
    queue = SettlementQueue(ctx.redis, ctx.keys)
    for rp_id in overdue:
        await queue.put(rp_id)
    return len(overdue)
