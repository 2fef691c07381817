"""What a running rtserver holds: its settings and its connections to the world.

Built whole in one place, the composition root (`server/context.py`), and handed to the app.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from rtserver.bus import Bus
from rtserver.caches import Caches
from rtserver.config import Settings
from rtserver.hub import Hub
from rtserver.memory import Reclaimer
from rtserver.outages import Outages
from rtserver.outbound import Outbox
from rtserver.pin_hash import PinHasher
from rtserver.quotas import Quotas
from rtserver.slot_taker import SlotTaker
from rtserver.token_clock import TokenClock
from storage.db import Database
from storage.redis_client import Keys

if TYPE_CHECKING:  # they work on a Context themselves, so they import this module
    from rtserver.booking import Booker
    from rtserver.finishing import Finisher
    from rtserver.frozen import FrozenAccounts


@dataclasses.dataclass
class Context:
    settings: Settings
    db: Database
    redis: object  # redis.asyncio.Redis, or RedisCluster with --redis-cluster
    hub: Hub  # this node's sockets, by room
    bus: Bus  # events to every node's hub
    providers: dict  # payment providers by name
    taker: SlotTaker  # the grab scripts of concurrent grabs, sent together
    quotas: Quotas  # sockets and requests in flight, per user and for the node
    outages: Outages  # MariaDB or Redis down: said once, counted, watched
    caches: Caches
    frozen: FrozenAccounts  # who may not move money, as this node knows it
    reclaimer: Reclaimer  # memory given back
    pin_hasher: PinHasher  # payment passwords' slow hashes, off the event loop
    outbox: Outbox  # outbound events for the chat app's back end (--events-url)
    inflight: set = dataclasses.field(default_factory=set)  # requests being answered
    token_clock: TokenClock = dataclasses.field(default_factory=TokenClock)  # sockets' token ends
    # The two that work on the context itself: made from it right after it.
    booker: Booker = dataclasses.field(init=False)  # the group commit of grabs
    finisher: Finisher = dataclasses.field(init=False)  # finishes packets once all is booked

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis_prefix)
