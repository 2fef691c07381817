"""The history the checker reads: every request the workload made and what came back.

Times are seconds since the run began. A call that got no answer has `outcome` "closed" (its
socket went away first) or "timeout" (the workload gave up on it and closed the socket), with
`received` the moment that happened.
"""
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Call:
    op: str
    user: int
    node: int
    conn: int
    args: dict
    sent: float
    received: float | None = None
    reply: dict | None = None
    outcome: str | None = None

    @property
    def latency(self) -> float | None:
        return None if self.received is None else self.received - self.sent


@dataclass
class Socket:
    """One connection's life and the balances it was told of (hello, then `wallet` events)."""
    conn: int
    user: int
    node: int
    opened: float
    closed: float | None = None
    balances: list = field(default_factory=list)  # [(time, "12.34", ledger_id)]
    resyncs: list = field(default_factory=list)  # times a `resync` arrived


class History:
    def __init__(self):
        self.started = time.monotonic()
        self.calls: list[Call] = []
        self.sockets: list[Socket] = []

    def now(self) -> float:
        return time.monotonic() - self.started

    def begin(self, op: str, user: int, node: int, conn: int, args: dict) -> Call:
        call = Call(op, user, node, conn, dict(args), self.now())
        self.calls.append(call)
        return call

    def end(self, call: Call, outcome: str, reply: dict | None = None) -> Call:
        call.received, call.outcome, call.reply = self.now(), outcome, reply
        return call

    def socket(self, conn: int, user: int, node: int) -> Socket:
        sock = Socket(conn, user, node, self.now())
        self.sockets.append(sock)
        return sock

    def of(self, op: str) -> list[Call]:
        return [c for c in self.calls if c.op == op]

    def as_json(self) -> dict:
        return {"calls": [asdict(c) for c in self.calls],
                "sockets": [asdict(s) for s in self.sockets]}
