"""The events channel: one Redis pub/sub channel that every node publishes to and listens on.

Each node holds one subscription, however many sockets it serves. In a Redis Cluster a
published message reaches subscribers on every node, so a plain connection to one node is
enough to listen.
"""
import asyncio
import logging
import secrets

import msgpack
import redis.asyncio as aioredis

from storage.errors import REDIS_DOWN

log = logging.getLogger("rtserver.channel")

# Seconds between tries after losing Redis: events published meanwhile do not reach this node
# (its clients catch up from history), so the first tries come fast.
RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5, 1, 2)
NODE_ID_BYTES = 8


class EventChannel:
    def __init__(self, redis, redis_url: str, prefix: str):
        self.redis = redis  # the shared client, for publishing
        self.listen_url = redis_url
        self.name = f"{prefix}events"
        # Every message starts with its node's id: a node's own messages come back to it, and
        # are dropped by that prefix without being decoded.
        self.node = secrets.token_bytes(NODE_ID_BYTES)

    async def publish(self, payload) -> None:
        """Publish one payload to the other nodes, encoded once, in one round trip."""
        await self.redis.publish(self.name, self.node + msgpack.packb(payload, use_bin_type=True))

    async def listen(self, deliver, subscribed: asyncio.Event, resubscribed) -> None:
        """Call `deliver(payload)` for every payload of another node, forever; resubscribe after
        losing Redis, then call `resubscribed()`: whatever was published meanwhile never
        arrived."""
        failures = 0
        while True:
            client = aioredis.from_url(self.listen_url, socket_connect_timeout=2)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.name)
                    failures = 0
                    if subscribed.is_set():
                        resubscribed()
                    subscribed.set()
                    async for item in pubsub.listen():
                        data = item["data"]
                        if item["type"] == "message" and data[:NODE_ID_BYTES] != self.node:
                            deliver(msgpack.unpackb(data[NODE_ID_BYTES:], raw=False))
            except REDIS_DOWN as exc:
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("events channel lost (%s); resubscribing in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                await client.aclose()
