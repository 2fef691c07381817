"""Doing many callers' work together: what is submitted while a batch is handled goes in the next.

Under a storm of grabs, a thousand requests each wanting one Redis call or one transaction are
served better by a few calls that each carry hundreds of them: one round trip, one reply, one
turn of the event loop each. A `Batcher` gathers the items submitted during a turn of the loop
(and while its lanes are busy) and hands them to its `handle` function together; every
submitter awaits its own item's result. The grab scripts, the bookings of grabs, the finishing
checks and the events for other nodes all go through one.
"""
import asyncio
from collections.abc import Awaitable, Callable, Sequence


class Closed(Exception):
    """The batcher is closing: nothing submitted now would be handled."""


class Batcher:
    """`handle(items)` is awaited with up to `size` items at a time, by at most `lanes` batches
    at once (None: no limit), and returns one result per item, in order; a result that is an
    exception is raised to that item's submitter. If `handle` raises, each submitter of the
    batch gets the error."""

    def __init__(self, handle: Callable[[list], Awaitable[Sequence]], size: int | None = None,
                 lanes: int | None = None):
        self.handle, self.size, self.lanes = handle, size, lanes
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.lanes_busy = 0  # lanes made and not yet ended
        self.tasks: set[asyncio.Task] = set()  # the lanes' tasks, for close() to wait for
        self.starting = False  # a lane is made that has not taken its first batch yet
        self.closing = False
        self.loop = asyncio.get_running_loop()  # kept: asking costs a system call (getpid)

    def submit(self, item) -> asyncio.Future:
        """Queue an item; the future holds its result once its batch has been handled."""
        answer = self.loop.create_future()
        self.add(item, answer)
        return answer

    def add(self, item, answer: asyncio.Future | None = None) -> None:
        """Queue an item whose result nobody awaits (no future made for it)."""
        if self.closing:
            raise Closed()
        self.pending.append((item, answer))
        if not self.starting and (self.lanes is None or self.lanes_busy < self.lanes):
            # Started on the next turn of the loop, so that everything submitted in this
            # turn goes in its first batch.
            self.starting = True
            self.lanes_busy += 1
            task = self.loop.create_task(self._lane())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Handle what was submitted, then refuse more. A lane is never cancelled halfway
        through a batch: a query cut off half read would leave its connection unusable."""
        self.closing = True
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _lane(self) -> None:
        self.starting = False
        try:
            while self.pending:
                cut = self.size or len(self.pending)
                batch, self.pending = self.pending[:cut], self.pending[cut:]
                try:
                    results = await self.handle([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, answer), result in zip(batch, results):
                    _resolve(answer, result)
                await asyncio.sleep(0)  # let those woken submit again before the next batch
        finally:
            # At once, not in a done callback: an item submitted meanwhile needs a lane.
            self.lanes_busy -= 1


def _resolve(answer: asyncio.Future | None, result) -> None:
    if answer is None or answer.done():  # nobody waits for it, or its submitter stopped waiting
        return
    if isinstance(result, BaseException):
        answer.set_exception(result)
    else:
        answer.set_result(result)
