"""The unit of work: one transaction, and the events it sends once it has committed."""
import logging

from rtserver import outbound
from rtserver.context import Context
from storage import outbound as storage_outbound
from storage.db import Pipeline
from storage.errors import is_deadlock

log = logging.getLogger("rtserver.uow")


class UnitOfWork:
    """`async with UnitOfWork(ctx) as uow:` … `await uow.commit()`; leaving without commit rolls back.

    Events queued with `emit` go out only after the commit, so no client ever hears of money that
    the database then refused; on rollback they are dropped. They, and the `after_commit`
    callbacks, run once the transaction has given its connection back: a callback that needs the
    database must never wait for a connection its own transaction still holds.

    Its statements run one by one on `uow.cur`; or, `pipelined`, they are queued on
    `uow.pipeline` and all sent by `commit()` in one round trip (storage.db.Pipeline), after
    which their results can be read and the events they call for emitted.

    What the chat app's back end is to be told (`send_out`, rtserver/outbound.py) is written by
    `commit()` itself, as the transaction's last statement: no change commits without its
    outbound events, and none is kept for a change that does not.
    """

    def __init__(self, ctx: Context, pipelined: bool = False):
        self.ctx = ctx
        self._tx = ctx.db.pipeline() if pipelined else ctx.db.transaction()
        self._events: list[tuple[list[str], dict]] = []
        self._after: list = []
        self._outbound: list[tuple[str, dict]] = []

    async def __aenter__(self) -> "UnitOfWork":
        await self._tx.__aenter__()
        if isinstance(self._tx, Pipeline):
            self.pipeline = self._tx
        else:
            self.cur = self._tx.cur
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._tx.__aexit__(*exc_info)
        if self._tx.committed:
            await self._after_commit()

    def emit(self, rooms: list[str], event: dict) -> None:
        self._events.append((rooms, event))

    def send_out(self, kind: str, data: dict) -> None:
        """Tell the chat app's back end of this change (--events-url; nothing without it)."""
        if self.ctx.outbox.enabled:
            self._outbound.append((kind, data))

    def after_commit(self, callback) -> None:
        """Run `await callback()` once committed (loading slots, queueing, cache changes)."""
        self._after.append(callback)

    async def commit(self) -> None:
        if self._outbound:
            now = outbound.now_ms()
            deadline = self.ctx.outbox.deadline_ms(now)
            if isinstance(self._tx, Pipeline):
                storage_outbound.queue(self.pipeline, self._outbound, now, deadline)
            else:
                await storage_outbound.insert(self.cur, self._outbound, now, deadline)
            self.after_commit(self._wake_delivery)
        await self._tx.commit()

    async def _wake_delivery(self) -> None:
        self.ctx.outbox.wake()

    async def _after_commit(self) -> None:
        for callback in self._after:
            try:
                await callback()
            except Exception as exc:
                # The money is committed; what follows is repaired by a sweep or a rebuild.
                self.ctx.outages.failed(exc, "an after-commit step", log)
        await publish(self.ctx, self._events)


async def retrying(work, attempts: int = 3):
    """Run `await work()`, again if the database picked it as a deadlock victim (it rolled back)."""
    for attempt in range(attempts):
        try:
            return await work()
        except Exception as exc:
            if not is_deadlock(exc) or attempt == attempts - 1:
                raise


async def publish(ctx: Context, events: list[tuple[list[str], dict]]) -> None:
    """Send events to their rooms on every node; a lost event is caught up from history."""
    try:
        await ctx.bus.publish(events)
    except Exception as exc:
        ctx.outages.failed(exc, "publishing events", log)
