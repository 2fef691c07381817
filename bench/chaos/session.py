"""One user's socket to one node, every request and answer on it written into the history."""
import asyncio
import itertools

from bench.chaos.history import Call, History
from bench.wire import Conn

# Past PROTOCOL's 30 s, so that a late answer is seen as late rather than lost: the checker
# counts a request unanswered for 30 s on an open socket as a violation either way.
REPLY_WAIT = 40.0
OPEN_WAIT = 5.0  # a stopped node accepts the TCP connection but never upgrades it

_ids = itertools.count(1)


class RecordingConn(Conn):
    """A Conn that keeps the frames arriving before anyone listens (the `hello` comes with the
    upgrade's answer, often in the same read)."""

    def __init__(self):
        super().__init__()
        self.early: list = []
        self.on_event = lambda frame, at: self.early.append(frame)


class Session:
    def __init__(self, history: History, user: int, node: int, ws_url: str, token: str):
        self.history, self.user, self.node = history, user, node
        self.ws_url, self.token = ws_url, token
        self.id = next(_ids)
        self.conn: RecordingConn | None = None
        self.record = None
        self.catching_up: set[asyncio.Task] = set()

    @property
    def open(self) -> bool:
        return self.conn is not None and not self.conn.reader.done()

    async def connect(self) -> None:
        """Open the socket; raises OSError (or TimeoutError) when the node does not take it."""
        self.conn = await asyncio.wait_for(RecordingConn.open(self.ws_url, self.token), OPEN_WAIT)
        self.record = self.history.socket(self.id, self.user, self.node)
        for frame in self.conn.early:
            self._event(frame, None)
        self.conn.on_event = self._event
        self.conn.reader.add_done_callback(lambda _: self._closed())

    def _closed(self) -> None:
        if self.record.closed is None:
            self.record.closed = self.history.now()

    def _event(self, frame: dict, at) -> None:
        ev, now = frame.get("ev"), self.history.now()
        if ev in ("hello", "wallet"):
            self.record.balances.append((now, frame["balance"], frame["ledger_id"]))
        elif ev == "resync":
            self.record.resyncs.append(now)
            task = asyncio.get_running_loop().create_task(self._catch_up())
            self.catching_up.add(task)
            task.add_done_callback(self.catching_up.discard)

    async def _catch_up(self) -> None:
        """Events were lost: ask for the balance again, as a client does after `resync`."""
        call = await self.call("wallet.get")
        if call is not None and call.outcome == "ok":
            self.record.balances.append((self.history.now(), call.reply["balance"],
                                         call.reply["ledger_id"]))

    async def call(self, op: str, **args) -> Call | None:
        """Send one request and record it; None when the socket is not open (nothing sent)."""
        if not self.open:
            return None
        call = self.history.begin(op, self.user, self.node, self.id, args)
        try:
            reply = await self.conn.request_within(REPLY_WAIT, op, **args)
        except asyncio.TimeoutError:
            self.close()
            return self.history.end(call, "timeout")
        except ConnectionError:
            return self.history.end(call, "closed")
        outcome = reply.get("result", "ok") if reply.get("ok") else reply.get("code", "error")
        return self.history.end(call, outcome, reply)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            if self.record is not None:
                self._closed()
