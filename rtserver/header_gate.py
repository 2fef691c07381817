"""New connections wait at the gate, at the cost of a socket and a few bytes each, until their
first request's headers have arrived; only then does Tornado's HTTP server take them (FreeBSD's
`accf_http` accept filter, in the process).

Tornado spends some 0.3 ms of Python on a connection it takes (a stream, an HTTP connection, a
coroutine reading headers) and keeps all of it for as long as the headers take. Taken at that
price, a peer opening connections as fast as it can and sending each a byte now and then
(slowloris) has to be let in slowly, and while it fills the kernel's queue of connections the
people opening the app wait there with it, their SYNs dropped and sent again a second or three
later. At the gate a connection is taken as soon as it comes, its headers read as they arrive
(a request line and headers come in one packet from any real client), and one that does not
complete them within `--header-timeout` is closed. Complete requests go on to Tornado at
`--accept-rate` (HAProxy's `rate-limit sessions`), the peer addresses taking turns
(rtserver/turns.py): a peer flooding the node with complete requests waits behind its own, and
someone opening the app from elsewhere goes next. Past MAX_AT_GATE connections, the one that has
waited longest for its headers makes way (or, with none, the oldest complete one of the peer
with the most): neither a slowloris nor a flood holds the node's
descriptors, whatever its numbers. A complete request not served within `--header-timeout` of
completing (a flood past the accept rate) is closed too, and headers longer than Tornado reads
(64 KiB) are answered 431 here: the gate holds 2,000 × 64 KiB at the very most.
"""
import asyncio
import collections
import contextlib
import logging
import re
import socket
import time

import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.netutil

from rtserver import metrics
from rtserver.ratelimit import TokenBucket
from rtserver.turns import TakingTurns

log = logging.getLogger("rtserver.listener")

MAX_AT_GATE = 2000  # connections at the gate, at most
READ_SIZE = 4096
DRAIN_READS = 16  # reads of what follows headers too long, before closing on them
SWEEP_EVERY = 0.25  # seconds between looks for connections past their time
END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")  # as Tornado's HTTP/1 reader finds it
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
             b"Content-Length: 0\r\n\r\n")


class Arrival:
    """A connection at the gate: its socket, where it came from, what it sent so far."""
    __slots__ = ("sock", "address", "deadline", "sent")

    def __init__(self, sock: socket.socket, address, deadline: float):
        self.sock, self.address, self.deadline = sock, address, deadline
        self.sent = bytearray()


