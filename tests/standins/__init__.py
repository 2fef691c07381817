"""Payment providers played on 127.0.0.1, as their own documentation describes them.

Each stand-in (one module per provider) checks what the provider checks — our signature with
our public key, our merchant id, the fields and amounts — keeps its orders and refunds, answers
signed with the provider's key, and sends notifications as the provider does. `StandIn` here is
what they share: the server, the record of requests, and misbehaviour on demand.
"""
import asyncio
import collections

import tornado.httpclient
import tornado.httpserver
import tornado.web
from tornado.testing import bind_unused_port

FAULTS = ("timeout", "5xx", "bad_signature", "drop")


class StandIn:
    """A provider's server. `misbehave(fault, times)` makes its next calls fail:
    `timeout` answers after `hang` seconds, `5xx` answers 500, `drop` closes the connection
    without an answer, `bad_signature` answers signed with a key that is not the provider's."""

    def __init__(self, handlers: list, hang: float = 3.0):
        self.app = tornado.web.Application([(path, handler, {"standin": self})
                                            for path, handler in handlers])
        self.hang = hang
        self.faults: collections.deque[str] = collections.deque()
        self.requests: list[tuple[str, dict]] = []  # (call, what we sent), in order
        self.server: tornado.httpserver.HTTPServer | None = None
        self.port = 0

    def start(self) -> str:
        """Listen on a free port of 127.0.0.1; return the base URL."""
        sock, self.port = bind_unused_port()
        self.server = tornado.httpserver.HTTPServer(self.app)
        self.server.add_sockets([sock])
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def misbehave(self, fault: str, times: int = 1) -> None:
        assert fault in FAULTS, fault
        self.faults.extend([fault] * times)

    def calls(self, call: str) -> list[dict]:
        """What rtserver sent in each call named `call`, in order."""
        return [sent for name, sent in self.requests if name == call]


class StandInHandler(tornado.web.RequestHandler):
    """A provider endpoint: records each call and applies the next fault before answering.

    Subclasses check the request, call `self.record(call, fields)` and answer with
    `self.signed_by_provider()` telling them which key to sign with."""

    def initialize(self, standin: StandIn) -> None:
        self.standin = standin
        self.fault = None

    async def prepare(self) -> None:
        self.fault = self.standin.faults.popleft() if self.standin.faults else None
        if self.fault == "timeout":
            await asyncio.sleep(self.standin.hang)
        elif self.fault == "5xx":
            self.set_status(500)
            self.finish("internal error")
        elif self.fault == "drop":  # the connection ends with no answer at all
            self.request.connection.stream.close()
            raise tornado.web.Finish()

    def record(self, call: str, sent: dict) -> None:
        self.standin.requests.append((call, sent))

    def signed_by_provider(self) -> bool:
        """False when this answer is to carry a forged signature."""
        return self.fault != "bad_signature"

    def check_xsrf_cookie(self) -> None:  # a provider's API has no cookies
        pass


async def send(url: str, headers: dict, body: bytes) -> tuple[int, bytes]:
    """Deliver a notification as a provider does: POST it and read the answer."""
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        url, method="POST", headers=headers, body=body, raise_error=False)
    return response.code, response.body or b""
