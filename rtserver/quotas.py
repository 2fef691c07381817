"""What one user, and one node, may hold at once: sockets, and requests being worked on.

docs/protocol.md ("Rates and bounds"): a node serves everyone else whatever one user does.
The rate limit alone does not bound a node: a user under it on each of a hundred sockets, or
with requests that each take long, still piles up work and memory. These counts do.
"""
import collections
import time

from rtserver import metrics
from rtserver.errors import NodeFull, TooManyConnections
from rtserver.ratelimit import TokenBucket

REQUESTS_PER_CONNECTION = 16  # docs/protocol.md: being worked on at once, per socket
REQUESTS_PER_USER = 32  # docs/protocol.md: the same across one user's sockets on a node
# chat.history is the one op whose answer may reach 256 KiB, each a page of rows MariaDB reads
# and this node encodes: one user asking for it without end would take the node's time from
# everyone. Its budget is in the bytes of the pages given: a user catching up every room at once
# (short pages) or paging back through a long one is well within it; the longest pages, asked
# for without end, get two a second after a burst of sixteen.
HISTORY_BYTES_PER_SECOND, HISTORY_BYTES_BURST = 512 << 10, 4 << 20


class Quotas:
    """Counts of sockets and of requests in flight, per user and for the node."""

    def __init__(self, max_connections: int, max_connections_per_user: int):
        self.max_connections = max_connections
        self.max_connections_per_user = max_connections_per_user
        self.connections = 0
        self._sockets: collections.Counter[int] = collections.Counter()
        self._requests: collections.Counter[int] = collections.Counter()
        self._history: dict[int, TokenBucket] = {}  # of users with a socket on this node

    def take_socket(self, user_id: int) -> None:
        """Hold a socket for a user until `give_socket`, or raise NodeFull / TooManyConnections.

        Taken before the upgrade's first await, so that upgrades racing each other are counted."""
        if self.connections >= self.max_connections:
            metrics.refused("connections_per_node")
            raise NodeFull()
        if self._sockets[user_id] >= self.max_connections_per_user:
            metrics.refused("connections_per_user")
            raise TooManyConnections()
        self.connections += 1
        self._sockets[user_id] += 1

    def give_socket(self, user_id: int) -> None:
        self.connections -= 1
        _decrement(self._sockets, user_id)
        if user_id not in self._sockets:
            self._history.pop(user_id, None)

    def may_read_history(self, user_id: int) -> bool:
        """Whether a user may have one more page of chat history now: their budget is not spent
        (a page may overdraw it; the next then waits until that is made up)."""
        now = time.monotonic()
        bucket = self._history.get(user_id)
        if bucket is None:
            bucket = self._history[user_id] = TokenBucket(HISTORY_BYTES_PER_SECOND,
                                                          HISTORY_BYTES_BURST, now)
        if bucket.left(now) > 0:
            return True
        metrics.refused("history_per_user")
        return False

    def history_read(self, user_id: int, size: int) -> None:
        """Charge a page of `size` bytes to a user's budget."""
        if bucket := self._history.get(user_id):
            bucket.spend(size)

    def take_request(self, user_id: int, on_connection: int) -> bool:
        """Whether a user may start one more request, with `on_connection` already running on
        its socket; if so it is counted until `give_request`."""
        if on_connection >= REQUESTS_PER_CONNECTION:
            metrics.refused("requests_per_connection")
            return False
        if self._requests[user_id] >= REQUESTS_PER_USER:
            metrics.refused("requests_per_user")
            return False
        self._requests[user_id] += 1
        return True

    def give_request(self, user_id: int) -> None:
        _decrement(self._requests, user_id)


def _decrement(counter: collections.Counter, key: int) -> None:
    """Count one less, forgetting keys at zero: a node sees millions of users over time."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
