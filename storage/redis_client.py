"""The Redis client and the names of every key rtserver keeps there.

Every key of one packet carries the hash tag `{rp:ID}`, so on a Redis Cluster the packet's grab
script runs on one node. All names start with the configured prefix, so test runs and
deployments sharing one Redis never see each other's keys.
"""
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError

# A client made by `from_url` never retries: after Redis restarts, every pooled connection fails
# its next command once (`unavailable` to a user though Redis is back). Retry on a new connection
# instead. Only connection errors: a timed-out command may have run. Repeating one that did run
# is safe here: the grab script answers "already", and MariaDB guards every movement of money.
RECONNECT = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries=3,
                  supported_errors=(ConnectionError,))


# Connections to one Redis: enough to keep it busy, which one thread is. A command past them
# waits its turn rather than failing: a storm sends hundreds of grabs at once, though most
# travel together (rtserver.slot_taker.SlotTaker).
MAX_CONNECTIONS = 64
WAIT_FOR_CONNECTION = 5  # seconds


def connect(url: str, cluster: bool = False):
    """Open a client on one Redis or, with `cluster`, on the Redis Cluster `url` belongs to."""
    # No periodic health check: it costs a round trip on the hot path, and a dead connection
    # is retried on a new one anyway (RECONNECT).
    common = dict(socket_connect_timeout=2, socket_timeout=5)
    if cluster:  # its per-node pools do not wait for a free connection: leave them unbounded
        return aioredis.RedisCluster.from_url(url, **common)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION, retry=RECONNECT,
        **common)
    return aioredis.Redis(connection_pool=pool)


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def packet(self, rp_id: int, part: str) -> str:
        return f"{self.prefix}{{rp:{rp_id}}}:{part}"

    def queue(self, name: str) -> str:
        return f"{self.prefix}{{q}}:{name}"
