"""The chat app's back end, as the soak's nodes see it: a real HTTP receiver of outbound events
(--events-url) on a port of its own, in a thread of its own, as the TCP proxies are.

It checks every POST as a back end must (the signature, with the shared secret, over the
timestamp and the body; the event id in the header and the body) and keeps every event it
accepted, each delivery of it separately, so that the checker sees duplicates. The faults make
it misbehave: `close()` stops listening (connection refused) and drops every connection;
`mode` "fail" answers 503 without keeping the event; "hang" keeps it but answers only when the
hang ends, long after the sender gave up, as a back end whose answers are lost does — so the
event comes again.
"""
import asyncio
import hmac
import json

import tornado.httpserver
import tornado.netutil
import tornado.web

from rtserver.outbound import signature
from tools.loop_thread import LoopThread
from tools.tcp_proxy import free_port

PATH = "/events"


class Receiver:
    def __init__(self, secret: str):
        self.secret = secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self.mode = "ok"
        self.deliveries: list[tuple[str, bytes]] = []  # (id, body) of every POST it kept
        self.answers: dict[str, int] = {}  # POSTs that passed the checks, by how they were met
        self.forged = 0  # POSTs refused: bad signature, or the header's id not the body's
        self._server: tornado.httpserver.HTTPServer | None = None
        self._released = None  # set to end every hang
        self._thread = LoopThread()

    def open(self) -> "Receiver":
        self._thread.call(self._open())
        return self

    def close(self) -> None:
        self._thread.call(self._close(), timeout=10)

    def misbehave(self, mode: str) -> None:
        """"ok", "fail" or "hang"; leaving "hang" answers every POST it held."""
        self._thread.call(self._misbehave(mode))

    def stop(self) -> None:
        """Close and end its thread; safe to call twice."""
        if not self._thread.ended:
            self.close()
            self._thread.end()

    async def _open(self) -> None:
        if self._server is None:
            # No access log: a stretch of 503s would fill the soak's own output.
            app = tornado.web.Application([(PATH, _EventsHandler, {"receiver": self})],
                                          log_function=lambda handler: None)
            self._server = tornado.httpserver.HTTPServer(app)
            self._server.add_sockets(tornado.netutil.bind_sockets(self.port, "127.0.0.1"))

    async def _close(self) -> None:
        await self._misbehave("ok")  # what hangs is answered into a connection about to go
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            await server.close_all_connections()

    async def _misbehave(self, mode: str) -> None:
        if self._released is not None:
            self._released.set()
            self._released = None
        if mode == "hang":
            self._released = asyncio.Event()
        self.mode = mode

    async def held(self) -> None:
        """Until the hang under way ends."""
        if self._released is not None:
            await self._released.wait()

    def signed_by_us(self, timestamp: str, body: bytes, signed: str) -> bool:
        # The server's own signing: tests/test_outbound_events.py holds it against a
        # receiver that computes the HMAC itself; here it is the faults that are tried.
        return hmac.compare_digest(signature(self.secret, timestamp, body), signed)

    def summary(self) -> dict:
        """What arrived: events (distinct ids), deliveries kept, duplicates (deliveries of an id
        already kept), events by type, and how the POSTs were met."""
        first: dict[str, bytes] = {}
        for event_id, body in self.deliveries:
            first.setdefault(event_id, body)
        by_type: dict[str, int] = {}
        for body in first.values():
            kind = json.loads(body)["type"]
            by_type[kind] = by_type.get(kind, 0) + 1
        return {"received": len(first), "deliveries": len(self.deliveries),
                "duplicates": len(self.deliveries) - len(first),
                "by_type": dict(sorted(by_type.items())), "answers": dict(sorted(
                    self.answers.items())), "forged": self.forged}


class _EventsHandler(tornado.web.RequestHandler):
    def initialize(self, receiver: Receiver):
        self.receiver = receiver

    async def post(self):
        r, headers, body = self.receiver, self.request.headers, self.request.body
        try:
            event_id = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            event_id = None
        if event_id is None or headers.get("X-Rtserver-Event-Id") != event_id or \
                not r.signed_by_us(headers.get("X-Rtserver-Timestamp", ""), body,
                                   headers.get("X-Rtserver-Signature", "")):
            r.forged += 1
            self.set_status(400)
            return
        mode = r.mode
        r.answers[mode] = r.answers.get(mode, 0) + 1
        if mode == "fail":
            self.set_status(503)
            return
        r.deliveries.append((event_id, body))
        if mode == "hang":
            await r.held()
        self.set_status(204)
