"""The WebSocket endpoint: a shim between frames and the op table."""
import asyncio
import logging
import re
import time

import tornado.iostream
import tornado.websocket

from handlers import ops
from handlers.frames import BulkFrameProtocol, frame, send_now
from handlers.base import is_unicode
from rtserver import auth, codec, metrics
from rtserver.errors import (BadFrame, BadRequest, OutcomeUnknown, RateLimited, RtError,
                             Unauthorized, Unavailable)
from rtserver.ratelimit import TokenBucket
from rtserver.session import open_session
from storage.errors import is_dependency_down

log = logging.getLogger("rtserver.socket")

MAX_BAD_FRAMES = 10  # PROTOCOL.md: more bad frames than this close the connection
MAX_PENDING_BYTES = 1 << 20  # a consumer that lets this much pile up unsent is cut off
HARD_FRAME_LIMIT = 1 << 20  # past this Tornado closes with 1009 before reading the frame
# A connection may be refused for its rate this many times before it is cut off (1008). One
# refusal a second is forgiven, so a client that slows down when told is never cut off, while
# one that keeps sending faster than its limit is, however little faster.
MAX_REFUSALS = 200
REFUSALS_FORGIVEN_PER_SECOND = 1.0
IN_FLIGHT = "too many requests being worked on at once; wait for answers"
# JSON's \ud800-\udfff escapes can make lone surrogates (see is_unicode): only frames with such
# an escape pay for the full check.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class SocketHandler(tornado.websocket.WebSocketHandler):
    def initialize(self):
        self.outbox: list[bytes] = []  # frames waiting for the end of this turn of the loop
        # Kept, not asked for per message: in Python 3.11 asking for the running loop costs a
        # getpid() system call (asyncio's check for a fork).
        self.loop = asyncio.get_running_loop()
        self.pending_bytes = 0  # written to the stream, not yet to the socket
        self.requests: dict[asyncio.Task, bool] = {}  # being worked on → only reads

    @property
    def ctx(self):
        return self.application.settings["ctx"]

    async def get(self, *args, **kwargs):
        # The origin first: a foreign page is refused before its token costs a database query.
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            return self._refuse(403, "origin not allowed")
        token = self.get_query_argument("token", None) or auth.bearer(
            self.request.headers.get("Authorization"))
        try:
            self.user_id = auth.user_of(self.ctx.settings.token_secret, token)
            self.ctx.quotas.take_socket(self.user_id)
        except RtError as exc:
            return self._refuse(exc.http_status, exc.message)
        try:  # Tornado's get() returns when the socket has closed: the seat is held till then
            await self._upgrade(*args, **kwargs)
        finally:
            self.ctx.quotas.give_socket(self.user_id)

    async def _upgrade(self, *args, **kwargs):
        try:
            self.hello, self.rooms = await open_session(self.ctx, self.user_id)
        except (Unauthorized, Unavailable) as exc:
            return self._refuse(exc.http_status, exc.message)
        except Exception as exc:
            if not is_dependency_down(exc):
                raise
            return self._refuse(503, "unavailable")
        await super().get(*args, **kwargs)

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(message)

    def check_origin(self, origin: str) -> bool:
        """Any origin unless --allowed-origins is set; then only those listed."""
        allowed = self.ctx.settings.allowed_origins
        if not allowed:
            return True
        return _normal_origin(origin) in {_normal_origin(o) for o in allowed.split(",")}

    def get_websocket_protocol(self):
        protocol = super().get_websocket_protocol()  # None for a WebSocket version it lacks
        return protocol and BulkFrameProtocol(self, False, protocol.params)

    def select_subprotocol(self, subprotocols):
        self.subprotocol = next((p for p in subprotocols if p in codec.SUBPROTOCOLS), codec.MSGPACK)
        return self.subprotocol if self.subprotocol in subprotocols else None

    def open(self, *args, **kwargs):
        if not hasattr(self, "subprotocol"):
            self.subprotocol = codec.MSGPACK
        self.bad_frames = 0
        # A grab's events and its reply leave in two writes: with Nagle's algorithm the second
        # waits for the client's delayed ACK of the first, some 40 ms.
        self.set_nodelay(True)
        self.bucket, self.patience = self._buckets()
        self.ctx.hub.connect(self, self.rooms)
        self.ctx.reclaimer.connection_opened()
        metrics.CONNECTIONS.inc()
        self.send_frame(codec.encode(self.subprotocol, self.hello))

    def on_close(self):
        self.ctx.hub.disconnect(self)
        self.ctx.reclaimer.connection_ended()
        metrics.CONNECTIONS.dec()
        # Nobody is left to hear the answers: what only reads is dropped; what changes money
        # or the chat finishes (its answer goes nowhere), so that it is never left half-done.
        for task, only_reads in self.requests.items():
            if only_reads:
                task.cancel()

    def on_message(self, data):
        # The bucket comes first: a flood must cost nothing but this check (and its refusal).
        if self._refused():
            return self._rate_limited(data)
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
            reply = {"re": rid, "ok": True, **result}
            outcome = result.get("result", "ok")
        except OutcomeUnknown:
            metrics.answered(label, "outcome_unknown", time.perf_counter() - started)
            return self.close(1013, "outcome not known yet; reconnect and try again")
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

    def _as_error(self, exc: Exception, op: str) -> RtError:
        if isinstance(exc, RtError):
            return exc
        self.ctx.outages.failed(exc, op, log)
        return Unavailable() if is_dependency_down(exc) else RtError()

    def _bad_frame(self, exc: BadFrame, too_big: bool = False) -> None:
        self.bad_frames += 1
        if self.bad_frames > MAX_BAD_FRAMES:
            return self.close(1009 if too_big else 1008, "too many bad frames")
        self.send_frame(codec.encode(self.subprotocol,
                                     {"ev": "error", "code": exc.code, "message": exc.message}))

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
            self.close(1008, "rate limit")
        return True

    def _buckets(self) -> tuple[TokenBucket | None, TokenBucket | None]:
        """The request bucket (`--rate-limit` a second, bursts of twice that) and the patience."""
        rate, now = self.ctx.settings.rate_limit, time.monotonic()
        if rate <= 0:
            return None, None
        return (TokenBucket(rate, 2 * rate, now),
                TokenBucket(REFUSALS_FORGIVEN_PER_SECOND, MAX_REFUSALS, now))

    # The hub's side of a connection.

    def send_frame(self, data: bytes | str) -> None:
        """Queue a message for the client: the messages of one turn of the event loop (a reply,
        the events of a commit) leave in one write, without Tornado's task per message."""
        self.outbox.append(frame(data))
        if len(self.outbox) == 1:
            self.loop.call_soon(self._flush)

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
            self.close(1008, "too slow to read")

    def _written(self, size: int) -> None:
        self.pending_bytes -= size

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self._flush()  # what was said before the close frame is sent before it
        super().close(code, reason)

    def shut(self, code: int, reason: str) -> None:
        self.close(code, reason)


def _decode(data: bytes | str) -> dict:
    """A frame as a map of real Unicode text, or BadFrame."""
    frame = codec.decode(data)
    if isinstance(data, str) and SURROGATE_ESCAPE.search(data) and not is_unicode(frame):
        raise BadFrame("a string in the frame is not Unicode (a lone surrogate)")
    return frame


def _failure(rid, err: RtError) -> dict:
    return {"re": rid, "ok": False, "code": err.code, "message": err.message}


def _size(data: bytes | str) -> int:
    """A frame's size in bytes, as sent: Tornado hands text frames over decoded."""
    return len(data) if isinstance(data, bytes) else len(data.encode())


def _request_id(frame: dict):
    """The frame's `id` if both encodings can echo it back in `re`, else None."""
    rid = frame.get("id")
    if type(rid) is int:
        return rid if -2**63 <= rid < 2**63 else None
    return rid if isinstance(rid, str) and len(rid) <= 64 else None


def _normal_origin(origin: str) -> str:
    """An origin as browsers send it: `scheme://host[:port]`, lower case, no trailing slash."""
    return origin.strip().rstrip("/").lower()


default_handlers = [(r"/ws", SocketHandler)]
