"""The roll of nodes in Redis: every node beats on it each second, and leaves it when it stops.

A node killed outright (SIGKILL, a dead machine) can have committed a batch to MariaDB and died
before publishing its events: the clients on the other nodes never hear them. The roll is how
the others find out (rtserver.bus) — a node whose beat lapsed without it leaving was killed.
"""
import pathlib

from redis.commands.core import AsyncScript

# Called by its SHA; redis-py loads it again by itself if Redis lost its script cache.
BEAT = AsyncScript(None, (pathlib.Path(__file__).with_name("scripts") / "beat.lua").read_bytes())


def roll_key(prefix: str) -> str:
    return f"{prefix}nodes"


class NodeRoll:
    def __init__(self, redis, prefix: str, node: str):
        self.redis, self.key, self.node = redis, roll_key(prefix), node

    async def beat(self, lasts_ms: int) -> set[str]:
        """Say this node is alive for `lasts_ms` more; the other nodes that are, by their ids."""
        alive = await BEAT(keys=[self.key], args=[self.node, lasts_ms], client=self.redis)
        return {node.decode() for node in alive} - {self.node}

    async def leave(self) -> None:
        await self.redis.zrem(self.key, self.node)
