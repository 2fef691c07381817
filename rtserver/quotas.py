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
# everyone. A user catching up every room at once (a burst) or paging back is well within this.
HISTORY_PER_SECOND, HISTORY_BURST = 10, 100


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

    def take_history(self, user_id: int) -> bool:
        """Whether a user may have one more page of chat history now."""
        now = time.monotonic()
        bucket = self._history.get(user_id)
        if bucket is None:
            bucket = self._history[user_id] = TokenBucket(HISTORY_PER_SECOND, HISTORY_BURST, now)
        if bucket.take(now):
            return True
        metrics.refused("history_per_user")
        return False

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
