"""The batching primitive under the slot taker, the booker, the finisher and the bus."""
import asyncio

import pytest

from rtserver.batching import Batcher, Closed


class Recorder:
    """A `handle` that notes each batch, answers each item doubled, and can be held open."""

    def __init__(self):
        self.batches: list[list] = []
        self.open_now = 0
        self.most_open = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, items: list) -> list:
        self.batches.append(items)
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            return [ValueError(item) if item == "bad" else 2 * item for item in items]
        finally:
            self.open_now -= 1


@pytest.mark.gen_test
async def test_what_is_submitted_in_one_turn_goes_in_one_batch():
    handle = Recorder()
    batcher = Batcher(handle)
    answers = [batcher.submit(n) for n in range(5)]
    assert await asyncio.gather(*answers) == [0, 2, 4, 6, 8]
    assert handle.batches == [[0, 1, 2, 3, 4]]


@pytest.mark.gen_test
async def test_items_arriving_while_the_lanes_are_busy_wait_and_go_together():
    handle = Recorder()
    handle.gate = asyncio.Event()
    batcher = Batcher(handle, lanes=1)
    first = batcher.submit(1)
    await asyncio.sleep(0.01)  # the first batch is being handled
    later = [batcher.submit(n) for n in (2, 3)]
    await asyncio.sleep(0.01)
    more = batcher.submit(4)
    assert handle.batches == [[1]], "nothing starts while the only lane is busy"
    handle.gate.set()
    assert await asyncio.gather(first, *later, more) == [2, 4, 6, 8]
    assert handle.batches == [[1], [2, 3, 4]]
    assert handle.most_open == 1


@pytest.mark.gen_test
async def test_size_and_lanes_bound_each_batch_and_how_many_run_at_once():
    handle = Recorder()
    handle.gate = asyncio.Event()
    batcher = Batcher(handle, size=3, lanes=2)
    answers = [batcher.submit(n) for n in range(10)]
    await asyncio.sleep(0.01)
    assert handle.open_now == 1, "one lane started for the items of one turn"
    answers.append(batcher.submit(10))  # a second lane may start now
    await asyncio.sleep(0.01)
    assert handle.open_now == 2
    handle.gate.set()
    assert await asyncio.gather(*answers) == [2 * n for n in range(11)]
    assert all(len(batch) <= 3 for batch in handle.batches)
    assert sorted(n for batch in handle.batches for n in batch) == list(range(11))
    assert handle.most_open == 2


@pytest.mark.gen_test
async def test_an_items_error_reaches_its_submitter_alone():
    batcher = Batcher(Recorder())
    good, bad, also_good = batcher.submit(1), batcher.submit("bad"), batcher.submit(3)
    assert await good == 2 and await also_good == 6
    with pytest.raises(ValueError):
        await bad


@pytest.mark.gen_test
async def test_a_failing_batch_fails_its_submitters_and_the_next_batch_is_handled():
    calls = []

    async def handle(items):
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("down")
        return items

    batcher = Batcher(handle)
    first = [batcher.submit(n) for n in (1, 2)]
    for answer in first:
        with pytest.raises(ConnectionError):
            await answer
    assert await batcher.submit(3) == 3


@pytest.mark.gen_test
async def test_a_submitter_that_stops_waiting_costs_the_others_nothing():
    handle = Recorder()
    batcher = Batcher(handle)
    gone, kept = batcher.submit(1), batcher.submit(2)
    gone.cancel()
    assert await kept == 4


@pytest.mark.gen_test
async def test_close_handles_what_was_submitted_then_refuses_more():
    handle = Recorder()
    handle.gate = asyncio.Event()
    batcher = Batcher(handle, lanes=1)
    waiting = [batcher.submit(n) for n in (1, 2)]
    await asyncio.sleep(0.01)
    queued = batcher.submit(3)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0.01)
    with pytest.raises(Closed):
        batcher.submit(4)
    assert not closing.done(), "close waits for the batch being handled"
    handle.gate.set()
    await closing
    assert await asyncio.gather(*waiting, queued) == [2, 4, 6]


@pytest.mark.gen_test
async def test_an_item_submitted_just_as_a_lane_ends_still_gets_one():
    # A lane counted as busy until a done callback ran would leave this item waiting forever.
    handle = Recorder()
    batcher = Batcher(handle, lanes=1)
    for n in range(50):
        assert await asyncio.wait_for(batcher.submit(n), 1) == 2 * n


@pytest.mark.gen_test
async def test_an_item_nobody_awaits_goes_in_the_batch_all_the_same():
    handle = Recorder()
    batcher = Batcher(handle)
    batcher.add(1)
    assert await batcher.submit(2) == 4
    assert handle.batches == [[1, 2]]
