"""The WebSocket endpoint: Tornado's side of a socket, a shim over its connection.

The upgrade is authorised here (origin, token, the user's quota of sockets, a session to open);
once the socket is open, its messages go to a Connection (handlers/connection.py), which
answers them through the op table.
"""
import tornado.websocket

from handlers.connection import Connection
from handlers.frames import BulkFrameProtocol
from rtserver import auth, codec, metrics
from rtserver.errors import RtError, Unauthorized, Unavailable
from rtserver.session import open_session
from storage.errors import is_dependency_down

HARD_FRAME_LIMIT = 1 << 20  # past this Tornado closes with 1009 before reading the frame


class SocketHandler(tornado.websocket.WebSocketHandler):
    # Set by open(). Tornado calls on_close for a client that left during the upgrade too.
    connection: Connection | None = None
    opened_at: float | None = None

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
            self.user_id, self.token_exp = auth.verify(self.ctx.settings.token_secret, token)
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
        self.connection = Connection(self, self.ctx, self.user_id, self.subprotocol,
                                     self.token_exp)
        # Frames leave in writes close together (a reply, then the events of a commit that came
        # after it): with Nagle's algorithm the second waits for the client's delayed ACK of
        # the first, some 40 ms.
        self.set_nodelay(True)
        self.ctx.hub.connect(self.connection, self.rooms)
        self.opened_at = self.ctx.reclaimer.connection_opened()
        metrics.CONNECTIONS.inc()
        self.connection.send_frame(codec.encode(self.subprotocol, self.hello))
        self.connection.catch_up(self.hello)  # its balance was read before it joined the rooms
        self.hello = self.rooms = None  # they were for open(): a socket held for hours keeps neither

    def on_message(self, data):
        self.connection.receive(data)

    def admit_ping(self) -> bool:
        """Whether a ping the client sent is answered (BulkFrameProtocol asks)."""
        return self.connection.admit_ping()

    def on_close(self):
        self.ctx.hub.disconnect(self.connection)
        self.ctx.reclaimer.connection_ended(self.opened_at)
        metrics.CONNECTIONS.dec()
        if self.connection is not None:
            self.connection.abandon()


def _normal_origin(origin: str) -> str:
    """An origin as browsers send it: `scheme://host[:port]`, lower case, no trailing slash."""
    return origin.strip().rstrip("/").lower()


default_handlers = [(r"/ws", SocketHandler)]
