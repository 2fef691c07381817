"""The HTTP server of `rtserver serve`, bounded against peers that hold connections open.

Tornado's defaults let a peer that sends a request line a byte at a time keep its socket for an
hour, and its accept loop logs a traceback on every turn once the process is out of file
descriptors (docs/protocol.md, "Rates and bounds": headers within `--header-timeout`, bodies
within 30 s, idle keep-alive connections closed after 60 s, running out of descriptors logged
once a second at most). A new connection waits at the header gate (rtserver/header_gate.py)
until its first request is complete; Tornado takes it from there at `--accept-rate`.
"""
import collections
import errno
import logging
import resource
import socket
import time

import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.netutil

from rtserver import metrics
from rtserver.header_gate import HeaderGate
from rtserver.memory import Reclaimer
from rtserver.ratelimit import TokenBucket
from rtserver.sparing_log import OncePerSecond

log = logging.getLogger("rtserver.listener")

BODY_TIMEOUT = 30  # seconds a request's body may take to arrive
IDLE_TIMEOUT = 60  # seconds a kept-alive connection may wait for its next request
ACCEPT_PAUSE = 0.1  # seconds the accept loop rests when no descriptor is left for a new socket
# New connections taken in one turn of the event loop, at most (Tornado takes up to 128): taking
# one to the header gate costs some 27 µs (bench/gate.py), so the sockets already open are
# served in between.
ACCEPTS_PER_TURN = 64
# Connections the kernel keeps waiting to be taken (Tornado asks for 128): a crowd reconnecting
# at once waits here, instead of having its SYNs dropped and retried a second later.
BACKLOG = 1024
MAX_AWAITING_HEADERS = 2000  # kept-alive connections waiting for a next request's headers (below)
FD_HEADROOM = 1024  # descriptors beyond the sockets: MariaDB, Redis, files, the listener
OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def listen(app, port: int, address: str, header_timeout: float, reclaimer: Reclaimer,
           accept_rate: float, reuse_port: bool = False, **options):
    """Serve `app` on `port` behind the header gate, serving at most `accept_rate` new
    connections a second once their first request is in (0: no limit), beside other processes
    that bind it too if `reuse_port`; return the server (stop it with `stop()`)."""
    pace = TokenBucket(accept_rate, accept_rate, time.monotonic()) if accept_rate else None
    server = GuardedServer(app, header_timeout=header_timeout, pace=pace, reclaimer=reclaimer,
                           xheaders=True, idle_connection_timeout=IDLE_TIMEOUT,
                           body_timeout=BODY_TIMEOUT, **options)
    sockets = tornado.netutil.bind_sockets(port, address, backlog=BACKLOG, reuse_port=reuse_port)
    server.add_sockets([PatientSocket.taking(s) for s in sockets])
    return server


class GuardedServer(tornado.httpserver.HTTPServer):
    """Tornado's server behind the header gate, with a bound on the kept-alive connections
    waiting for a next request's headers.

    The gate sees to a connection's first request. Its later ones have Tornado's
    `idle_connection_timeout` for waiting and reading headers alike; past MAX_AWAITING_HEADERS
    connections doing so, the one that has waited longest is closed: peers that send each
    next request a byte at a time cannot hold the node's descriptors, whatever their number.
    """

    def initialize(self, *args, header_timeout: float, pace: TokenBucket | None,
                   reclaimer: Reclaimer, **kwargs):
        if kwargs.get("ssl_options"):  # the gate reads requests as they come, in the clear
            raise ValueError("TLS is the proxy's in front of rtserver, not the server's")
        super().initialize(*args, **kwargs)
        self.reclaimer, self.gate = reclaimer, HeaderGate(self, header_timeout, pace)
        self._opened_at: dict = {}  # connection → when it opened (its first request began)
        self.awaiting: collections.OrderedDict = collections.OrderedDict()  # oldest first

    def add_sockets(self, sockets) -> None:
        """Listen on `sockets`: their connections come in through the gate."""
        for sock in sockets:
            self.gate.watch(sock)

    def stop(self) -> None:
        self.gate.stop()
        super().stop()

    def start_request(self, server_conn, request_conn):
        if server_conn not in self._opened_at:
            self._opened_at[server_conn] = self.reclaimer.connection_opened()
        waiting = AwaitingHeaders(super().start_request(server_conn, request_conn),
                                  request_conn, self.awaiting)
        if len(self.awaiting) > MAX_AWAITING_HEADERS:
            next(iter(self.awaiting)).give_up()
        return waiting

    def on_close(self, server_conn) -> None:
        self.reclaimer.connection_ended(self._opened_at.pop(server_conn, None))
        super().on_close(server_conn)


class AwaitingHeaders(tornado.httputil.HTTPMessageDelegate):
    """A request until its headers have arrived: listed among those awaited."""

    def __init__(self, delegate, request_conn, awaiting: dict):
        self.delegate, self.request_conn, self.awaiting = delegate, request_conn, awaiting
        awaiting[self] = None

    def give_up(self) -> None:
        metrics.refused("awaiting_headers")
        self._arrived()
        self.request_conn.close()

    def _arrived(self) -> None:
        """No longer waiting, for whatever reason."""
        self.awaiting.pop(self, None)

    def headers_received(self, start_line, headers):
        self._arrived()
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self._arrived()
        self.delegate.on_connection_close()


class PatientSocket(socket.socket):
    """A listening socket that takes at most ACCEPTS_PER_TURN connections a turn; with no
    descriptor left for a new connection, it stops accepting for a moment and says so once a
    second, instead of failing (and being logged) every turn."""

    @classmethod
    def taking(cls, sock: socket.socket) -> "PatientSocket":
        patient = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        patient.setblocking(False)
        patient._out_of_fds = OncePerSecond(log, logging.ERROR)
        patient._taken = 0  # this turn
        return patient

    def accept(self):
        if self._taken >= ACCEPTS_PER_TURN:
            raise BlockingIOError(errno.EAGAIN, "enough for this turn")  # Tornado: next turn
        if self._taken == 0:
            tornado.ioloop.IOLoop.current().add_callback(self._next_turn)
        self._taken += 1
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in OUT_OF_FDS:
                raise
            metrics.refused("file_descriptors")
            self._say(exc)
            self._rest(ACCEPT_PAUSE)
            raise BlockingIOError(errno.EAGAIN, "resting") from None  # Tornado: try later

    def _next_turn(self) -> None:
        self._taken = 0

    def _say(self, exc: OSError) -> None:
        self._out_of_fds.say("cannot accept connections: %s", exc.strerror)

    def _rest(self, seconds: float) -> None:
        """Stop watching for connections for `seconds`; the kernel keeps them queued meanwhile."""
        loop, fd = tornado.ioloop.IOLoop.current(), self.fileno()
        loop.update_handler(fd, 0)

        def resume():
            if self.fileno() == fd:  # not closed by the server stopping meanwhile
                loop.update_handler(fd, tornado.ioloop.IOLoop.READ)
        loop.call_later(seconds, resume)


def raise_fd_limit(sockets: int) -> int:
    """Allow this process enough descriptors for `sockets` connections, as far as it may;
    return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + FD_HEADROOM
    if soft >= wanted:
        return soft
    try:  # raising the hard limit too needs privilege (root)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, hard), hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < wanted:
        log.warning("%d file descriptors allowed, fewer than %d sockets and their headroom need",
                    soft, sockets)
    return soft
