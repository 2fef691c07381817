"""The settlement queue: a Redis stream read by a consumer group, plus a delay line.

A consumer that dies holding a message leaves it pending; another consumer claims it once it
has been idle long enough, so no packet is left unsettled.
"""
import time

from storage.redis_client import Keys

GROUP = "settlers"


class SettlementQueue:
    def __init__(self, redis, keys: Keys):
        self.redis = redis
        self.stream = keys.queue("settle")
        self.delayed = keys.queue("settle:delayed")

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists, which is what we want
            if "BUSYGROUP" not in str(exc):
                raise

    async def put(self, rp_id: int, settle_pass: int = 1) -> None:
        await self.redis.xadd(self.stream, {"rp": rp_id, "pass": settle_pass})

    async def put_later(self, rp_id: int, settle_pass: int, delay: float) -> None:
        await self.redis.zadd(self.delayed, {f"{rp_id}:{settle_pass}": time.time() + delay})

    async def move_due(self) -> int:
        """Move delayed entries whose time has come into the stream; each moves once."""
        moved = 0
        for member in await self.redis.zrangebyscore(self.delayed, 0, time.time(), start=0, num=100):
            if await self.redis.zrem(self.delayed, member):  # only one mover wins each entry
                rp_id, settle_pass = member.decode().split(":")
                await self.put(int(rp_id), int(settle_pass))
                moved += 1
        return moved

    async def take(self, consumer: str, count: int = 20, block_ms: int = 1000,
                   reclaim_idle_ms: int = 30_000) -> list[tuple[str, int, int]]:
        """Messages for this consumer: first any left idle by a dead one, then new ones."""
        _, claimed, _ = await self.redis.xautoclaim(self.stream, GROUP, consumer,
                                                    min_idle_time=reclaim_idle_ms, count=count)
        entries = [e for e in claimed if e[1]]
        if not entries:
            answer = await self.redis.xreadgroup(GROUP, consumer, {self.stream: ">"},
                                                 count=count, block=block_ms)
            entries = answer[0][1] if answer else []
        return [(mid.decode(), int(f[b"rp"]), int(f[b"pass"])) for mid, f in entries]

    async def done(self, message_id: str) -> None:
        await self.redis.xack(self.stream, GROUP, message_id)
        await self.redis.xdel(self.stream, message_id)
