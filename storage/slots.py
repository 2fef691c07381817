"""Grab slots in Redis: the order in which grabbers take a packet's shares.

MariaDB holds the money; Redis only decides, atomically and without touching SQL, who takes
which share and who was too slow. Slot k is the share with seq = k.
"""
import asyncio
import pathlib
from dataclasses import dataclass

from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript

from storage.redis_client import Keys

# Called by its SHA; redis-py loads it again by itself if Redis lost its script cache.
GRAB = AsyncScript(None, (pathlib.Path(__file__).with_name("scripts") / "grab.lua").read_bytes())
MISSING, TOO_SLOW, WON, ALREADY = -1, 0, 1, 2
REBUILD_LOCK_MS = 5000


@dataclass(frozen=True)
class Take:
    outcome: int
    slot: int
    left: int


def _parts(keys: Keys, rp_id: int) -> list[str]:
    return [keys.packet(rp_id, "meta"), keys.packet(rp_id, "slots"), keys.packet(rp_id, "grabbers")]


async def take(redis, keys: Keys, grabs: list[tuple[int, int]]) -> list:
    """Run the grab script for (rp_id, user_id) pairs, in one call where Redis allows it; a
    Take for each, or the error of its call."""
    if isinstance(redis, RedisCluster):  # the keys of one call must share a hash slot
        answers = await asyncio.gather(*(_grab(redis, keys, [grab]) for grab in grabs),
                                       return_exceptions=True)
        return [a if isinstance(a, Exception) else a[0] for a in answers]
    return await _grab(redis, keys, grabs)


async def _grab(redis, keys: Keys, grabs: list[tuple[int, int]]) -> list[Take]:
    flat = await GRAB(keys=[key for rp_id, _ in grabs for key in _parts(keys, rp_id)],
                      args=[user_id for _, user_id in grabs], client=redis)
    return [Take(*map(int, flat[i:i + 3])) for i in range(0, len(flat), 3)]


async def load(redis, keys: Keys, rp_id: int, meta: dict, free: list[int],
               holders: dict[int, int], expire_at: int) -> None:
    """Write a packet's slots in one transaction: its meta, the free slots, who holds which."""
    meta_key, slots_key, grabbers_key = _parts(keys, rp_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(meta_key, slots_key, grabbers_key)
        pipe.hset(meta_key, mapping=meta)
        if free:
            pipe.rpush(slots_key, *free)
        if holders:
            pipe.hset(grabbers_key, mapping=holders)
        for key in (meta_key, slots_key, grabbers_key):
            pipe.expireat(key, expire_at)
        await pipe.execute()


async def meta(redis, keys: Keys, rp_id: int) -> dict[str, str]:
    raw = await redis.hgetall(keys.packet(rp_id, "meta"))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def holders(redis, keys: Keys, rp_id: int) -> dict[int, int]:
    """Who holds which slot: user id → slot."""
    raw = await redis.hgetall(keys.packet(rp_id, "grabbers"))
    return {int(k): int(v) for k, v in raw.items()}


async def release(redis, keys: Keys, rp_id: int, user_id: int) -> None:
    """Forget a user's slot (its share went to someone else after a rebuild)."""
    await redis.hdel(keys.packet(rp_id, "grabbers"), user_id)


async def forget(redis, keys: Keys, rp_id: int) -> None:
    await redis.delete(*_parts(keys, rp_id))


async def lock_rebuild(redis, keys: Keys, rp_id: int) -> bool:
    return bool(await redis.set(keys.packet(rp_id, "lock"), 1, nx=True, px=REBUILD_LOCK_MS))


async def unlock_rebuild(redis, keys: Keys, rp_id: int) -> None:
    await redis.delete(keys.packet(rp_id, "lock"))


async def give_back(redis, keys: Keys, rp_id: int, user_id: int, taken: int, held: int) -> None:
    """Return a slot a user took but cannot use, and record the slot they really hold."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(keys.packet(rp_id, "slots"), taken)
        pipe.hset(keys.packet(rp_id, "grabbers"), user_id, held)
        await pipe.execute()


async def free_count(redis, keys: Keys, rp_id: int) -> int:
    return await redis.llen(keys.packet(rp_id, "slots"))


async def drained(redis, keys: Keys, rp_ids: list[int]) -> list[int]:
    """The packets among `rp_ids` with no free slot left (or no slots in Redis at all)."""
    async with redis.pipeline(transaction=False) as pipe:
        for rp_id in rp_ids:
            pipe.llen(keys.packet(rp_id, "slots"))
        return [rp_id for rp_id, free in zip(rp_ids, await pipe.execute()) if free == 0]
