"""What a running rtserver holds: its settings and its connections to the world."""
import dataclasses

from rtserver.bus import Bus
from rtserver.caches import Caches
from rtserver.config import Settings
from rtserver.hub import Hub
from rtserver.memory import Reclaimer
from rtserver.outages import Outages
from rtserver.providers import load_providers
from rtserver.quotas import Quotas
from rtserver.slot_taker import SlotTaker
from storage.channel import EventChannel
from storage.db import Database
from storage.redis_client import Keys, connect


@dataclasses.dataclass
class Context:
    """Opened and closed by the caller (`rtserver serve`, the test fixtures); handed to the app."""

    settings: Settings
    db: Database
    redis: object
    hub: Hub
    providers: dict = dataclasses.field(default_factory=dict)  # payment providers by name
    inflight: set = dataclasses.field(default_factory=set)  # socket requests being answered
    caches: Caches = dataclasses.field(default_factory=Caches)
    booker: object = None  # the group commit of grabs, started by the first grab
    finisher: object = None  # finishes packets whose shares are all booked, made when needed
    bus: Bus | None = None  # events to every node, joined by open_context
    taker: SlotTaker | None = None  # the grab scripts of concurrent grabs, sent together
    quotas: Quotas | None = None  # sockets and requests in flight, per user and for the node
    reclaimer: Reclaimer = dataclasses.field(default_factory=Reclaimer)  # memory given back
    outages: Outages | None = None  # MariaDB or Redis down: said once, counted, watched

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis_prefix)


async def open_context(settings: Settings) -> Context:
    """Connect to MariaDB and Redis and join the events bus; close with `close_context`."""
    db = await Database.connect(settings.mysql_url)
    redis = connect(settings.redis_url, settings.redis_cluster)
    ctx = Context(settings=settings, db=db, redis=redis, hub=Hub(),
                  providers=load_providers(settings),
                  taker=SlotTaker(redis, Keys(settings.redis_prefix)),
                  quotas=Quotas(settings.max_connections, settings.max_connections_per_user),
                  outages=Outages({"MariaDB": db.ping, "Redis": redis.ping,
                                   "MariaDB or Redis": lambda: _both(db, redis)}))
    ctx.bus = Bus(EventChannel(redis, settings.redis_url, settings.redis_prefix), ctx.hub,
                  ctx.caches, ctx.outages)
    await ctx.bus.start()
    return ctx


async def _both(db: Database, redis) -> None:
    await db.ping()
    await redis.ping()


async def close_context(ctx: Context) -> None:
    if ctx.booker is not None:
        await ctx.booker.close()
    if ctx.finisher is not None:  # after the booker: its last batches are checked too
        await ctx.finisher.close()
    await ctx.bus.stop()  # after the booker: what it finished last is published too
    ctx.outages.close()
    await ctx.db.close()
    await ctx.redis.aclose()
