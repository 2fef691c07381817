"""Opening and closing the Context of a serving or jobs process: every part made here, once."""
from rtserver.booking import Booker
from rtserver.bus import Bus
from rtserver.caches import Caches
from rtserver.config import Settings
from rtserver.context import Context
from rtserver.finishing import Finisher
from rtserver.frozen import FrozenAccounts
from rtserver.hub import Hub
from rtserver.memory import Reclaimer
from rtserver.outages import Outages
from rtserver.outbound import Outbox
from rtserver.pin_hash import PinHasher
from rtserver.providers import load_providers
from rtserver.quotas import Quotas
from rtserver.slot_taker import SlotTaker
from storage.channel import EventChannel
from storage.db import Database
from storage.nodes import NodeRoll
from storage.redis_client import Keys, connect


async def open_context(settings: Settings) -> Context:
    """Connect to MariaDB and Redis and join the events bus; close with `close_context`."""
    db = await Database.connect(settings.mysql_url)
    redis = connect(settings.redis_url, settings.redis_cluster)
    hub, caches = Hub(), Caches(settings.max_shares)
    outages = Outages({"MariaDB": db.ping, "Redis": redis.ping,
                       "MariaDB or Redis": lambda: _both(db, redis)})
    frozen = FrozenAccounts(db, outages)
    channel = EventChannel(redis, settings.redis_url, settings.redis_prefix)
    ctx = Context(
        settings=settings, db=db, redis=redis, hub=hub,
        bus=Bus(channel, NodeRoll(redis, settings.redis_prefix, channel.node.hex()), hub, caches,
                frozen, outages),
        providers=load_providers(settings),
        taker=SlotTaker(redis, Keys(settings.redis_prefix)),
        quotas=Quotas(settings.max_connections, settings.max_connections_per_user),
        outages=outages, caches=caches, frozen=frozen, reclaimer=Reclaimer(),
        pin_hasher=PinHasher(),
        outbox=Outbox(settings.events_url, settings.events_secret, settings.events_retry_for,
                      settings.events_timeout))
    ctx.finisher = Finisher(ctx)
    ctx.booker = Booker(ctx)
    await ctx.bus.start()
    await frozen.start()  # after subscribing: a change made in between is heard, or read
    return ctx


async def _both(db: Database, redis) -> None:
    await db.ping()
    await redis.ping()


async def close_context(ctx: Context) -> None:
    await ctx.booker.close()
    await ctx.finisher.close()  # after the booker: its last batches are checked too
    await ctx.bus.stop()  # after both: what they finished last is published too
    await ctx.token_clock.close()
    await ctx.frozen.close()
    ctx.outages.close()
    ctx.pin_hasher.close()
    ctx.outbox.close()
    await ctx.db.close()
    await ctx.redis.aclose()
