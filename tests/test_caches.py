"""The in-process caches: bounded, expiring, and loading a missing entry once for everyone."""
import asyncio

import pytest

from rtserver.caches import Cache


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