class HeaderGate:
    """Takes connections from listening sockets and hands the complete ones to `server`."""

    def __init__(self, server: tornado.httpserver.HTTPServer, header_timeout: float,
                 pace: TokenBucket | None):
        self.server, self.header_timeout, self.pace = server, header_timeout, pace
        self.max_headers = server.conn_params.max_header_size  # Tornado's, 64 KiB by default
        self.loop = tornado.ioloop.IOLoop.current()
        self.waiting: collections.OrderedDict = collections.OrderedDict()  # sock → Arrival
        self.complete = TakingTurns()  # due to go on, by peer address
        self.listeners: list[socket.socket] = []
        self.admitting = None  # the timer that lets the next complete one through
        self.sweeper = tornado.ioloop.PeriodicCallback(self._sweep, SWEEP_EVERY * 1000)
        metrics.AT_GATE.set_function(lambda: len(self.waiting) + len(self.complete))

    def watch(self, listener: socket.socket) -> None:
        """Take the connections `listener` accepts (see listener.PatientSocket)."""
        self.listeners.append(listener)
        tornado.netutil.add_accept_handler(listener, self._arrived)
        if not self.sweeper.is_running():
            self.sweeper.start()

    def stop(self) -> None:
        """Take no more, and close the connections still at the gate."""
        self.sweeper.stop()
        if self.admitting:
            self.loop.remove_timeout(self.admitting)
        for listener in self.listeners:
            self.loop.remove_handler(listener)
            listener.close()
        for arrival in [*self.waiting.values(), *self.complete]:
            self._drop(arrival)
        self.complete.clear()

    def _arrived(self, sock: socket.socket, address) -> None:
        if len(self.waiting) + len(self.complete) >= MAX_AT_GATE:
            oldest = next(iter(self.waiting.values()), None) or self.complete.oldest_of_busiest()
            self._drop(oldest, "awaiting_headers")
        sock.setblocking(False)
        self.waiting[sock] = Arrival(sock, address, time.monotonic() + self.header_timeout)
        self.loop.add_handler(sock, self._readable, tornado.ioloop.IOLoop.READ)

    def _readable(self, sock: socket.socket, _events) -> None:
        arrival = self.waiting[sock]
        try:
            chunk = sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer
            chunk = b""
        if not chunk:
            self._drop(arrival)
            return
        seen = max(0, len(arrival.sent) - 3)
        arrival.sent += chunk
        if END_OF_HEADERS.search(arrival.sent, seen, self.max_headers):
            self._stop_reading(arrival)
            arrival.deadline = time.monotonic() + self.header_timeout  # to be served by then
            self.complete.add(peer_of(arrival.address), arrival)
            if not self.admitting:
                self._admit()
        elif len(arrival.sent) > self.max_headers:
            with contextlib.suppress(OSError):
                sock.send(TOO_LARGE)
                # What is left unread would make the close a reset, lost with the answer.
                for _ in range(DRAIN_READS):
                    if not sock.recv(READ_SIZE):
                        break
            self._drop(arrival, "header_size")

    def _admit(self) -> None:
        """Hand complete requests to the server, as many as the pace allows now, and come back
        when the next is due."""
        self.admitting = None
        while self.complete and (self.pace is None or self.pace.take(time.monotonic())):
            self._hand_over(self.complete.next())
        if self.complete:
            self.admitting = self.loop.call_later(1 / self.pace.rate, self._admit)

    def _hand_over(self, arrival: Arrival) -> None:
        try:
            stream = PrefacedStream(arrival.sent, arrival.sock,
                                    max_buffer_size=self.server.max_buffer_size,
                                    read_chunk_size=self.server.read_chunk_size)
            self.server.handle_stream(stream, arrival.address)
        except Exception:  # as Tornado's own accept loop does: that connection alone is lost
            log.exception("cannot serve a connection from %s", arrival.address)
            arrival.sock.close()

    def _sweep(self) -> None:
        """Close the connections whose time is up: those still sending their headers, in the
        order they came, and those not served in time."""
        now = time.monotonic()
        while self.waiting and (oldest := next(iter(self.waiting.values()))).deadline <= now:
            self._drop(oldest, "header_timeout")
        for late in self.complete.take_expired(lambda arrival: arrival.deadline <= now):
            self._drop(late, "accept_rate")

    def _drop(self, arrival: Arrival, why: str | None = None) -> None:
        """Close a connection at the gate (counted as refused, `why`, unless the peer left)."""
        if why:
            metrics.refused(why)
        if arrival.sock in self.waiting:
            self._stop_reading(arrival)
        arrival.sock.close()

    def _stop_reading(self, arrival: Arrival) -> None:
        del self.waiting[arrival.sock]
        self.loop.remove_handler(arrival.sock)


def peer_of(address) -> str:
    """The peer's host: (host, port, …) for IP sockets, a path (or nothing) for Unix ones."""
    return address[0] if isinstance(address, tuple) else address


class PrefacedStream(tornado.iostream.IOStream):
    """A socket's stream that first reads back what the gate already read of it.

    `read_from_fd` is the method every IOStream subclass implements to read its source; the
    stream calls it as soon as a read is asked for, before waiting for the socket."""

    # Slots, not the instance's dict: past Tornado's own attributes, each new one there made
    # every idle socket's stream 1.3 KB bigger (its dict no longer shares its keys).
    __slots__ = ("preface", "emptied")

    def __init__(self, preface: bytearray, sock: socket.socket, **kwargs):
        super().__init__(sock, **kwargs)
        self.preface: bytearray | None = preface
        self.emptied = False  # the socket's last read took all it had

    def _start_read(self) -> asyncio.Future:
        """Tornado's, with the read's future made by the loop. Tornado makes it with `Future()`,
        which asks for the running loop: in Python 3.11 a getpid() system call, and a
        WebSocket reads once for each request (3.7 % of the server in a grab storm)."""
        if self._read_future is not None:  # a read under way: Tornado raises as it does
            return super()._start_read()
        self._read_future = self.io_loop.asyncio_loop.create_future()
        return self._read_future

    def read_from_fd(self, buf) -> int | None:
        if self.preface is None:
            return self._read_socket(buf)
        n = min(len(buf), len(self.preface))
        buf[:n] = self.preface[:n]
        del self.preface[:n]
        if not self.preface:  # read back whole: a socket held for hours keeps none of it
            self.preface = None
        return n

    def _read_socket(self, buf) -> int | None:
        """Read the socket, but not straight after a read that emptied it: "nothing yet" then,
        and the stream waits until the socket is readable (at once, if bytes came meanwhile).

        A WebSocket reads on as soon as it has handled a request, while its client waits for
        the answer: asking the kernel there would only say EAGAIN, a system call and a Python
        exception for each request of a grab storm."""
        if self.emptied:
            self.emptied = False
            return None
        n = super().read_from_fd(buf)
        self.emptied = n is not None and 0 < n < len(buf)
        return n
