"""The clock that ends sockets when their tokens end (docs/protocol.md: closed with 4001 at `exp`).

One wheel of whole seconds for the node, not a timer per socket: arming and re-arming (each
`auth.refresh`) is a set operation, and one sweep a second, just after the second turns, finds
what has ended. A token's `exp` is a whole second nearly always, so its socket is closed within
milliseconds of it; the socket also refuses any frame that arrives after its token ended
(handlers/connection.py), so an `exp` inside a second is held to exactly too. When thousands of
tokens end in one second (a chat app that gave them out at once), the sweep closes them a batch
at a time and lets the event loop serve everyone else in between, where timers of their own
would all fire in one turn of the loop and hold it for the whole storm.
"""
import asyncio
import logging
import math
import time
from typing import Protocol

log = logging.getLogger("rtserver.tokens")

CLOSES_PER_TURN = 64  # a few milliseconds of closing, then the other sockets' turn
SWEEP_LATE = 0.005  # seconds after the second turns: a timer that fires early waits a whole one


class Connection(Protocol):
    def token_ended(self) -> None: ...


class TokenEnds:
    """Open sockets by the second their tokens end in: which have ended by a given time."""

    def __init__(self):
        self._ending: dict[int, set[Connection]] = {}  # second → the sockets whose token ends in it
        self._second: dict[Connection, int] = {}  # socket → its second
        self._next = 0  # the first second not yet swept, while any socket is armed

    def arm(self, conn: Connection, exp: float) -> None:
        """End a socket once `exp` has passed (and not at any time it was armed for before)."""
        self.disarm(conn)
        second = math.ceil(exp)  # the first whole second at which the token has ended
        # Before any other, or earlier than every other (the system clock stepped back).
        self._next = min(self._next, second) if self._ending else second
        self._ending.setdefault(second, set()).add(conn)
        self._second[conn] = second

    def disarm(self, conn: Connection) -> None:
        second = self._second.pop(conn, None)
        if second is None:
            return
        ending = self._ending[second]
        ending.discard(conn)
        if not ending:
            del self._ending[second]

    def take_ended(self, now: float) -> list[Connection]:
        """Take out the sockets whose tokens have ended by `now`."""
        ended, last = [], math.floor(now)
        for second in range(self._next, last + 1) if self._ending else ():
            for conn in self._ending.pop(second, ()):
                del self._second[conn]
                ended.append(conn)
        self._next = max(self._next, last + 1)
        return ended


class TokenClock(TokenEnds):
    """The node's TokenEnds, swept once a second: each socket whose token has ended is told."""

    def __init__(self):
        super().__init__()
        self._sweeper: asyncio.Task | None = None  # started by the first socket armed

    def arm(self, conn: Connection, exp: float) -> None:
        super().arm(conn, exp)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(math.floor(now) + 1 - now + SWEEP_LATE)
            for n, conn in enumerate(self.take_ended(time.time()), 1):
                if conn not in self._second:  # else a refresh in flight armed it again
                    self._end(conn)
                if n % CLOSES_PER_TURN == 0:
                    await asyncio.sleep(0)

    @staticmethod
    def _end(conn: Connection) -> None:
        try:
            conn.token_ended()
        except Exception:  # one socket's trouble must not leave the others open past their tokens
            log.exception("closing a socket whose token ended failed")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
