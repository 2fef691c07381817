"""The bus: events and room changes reach every node's hub, whichever node caused them.

A use-case publishes once (after its commit). This node delivers to its own connections at
once; every other node receives it over Redis and delivers it to its connections in the rooms
named. Membership and name changes travel the same way, so every node's rooms and caches follow
the admin API. What is published while a PUBLISH is under way goes out in the next one, in
order: nobody waits for Redis, and other nodes see events in the order they were committed.

Events are published after their commit, so a node killed in between (SIGKILL, a dead machine)
takes them with it. Every node beats on the roll of nodes and leaves it when it stops; when a
peer's beat lapses without its leaving, this node tells its clients to catch up, as it does
after losing Redis.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rtserver.batching import Batcher
from rtserver.caches import Caches
from rtserver.hub import Hub, group_room
from rtserver.outages import Outages
from storage.channel import EventChannel
from storage.nodes import NodeRoll

if TYPE_CHECKING:  # it works on a Context, which holds the bus
    from rtserver.frozen import FrozenAccounts

log = logging.getLogger("rtserver.bus")

BEAT_EVERY = 1.0  # seconds
BEAT_LASTS_MS = 3000  # two missed beats: a loop stalled that long is as good as dead to clients


class Bus:
    def __init__(self, channel: EventChannel, roll: NodeRoll, hub: Hub, caches: Caches,
                 frozen: FrozenAccounts, outages: Outages):
        self.channel, self.roll, self.hub, self.caches, self.outages = (
            channel, roll, hub, caches, outages)
        self.frozen = frozen
        self._task = self._watcher = None
        self._peers: set[str] = set()  # the other nodes alive at the last beat
        self._departed: set[str] = set()  # nodes that said they left, until gone from the roll
        # For the other nodes: one PUBLISH at a time, so that they hear it all in order.
        self._outbox = Batcher(self._publish, lanes=1)

    async def start(self) -> None:
        subscribed = asyncio.Event()
        self._task = asyncio.ensure_future(
            self.channel.listen(self._deliver, subscribed, self._resubscribed))
        await asyncio.wait_for(subscribed.wait(), 10)
        await self._beat()
        self._watcher = asyncio.ensure_future(self._beat_forever())

    async def stop(self) -> None:
        """Publish what is left, then leave the roll: the other nodes know this was no kill."""
        if self._watcher:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self._outbox.close()
        try:
            await self.channel.publish([["left", self.roll.node]])
            await self.roll.leave()
        except Exception as exc:  # the others will count this node as killed: a spare resync
            self.outages.failed(exc, "leaving the roll of nodes", log)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def publish(self, events: list[tuple[list[str], dict]]) -> None:
        """Send events, each to its rooms on every node."""
        if events:
            await self._send([["event", rooms, event] for rooms, event in events])

    async def members_changed(self, group_id: int, added: list[int], removed: list[int]) -> None:
        await self._send([["members", group_id, added, removed]])

    async def renamed(self, user_id: int) -> None:
        await self._send([["renamed", user_id]])

    async def frozen_changed(self, user_id: int, frozen: bool, version: int) -> None:
        """Freeze or thaw a user on every node; return once the other nodes have been sent it."""
        message = ["frozen", user_id, frozen, version]
        self._apply(message)
        await self._outbox.submit(message)

    async def _send(self, messages: list) -> None:
        for message in messages:
            self._apply(message)
            self._outbox.add(message)  # a future for each event would wait for nothing

    async def _publish(self, messages: list) -> list[None]:
        try:
            await self.channel.publish(messages)
        except Exception as exc:
            # Other nodes' clients catch up from history when they next reconnect or resync.
            self.outages.failed(exc, f"publishing {len(messages)} messages to other nodes", log)
        return [None] * len(messages)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(BEAT_EVERY)
            await self._beat()

    async def _beat(self) -> None:
        try:
            alive = await self.roll.beat(BEAT_LASTS_MS)
        except Exception as exc:  # while Redis is away, losing it resyncs (_resubscribed)
            self.outages.failed(exc, "beating on the roll of nodes", log)
            return
        self._departed &= alive  # gone from the roll for good: a node's id is new at each start
        alive -= self._departed
        killed, self._peers = self._peers - alive, alive
        if killed:
            log.warning("node %s lapsed from the roll without leaving (killed, stalled, or the "
                        "roll lost with Redis): every client here catches up",
                        ", ".join(sorted(killed)))
            self._catch_up()

    def _resubscribed(self) -> None:
        self._catch_up()  # events of other nodes published while Redis was away are lost

    def _catch_up(self) -> None:
        # Every client here is told to fetch what it shows again (chat.history, wallet.get), as
        # after reconnecting; a freeze or thaw that was missed is read from MariaDB.
        self.hub.publish_to_everyone({"ev": "resync"})
        self.frozen.reread_soon()

    def _deliver(self, messages: list) -> None:
        for message in messages:
            self._apply(message)

    def _apply(self, message: list) -> None:
        kind, *body = message
        if kind == "event":
            rooms, event = body
            if event.get("ev") == "packet.state" and event.get("status") == "finished":
                self.caches.packet_finished(event["rp_id"])  # grabs waiting for it look here
            self.hub.publish(rooms, event)
        elif kind == "members":
            group_id, added, removed = body
            self.caches.members.drop(group_id)
            for user_id in added:
                self.hub.user_joined(user_id, group_room(group_id))
            for user_id in removed:
                self.hub.user_left(user_id, group_room(group_id))
        elif kind == "renamed":
            self.caches.names.drop(body[0])
        elif kind == "frozen":
            self.frozen.heard(*body)
        elif kind == "left":
            self._departed.add(body[0])
            self._peers.discard(body[0])
