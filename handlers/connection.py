"""One client's socket once it is open: its requests in flight, its rate and its outbox.

The handler (handlers/socket.py) is Tornado's side of the socket: it authorises the upgrade and
hands every message over to `receive`. This is rtserver's side, and what the hub holds: each
frame for the client leaves through its outbox, an answer by `send_frame`, an event by
`send_event`.
"""
import asyncio
import logging
import re
import time

import tornado.iostream
import tornado.websocket

from handlers import ops
from handlers.base import is_unicode
from handlers.frames import frame, send_now
from rtserver import codec, metrics, wallet
from rtserver.context import Context
from rtserver.errors import BadFrame, BadRequest, OutcomeUnknown, RateLimited, RtError, Unavailable
from rtserver.ratelimit import TokenBucket
from storage.errors import is_dependency_down

log = logging.getLogger("rtserver.socket")

MAX_BAD_FRAMES = 10  # docs/protocol.md: more bad frames than this close the connection
MAX_PENDING_BYTES = 1 << 20  # a consumer that lets this much pile up unsent is cut off
# A connection may be refused for its rate this many times before it is cut off (1008). One
# refusal a second is forgiven, so a client that slows down when told is never cut off, while
# one that keeps sending faster than its limit is, however little faster.
MAX_REFUSALS = 200
REFUSALS_FORGIVEN_PER_SECOND = 1.0
IN_FLIGHT = "too many requests being worked on at once; wait for answers"
TOKEN_EXPIRED = 4001  # docs/protocol.md's close code for a socket whose token's `exp` has passed
# JSON's \ud800-\udfff escapes can make lone surrogates (see is_unicode): only frames with such
# an escape pay for the full check.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class Connection:
    """A user's open socket, in the hub's rooms: answers its requests, each as a task of its own,
    within its rate, and sends what it is owed."""

    def __init__(self, websocket: tornado.websocket.WebSocketHandler, ctx: Context, user_id: int,
                 subprotocol: str, token_exp: float):
        self.websocket, self.ctx = websocket, ctx  # the Tornado handler it speaks through
        self.user_id, self.subprotocol = user_id, subprotocol
        # Kept, not asked for per message: in Python 3.11 asking for the running loop costs a
        # getpid() system call (asyncio's check for a fork).
        self.loop = asyncio.get_running_loop()
        self.requests: dict[asyncio.Task, bool] = {}  # being worked on → only reads
        self.bad_frames = 0
        self.bucket, self.patience = self._buckets()
        self.outbox: list[bytes] = []  # frames waiting for the end of this turn of the loop
        self.pending_bytes = 0  # written to the stream, not yet to the socket
        self.catching_up: asyncio.Task | None = None
        self.told_ledger_id = 0  # of the newest balance the socket was told
        self.renew(token_exp)

    @property
    def ws_connection(self):
        """Tornado's protocol under the socket; None once the socket has closed."""
        return self.websocket.ws_connection

    def receive(self, data: bytes | str) -> None:
        """Take a message from the client: start answering it, or refuse it at once."""
        # The bucket comes first: a flood must cost nothing but this check (and its refusal).
        if self._refused():
            return self._rate_limited(data)
        if self.token_exp <= time.time():  # ended, and the clock's sweep has not come to it yet
            return self.token_ended()
        if _size(data) > self.ctx.settings.max_frame:
            return self._bad_frame(BadFrame("frame too large"), too_big=True)
        try:
            frame = _decode(data)
        except BadFrame as exc:
            return self._bad_frame(exc)
        if not self.ctx.quotas.take_request(self.user_id, len(self.requests)):
            return self._answer_rate_limited(_request_id(frame), IN_FLIGHT)
        task = self.loop.create_task(self._answer(frame))
        self.requests[task] = ops.only_reads(frame.get("op"))
        self.ctx.inflight.add(task)
        task.add_done_callback(self._answered)

    def catch_up(self, hello: dict) -> None:
        """Tell the socket of a movement booked between reading its `hello` and its joining
        the rooms: that movement's `wallet` event went to the rooms without it."""
        self.told_ledger_id = hello["ledger_id"]
        self.catching_up = self.loop.create_task(self._catch_up(hello["ledger_id"]))

    async def _catch_up(self, ledger_id: int) -> None:
        try:
            event = await wallet.moved_since(self.ctx, self.user_id, ledger_id)
        except Exception as exc:  # the client asks again (wallet.get) after a resync
            self.ctx.outages.failed(exc, "catching a new socket up", log)
            return
        finally:
            self.catching_up = None  # a finished task, kept, is some 650 bytes per idle socket
        if event is not None and self.newer_balance(event["ledger_id"]):
            self.send_frame(codec.encode(self.subprotocol, event))

    def newer_balance(self, ledger_id: int) -> bool:
        if ledger_id <= self.told_ledger_id:
            return False
        self.told_ledger_id = ledger_id
        return True

    def abandon(self) -> None:
        """Stop what the closed socket asked for and only reads: nobody is left to hear it.
        What changes money or the chat finishes (its answer goes nowhere), so that it is never
        left half-done."""
        self.ctx.token_clock.disarm(self)
        if self.catching_up is not None:
            self.catching_up.cancel()
        for task, only_reads in self.requests.items():
            if only_reads:
                task.cancel()

    def _answered(self, task: asyncio.Task) -> None:
        del self.requests[task]
        self.ctx.inflight.discard(task)
        self.ctx.quotas.give_request(self.user_id)

    async def _answer(self, frame: dict) -> None:
        rid, op = _request_id(frame), frame.get("op")
        label = op if isinstance(op, str) and op in ops.OPS else "unknown"
        started = time.perf_counter()
        try:
            if rid is None and frame.get("id") is not None:
                raise BadRequest("id must be an integer or a short string")
            result = await ops.call(self.ctx, self.user_id, op, frame)
            if op == ops.REFRESH:
                self.renew(result["exp"])
            reply = {"re": rid, "ok": True, **result}
            outcome = result.get("result", "ok")
        except OutcomeUnknown:
            metrics.answered(label, "outcome_unknown", time.perf_counter() - started)
            return self.shut(1013, "outcome not known yet; reconnect and try again")
        except Exception as exc:
            err = self._as_error(exc, label)
            reply = _failure(rid, err)
            outcome = err.code
        metrics.answered(label, outcome, time.perf_counter() - started)
        data = codec.encode(self.subprotocol, reply)
        if _size(data) > codec.MAX_REPLY:  # a use-case's bound missed it: a bug, not the client's
            log.error("%s reply of %d bytes not sent", label, _size(data))
            metrics.refused("reply_size")
            data = codec.encode(self.subprotocol, _failure(rid, RtError("the answer is too large")))
        self.send_frame(data)

    # The token: the socket lives until its `exp`, which `auth.refresh` moves.

    def renew(self, token_exp: float) -> None:
        self.token_exp = token_exp
        self.ctx.token_clock.arm(self, token_exp)

    def token_ended(self) -> None:
        """Close the socket: its token has ended. What it asked for and is still being worked on
        goes as on any close (abandon); answers already made leave before the close frame."""
        self.shut(TOKEN_EXPIRED, "token expired")

    def _as_error(self, exc: Exception, op: str) -> RtError:
        if isinstance(exc, RtError):
            return exc
        self.ctx.outages.failed(exc, op, log)
        return Unavailable() if is_dependency_down(exc) else RtError()

    def _bad_frame(self, exc: BadFrame, too_big: bool = False) -> None:
        self.bad_frames += 1
        if self.bad_frames > MAX_BAD_FRAMES:
            return self.shut(1009 if too_big else 1008, "too many bad frames")
        self.send_frame(codec.encode(self.subprotocol,
                                     {"ev": "error", "code": exc.code, "message": exc.message}))

    # The rate: a token bucket per connection, and the patience for refusals.

    def _rate_limited(self, data) -> None:
        """Answer `rate_limited` to the request's id, doing nothing else."""
        if self.ws_connection is None:  # cut off for it
            return
        rid = None
        if _size(data) <= self.ctx.settings.max_frame:
            try:
                rid = _request_id(_decode(data))
            except BadFrame:
                pass
        self._answer_rate_limited(rid)

    def _answer_rate_limited(self, rid, message: str | None = None) -> None:
        self.send_frame(codec.encode(self.subprotocol, _failure(rid, RateLimited(message))))

    def admit_ping(self) -> bool:
        """A client's ping costs a token, as a request does: past the rate it goes unanswered,
        and a client that keeps on is cut off like any flooder."""
        return not self._refused()

    def _refused(self) -> bool:
        """Whether the bucket refuses this frame; a client refused past its patience is cut
        off (1008)."""
        now = time.monotonic()
        if self.bucket is None or self.bucket.take(now):
            return False
        metrics.refused("rate")
        if not self.patience.take(now):
            self.shut(1008, "rate limit")
        return True

    def _buckets(self) -> tuple[TokenBucket | None, TokenBucket | None]:
        """The request bucket (`--rate-limit` a second, bursts of twice that) and the patience."""
        rate, now = self.ctx.settings.rate_limit, time.monotonic()
        if rate <= 0:
            return None, None
        return (TokenBucket(rate, 2 * rate, now),
                TokenBucket(REFUSALS_FORGIVEN_PER_SECOND, MAX_REFUSALS, now))

    # The outbox: what the hub and the answers send.

    def send_frame(self, data: bytes | str) -> None:
        """Queue a message for the client: the messages of one turn of the event loop (a reply,
        the events of a commit) leave in one write, without Tornado's task per message."""
        self.outbox.append(frame(data))
        if len(self.outbox) == 1:
            self.loop.call_soon(self._flush)

    def send_event(self, data: bytes | str) -> None:
        """Queue an event for the client, to leave a turn of the loop later than a reply would.

        A commit's events are queued in the turn that committed it, and the answers of the
        grabs it booked are made in the next (their tasks wake then): so a grab's answer, its
        wallet and its notice leave in one write, not two."""
        self.outbox.append(frame(data))
        if len(self.outbox) == 1:
            self.loop.call_soon(self.loop.call_soon, self._flush)

    def _flush(self) -> None:
        if not self.outbox:
            return
        frames, self.outbox = b"".join(self.outbox), []
        # Tornado's own frames (close, ping) go through the same stream, whole, in order.
        protocol = self.ws_connection
        if protocol is None or protocol.is_closing():
            return
        frames = frames[send_now(protocol.stream, frames):]
        if not frames:
            return
        try:
            written = protocol.stream.write(frames)
        except tornado.iostream.StreamClosedError:
            return
        self.pending_bytes += len(frames)
        written.add_done_callback(lambda _: self._written(len(frames)))
        if self.pending_bytes > MAX_PENDING_BYTES:  # now: one that never reads may hear no more
            metrics.refused("unsent_bytes")
            self.shut(1008, "too slow to read")

    def _written(self, size: int) -> None:
        self.pending_bytes -= size

    def shut(self, code: int, reason: str) -> None:
        """Close the socket with `code`, once what was said before has gone out before it."""
        self._flush()
        self.websocket.close(code, reason)


def _decode(data: bytes | str) -> dict:
    """A frame as a map of real Unicode text, or BadFrame."""
    frame = codec.decode(data)
    if isinstance(data, str) and SURROGATE_ESCAPE.search(data) and not is_unicode(frame):
        raise BadFrame("a string in the frame is not Unicode (a lone surrogate)")
    return frame


def _failure(rid, err: RtError) -> dict:
    return {"re": rid, "ok": False, "code": err.code, "message": err.message, **err.fields}


def _size(data: bytes | str) -> int:
    """A frame's size in bytes, as sent: Tornado hands text frames over decoded."""
    return len(data) if isinstance(data, bytes) else len(data.encode())


def _request_id(frame: dict):
    """The frame's `id` if both encodings can echo it back in `re`, else None."""
    rid = frame.get("id")
    if type(rid) is int:
        return rid if -2**63 <= rid < 2**63 else None
    return rid if isinstance(rid, str) and len(rid) <= 64 else None
