"""The in-process caches: bounded, expiring, and loading a missing entry once for everyone."""
import asyncio

import pytest

from rtserver.caches import Awaited, Cache


def test_entries_expire_and_the_oldest_make_room():
    cache = Cache(maxsize=2, ttl=None)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    expiring = Cache(maxsize=10, ttl=0)
    expiring.put("a", 1)
    assert expiring.get("a") is None


@pytest.mark.gen_test
async def test_a_storm_of_misses_loads_once():
    cache, loads = Cache(maxsize=10, ttl=60), []

    async def load():
        loads.append(1)
        await asyncio.sleep(0.01)
        return frozenset({1, 2})

    values = await asyncio.gather(*(cache.get_or_load("group", load) for _ in range(200)))
    assert loads == [1] and all(v == {1, 2} for v in values)
    assert await cache.get_or_load("group", load) == {1, 2} and loads == [1]


@pytest.mark.gen_test
async def test_many_keys_load_only_the_missing_ones_together():
    cache, asked = Cache(maxsize=10), []
    cache.put(1, "one")

    async def load(missing):
        asked.append(sorted(missing))
        return {key: str(key) for key in missing}

    assert await cache.get_many([1, 2, 3], load) == {1: "one", 2: "2", 3: "3"}
    assert await cache.get_many([2, 3], load) == {2: "2", 3: "3"}
    assert asked == [[2, 3]]


@pytest.mark.gen_test
async def test_waiters_for_a_fact_wake_when_it_is_put_and_leave_nothing_behind():
    booked = Awaited(maxsize=10)
    waiting = [asyncio.ensure_future(booked.until_put(7, timeout=60)) for _ in range(100)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiting) and booked.awaited(7)
    started = asyncio.get_running_loop().time()
    booked.put(7, True)
    assert await asyncio.gather(*waiting) == [True] * 100
    assert asyncio.get_running_loop().time() - started < 1  # woken, not timed out
    assert await booked.until_put(7, timeout=0) is True  # known: no wait at all
    assert await booked.until_put(8, timeout=0.01) is False  # never put: given up
    assert not booked.awaited(7) and not booked.awaited(8)


@pytest.mark.gen_test
async def test_a_waiter_without_a_time_out_wakes_when_put_or_leaves_nothing_once_cancelled():
    finished = Awaited(maxsize=10)
    woken = asyncio.ensure_future(finished.until_put(1, timeout=None))
    given_up = asyncio.ensure_future(finished.until_put(2, timeout=None))
    await asyncio.sleep(0.01)
    given_up.cancel()
    finished.put(1, True)
    assert await woken is True
    with pytest.raises(asyncio.CancelledError):
        await given_up
    assert not finished.awaited(1) and not finished.awaited(2)
