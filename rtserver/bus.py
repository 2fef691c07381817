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

A freeze or thaw is different: it must hold on every node from the moment it is answered, so
each node that hears one says so ("heard"), and the node that made it answers once every live
peer has (or HEARD_WITHIN has passed: a node that slow is about to lapse from the roll).
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
HEARD_WITHIN = 2.0  # seconds a freeze waits for the other nodes to say they hold it


class Bus:
    def __init__(self, channel: EventChannel, roll: NodeRoll, hub: Hub, caches: Caches,
                 frozen: FrozenAccounts, outages: Outages):
        self.channel, self.roll, self.hub, self.caches, self.outages = (
            channel, roll, hub, caches, outages)
        self.frozen = frozen
        self._task = self._watcher = None
        self._stopping = asyncio.Event()
        self._peers: set[str] = set()  # the other nodes alive at the last beat
        self._departed: set[str] = set()  # nodes that said they left, until gone from the roll
        self._hearings: dict[tuple[int, int], Hearing] = {}  # (user id, version) → who is due
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
        self._stopping.set()
        if self._watcher:
            await self._watcher
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
        """Freeze or thaw a user on every node; return once every other live node holds it."""
        message = ["frozen", user_id, frozen, version]
        self._apply(message)
        hearing = self._hearings[user_id, version] = Hearing(self._peers)
        try:
            if await self._outbox.submit(message):  # not sent: the others reread on resubscribing
                await asyncio.wait_for(hearing.everyone.wait(), HEARD_WITHIN)
        except asyncio.TimeoutError:
            log.warning("node %s did not confirm within %.0fs that user %s is %s",
                        ", ".join(sorted(hearing.due)), HEARD_WITHIN, user_id,
                        "frozen" if frozen else "thawed")
        finally:
            del self._hearings[user_id, version]

    async def _send(self, messages: list) -> None:
        for message in messages:
            self._apply(message)
            self._outbox.add(message)  # a future for each event would wait for nothing

    async def _publish(self, messages: list) -> list[bool]:
        """Each message's answer: whether it was sent."""
        try:
            await self.channel.publish(messages)
        except Exception as exc:
            # Other nodes' clients catch up from history when they next reconnect or resync.
            self.outages.failed(exc, f"publishing {len(messages)} messages to other nodes", log)
            return [False] * len(messages)
        return [True] * len(messages)

    async def _beat_forever(self) -> None:
        # Told to stop, never cancelled: redis-py can swallow a cancellation that lands in the
        # middle of a command, and this loop would then beat on with stop() waiting for it.
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), BEAT_EVERY)
                return
            except asyncio.TimeoutError:
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
            self._never_hearing(killed)
            self._catch_up()

    def _resubscribed(self) -> None:
        self._catch_up()  # events of other nodes published while Redis was away are lost

    def _catch_up(self) -> None:
        # Every client here is told to fetch what it shows again (chat.history, wallet.get), as
        # after reconnecting; a freeze or thaw that was missed is read from MariaDB.
        self.hub.publish_to_everyone({"ev": "resync"})
        self.frozen.reread_soon()

    def _never_hearing(self, nodes: set[str]) -> None:
        for hearing in self._hearings.values():
            hearing.heard(*nodes)

    def _deliver(self, messages: list) -> None:
        for message in messages:
            self._apply(message)
            if message[0] == "frozen":  # held here now: the node that made it may answer
                _, user_id, _, version = message
                self._outbox.add(["heard", user_id, version, self.roll.node])

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
        elif kind == "heard":
            user_id, version, node = body
            if hearing := self._hearings.get((user_id, version)):
                hearing.heard(node)
        elif kind == "left":
            self._departed.add(body[0])
            self._peers.discard(body[0])
            self._never_hearing({body[0]})


class Hearing:
    """The other nodes yet to say they hold one freeze or thaw."""

    def __init__(self, nodes: set[str]):
        self.due, self.everyone = set(nodes), asyncio.Event()
        self.heard()

    def heard(self, *nodes: str) -> None:
        self.due.difference_update(nodes)
        if not self.due:
            self.everyone.set()
