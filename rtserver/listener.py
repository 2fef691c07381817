"""The HTTP server of `rtserver serve`, bounded against peers that hold connections open.

Tornado's defaults let a peer that sends a request line a byte at a time keep its socket for an
hour, and its accept loop logs a traceback on every turn once the process is out of file
descriptors (docs/protocol.md, "Rates and bounds": headers within `--header-timeout`, bodies
within 30 s, idle keep-alive connections closed after 60 s, running out of descriptors logged
once a second at most). And a peer opening connections as fast as it can, each refused at once,
would take the node's time from the sockets it serves: new connections are taken at
`--accept-rate`, the rest wait in the kernel's queue (HAProxy's `rate-limit sessions`).
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
from rtserver.memory import Reclaimer
from rtserver.ratelimit import TokenBucket
from rtserver.sparing_log import OncePerSecond

log = logging.getLogger("rtserver.listener")

BODY_TIMEOUT = 30  # seconds a request's body may take to arrive
IDLE_TIMEOUT = 60  # seconds a kept-alive connection may wait for its next request
ACCEPT_PAUSE = 0.1  # seconds the accept loop rests when no descriptor is left for a new socket
# New connections taken in one turn of the event loop, at most (Tornado takes up to 128): a
# flood of connections waits its turn in the kernel's queue, and the sockets already open are
# served in between.
ACCEPTS_PER_TURN = 16
# Connections the kernel keeps waiting to be taken (Tornado asks for 128): paced, a crowd
# reconnecting at once waits here, instead of having its SYNs dropped and retried a second later.
BACKLOG = 1024
MAX_AWAITING_HEADERS = 2000  # connections waiting for a request's headers, at most (see below)
FD_HEADROOM = 1024  # descriptors beyond the sockets: MariaDB, Redis, files, the listener
OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def listen(app, port: int, address: str, header_timeout: float, reclaimer: Reclaimer,
           accept_rate: float, reuse_port: bool = False, **options):
    """Serve `app` on `port`, taking at most `accept_rate` new connections a second (0: no
    limit), beside other processes that bind it too if `reuse_port`; return the server (stop it
    with `stop()`)."""
    server = GuardedServer(app, header_timeout=header_timeout, reclaimer=reclaimer, xheaders=True,
                           idle_connection_timeout=IDLE_TIMEOUT, body_timeout=BODY_TIMEOUT,
                           **options)
    sockets = tornado.netutil.bind_sockets(port, address, backlog=BACKLOG, reuse_port=reuse_port)
    pace = TokenBucket(accept_rate, accept_rate, time.monotonic()) if accept_rate else None
    server.add_sockets([PatientSocket.taking(s, pace) for s in sockets])
    return server


class GuardedServer(tornado.httpserver.HTTPServer):
    """Tornado's server with a deadline on the headers of each connection's first request, and
    a bound on the connections waiting for headers at all.

    Tornado has one time-out for waiting for a request and reading its headers
    (`idle_connection_timeout`): the idle limit covers a kept-alive connection's later requests,
    and a new connection, which has never been idle, gets `header_timeout` to say what it wants.
    A client's headers arrive with its first packets, so a node rarely has more than a few
    hundred connections waiting for them; past MAX_AWAITING_HEADERS, the one that has waited
    longest is closed: peers that send a request a byte at a time cannot hold the node's
    descriptors and memory, whatever their number.
    """

    def initialize(self, *args, header_timeout: float, reclaimer: Reclaimer, **kwargs):
        super().initialize(*args, **kwargs)
        self.header_timeout, self.reclaimer = header_timeout, reclaimer
        self._opened_at: dict = {}  # connection → when it opened (its first request began)
        self.awaiting: collections.OrderedDict = collections.OrderedDict()  # oldest first

    def start_request(self, server_conn, request_conn):
        first = server_conn not in self._opened_at
        if first:
            self._opened_at[server_conn] = self.reclaimer.connection_opened()
        waiting = AwaitingHeaders(super().start_request(server_conn, request_conn),
                                  request_conn, self.awaiting,
                                  self.header_timeout if first else None)
        if len(self.awaiting) > MAX_AWAITING_HEADERS:
            next(iter(self.awaiting)).give_up("awaiting_headers")
        return waiting

    def on_close(self, server_conn) -> None:
        self.reclaimer.connection_ended(self._opened_at.pop(server_conn, None))
        super().on_close(server_conn)


class AwaitingHeaders(tornado.httputil.HTTPMessageDelegate):
    """A request until its headers have arrived: listed among those awaited, and closed if its
    deadline (a first request's) passes first."""

    def __init__(self, delegate, request_conn, awaiting: dict, timeout: float | None):
        self.delegate, self.request_conn, self.awaiting = delegate, request_conn, awaiting
        self.timer = timeout and tornado.ioloop.IOLoop.current().call_later(
            timeout, self.give_up, "header_timeout")
        awaiting[self] = None

    def give_up(self, why: str) -> None:
        metrics.refused(why)
        self._arrived()
        self.request_conn.close()

    def _arrived(self) -> None:
        """No longer waiting, for whatever reason."""
        self.awaiting.pop(self, None)
        if self.timer:
            tornado.ioloop.IOLoop.current().remove_timeout(self.timer)
            self.timer = None

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
    """A listening socket that takes at most ACCEPTS_PER_TURN connections a turn and, given a
    `pace` (shared by a server's sockets), no more than it allows; with no descriptor left for
    a new connection, it stops accepting for a moment and says so once a second, instead of
    failing (and being logged) every turn.

    Tornado's server spends some 0.3 ms on a connection even when it only answers 429: a peer
    opening thousands a second would take the node's time from the sockets it serves. Paced,
    the rest wait in the kernel's queue, costing the node nothing; a client that finds the
    queue full tries again by itself (TCP retransmits its SYN)."""

    @classmethod
    def taking(cls, sock: socket.socket, pace: TokenBucket | None = None) -> "PatientSocket":
        patient = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        patient.setblocking(False)
        patient._out_of_fds = OncePerSecond(log, logging.ERROR)
        patient._taken = 0  # this turn
        patient._pace = pace
        return patient

    def accept(self):
        if self._taken >= ACCEPTS_PER_TURN:
            raise BlockingIOError(errno.EAGAIN, "enough for this turn")  # Tornado: next turn
        if self._pace and not self._pace.take(time.monotonic()):
            self._rest(1 / self._pace.rate)  # until the next connection is due
            raise BlockingIOError(errno.EAGAIN, "paced")
        if self._taken == 0:
            tornado.ioloop.IOLoop.current().add_callback(self._next_turn)
        self._taken += 1
        try:
            return super().accept()
        except OSError as exc:
            if self._pace:  # nobody was taken
                self._pace.give_back()
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
