"""The bus: events and room changes reach every node's hub, whichever node caused them.

A use-case publishes once (after its commit). This node delivers to its own connections at
once; every other node receives it over Redis and delivers it to its connections in the rooms
named. Membership and name changes travel the same way, so every node's rooms and caches follow
the admin API. What is published while a PUBLISH is under way goes out in the next one, in
order: nobody waits for Redis, and other nodes see events in the order they were committed.
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

if TYPE_CHECKING:  # it works on a Context, which holds the bus
    from rtserver.frozen import FrozenAccounts

log = logging.getLogger("rtserver.bus")


class Bus:
    def __init__(self, channel: EventChannel, hub: Hub, caches: Caches, frozen: FrozenAccounts,
                 outages: Outages):
        self.channel, self.hub, self.caches, self.outages = channel, hub, caches, outages
        self.frozen = frozen
        self._task = None
        # For the other nodes: one PUBLISH at a time, so that they hear it all in order.
        self._outbox = Batcher(self._publish, lanes=1)

    async def start(self) -> None:
        subscribed = asyncio.Event()
        self._task = asyncio.ensure_future(
            self.channel.listen(self._deliver, subscribed, self._resubscribed))
        await asyncio.wait_for(subscribed.wait(), 10)

    async def stop(self) -> None:
        await self._outbox.close()
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

    def _resubscribed(self) -> None:
        # Events of other nodes published while Redis was away are lost: every client here is
        # told to catch up (chat.history, wallet.get), as it would after reconnecting.
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
