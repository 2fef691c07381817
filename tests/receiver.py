"""The chat app's back end, as far as outbound events go (--events-url), for the tests.

It checks every POST as a back end must before trusting it (the signature, with the shared
secret, over the timestamp and the body; the event id in the header and the body), keeps what
it accepted, and misbehaves on demand: `fail` answers 503, `hang` never answers, `late` answers
after `delay` seconds. A POST that fails the checks is refused with 400 and kept in `forged`.
"""
import asyncio
import hashlib
import hmac
import json

import tornado.httpserver
import tornado.netutil
import tornado.web


class Receiver:
    def __init__(self, secret: str):
        self.secret = secret
        self.mode, self.delay = "ok", 0.0
        self.accepted: list[dict] = []  # the events answered 2xx, in arrival order
        self.tries: list[dict] = []  # the event of every POST that passed the checks
        self.forged: list[bytes] = []
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()  # ends every `hang`
        self.server = self.url = None

    def start(self) -> "Receiver":
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        app = tornado.web.Application([(r"/events", _EventsHandler, {"receiver": self})])
        self.server = tornado.httpserver.HTTPServer(app)
        self.server.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/events"
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.stop()

    def misbehave(self, mode: str, delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay
        if mode != "hang":
            self.released.set()
            self.released = asyncio.Event()

    def of(self, kind: str, **data) -> list[dict]:
        """Accepted events of a type whose data include `data`."""
        return [e for e in self.accepted
                if e["type"] == kind and all(e["data"].get(k) == v for k, v in data.items())]

    def tries_of(self, rp_id: int) -> list[str]:
        """The ids POSTed of one packet's events, a try each (the suite's database is shared:
        a node may also send what an earlier test left pending)."""
        return [e["id"] for e in self.tries if e["data"]["rp_id"] == rp_id]

    async def until(self, condition, timeout: float = 30) -> None:
        """Wait until `condition()` holds of what arrived."""
        async def waiting():
            while not condition():
                self.arrived.clear()
                await self.arrived.wait()
        await asyncio.wait_for(waiting(), timeout)

    def signed_by_us(self, timestamp: str, body: bytes, signature: str) -> bool:
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


class _EventsHandler(tornado.web.RequestHandler):
    def initialize(self, receiver: Receiver):
        self.receiver = receiver

    async def post(self):
        r, headers, body = self.receiver, self.request.headers, self.request.body
        event = json.loads(body)
        if not r.signed_by_us(headers.get("X-Rtserver-Timestamp", ""), body,
                              headers.get("X-Rtserver-Signature", "")) \
                or headers.get("X-Rtserver-Event-Id") != event["id"]:
            r.forged.append(body)
            self.set_status(400)
            return
        r.tries.append(event)
        r.arrived.set()
        if r.mode == "fail":
            self.set_status(503)
        elif r.mode == "hang":
            await r.released.wait()
            self.set_status(503)
        else:
            if r.mode == "late":
                await asyncio.sleep(r.delay)
            r.accepted.append(event)
            self.set_status(204)
        r.arrived.set()
