"""A WebSocket client speaking docs/protocol.md, and an admin client, for the tests."""
import asyncio
import itertools
import json

import msgpack
import tornado.httpclient
import tornado.websocket

from rtserver import codec
from tests import asyncapi_check


class Client:
    """One connection: requests get their replies by `re`; events wait in arrival order.

    Every frame the server sends is checked against docs/asyncapi.yaml as it arrives: a reply
    that matches none of its op's messages fails the request that waits for it, and any other
    mismatch the next wait for an event (and the test's teardown, tests/conftest.py)."""

    def __init__(self, conn, subprotocol: str):
        self.conn, self.subprotocol = conn, subprotocol
        self.ids = itertools.count(1)
        self.replies: dict[int, asyncio.Future] = {}
        self.events: list[dict] = []
        self.sent_ops: dict[int | str, set] = {}  # request id → the ops sent under it
        self.mismatches: list[asyncapi_check.Mismatch] = []
        self.closed = asyncio.get_running_loop().create_future()
        self.arrived = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, base_url: str, token: str, subprotocol: str = codec.MSGPACK):
        url = base_url.replace("http", "ws", 1) + "/ws?token=" + token
        conn = await tornado.websocket.websocket_connect(url, subprotocols=[subprotocol])
        client = cls(conn, subprotocol)
        client.hello = await client.event("hello")
        return client

    async def _read(self):
        while True:
            data = await self.conn.read_message()
            if data is None:
                self.closed.set_result(self.conn.close_code)
                self.arrived.set()
                return
            frame = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data)
            try:
                asyncapi_check.check(frame, self.sent_ops.get(_key(frame.get("re"))))
            except asyncapi_check.Mismatch as exc:
                self.mismatches.append(exc)
                if frame.get("re") in self.replies:
                    self.replies.pop(frame["re"]).set_exception(exc)
                    continue
                self.arrived.set()
            if "re" in frame and frame["re"] in self.replies:
                self.replies.pop(frame["re"]).set_result(frame)
            else:
                self.events.append(frame)
                self.arrived.set()

    async def request(self, op: str, **args) -> dict:
        return await self.request_frame({"op": op, "id": next(self.ids) + 1_000_000, **args})

    async def request_frame(self, frame: dict) -> dict:
        """Send a request frame exactly as given and wait for the reply to its id."""
        reply = self.replies[frame["id"]] = asyncio.get_running_loop().create_future()
        await self.send(frame)
        return await asyncio.wait_for(reply, 20)

    async def send(self, frame) -> None:
        if isinstance(frame, dict) and _key(frame.get("id")) is not None:
            op = frame.get("op")  # anything but a text is an op the document does not know
            self.sent_ops.setdefault(_key(frame["id"]), set()).add(
                op if isinstance(op, str) else repr(op))
        await self.send_raw(codec.encode(self.subprotocol, frame))

    async def send_raw(self, data) -> None:
        await self.conn.write_message(data, binary=isinstance(data, bytes))

    async def event(self, ev: str, timeout: float = 10, where=None, **match) -> dict:
        """Wait for the first unread event named `ev` whose fields include `match` (and for
        which `where(event)` holds, when given); consume it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.mismatches:
                raise self.mismatches[0]
            for i, frame in enumerate(self.events):
                if frame.get("ev") == ev and all(frame.get(k) == v for k, v in match.items()) \
                        and (where is None or where(frame)):
                    return self.events.pop(i)
            if self.closed.done():
                raise AssertionError(f"closed ({self.closed.result()}) waiting for {ev}")
            self.arrived.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {ev} event {match} among {self.events}")
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    def named(self, ev: str) -> list[dict]:
        return [f for f in self.events if f.get("ev") == ev]

    def close(self):
        self.conn.close()
        self.reader.cancel()


def text_message(n: int, group_id: int, text: str) -> dict:
    """A `message` event as the server sends one (message id `n`), for tests that publish
    through the hub themselves: what a client receives is held to docs/asyncapi.yaml."""
    return {"ev": "message", "message": {"id": n, "to_type": "group", "to_id": group_id,
                                         "from": {"id": 1, "name": ""}, "kind": "text",
                                         "text": text, "time": 0}}


def _key(rid):
    """A request id as the server can echo it (an integer or a text), else None."""
    return rid if type(rid) in (int, str) else None


class Admin:
    """The chat app's back end: provisions users and groups, deposits money."""

    def __init__(self, base_url: str, admin_token: str, ids):
        self.base_url, self.token, self.ids = base_url, admin_token, ids
        self.http = tornado.httpclient.AsyncHTTPClient()

    async def call(self, method: str, path: str, body=None, token=None, raw: bytes | None = None):
        """Return (status, decoded JSON body)."""
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}",
                   "Content-Type": "application/json"}
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if method in ("POST", "PUT") and data is None:
            data = b""
        response = await self.http.fetch(self.base_url + path, method=method, headers=headers,
                                         body=data, raise_error=False,
                                         allow_nonstandard_methods=True)
        text = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(text) if text else None
        except ValueError:
            return response.code, text

    def unused_id(self) -> int:
        """An id no user or group has, for the answers to unknown ones. Never a literal: the
        ids only grow, while Hypothesis draws integers partly from the literals in the
        project's source, so the schemathesis run may make a user or group of one."""
        return next(self.ids)

    async def user(self, name: str | None = None) -> int:
        uid = next(self.ids)
        status, _ = await self.call("PUT", f"/admin/users/{uid}", {"name": name or f"user{uid}"})
        assert status == 200
        return uid

    async def users(self, n: int) -> list[int]:
        return list(await asyncio.gather(*(self.user() for _ in range(n))))

    async def group(self, members: list[int], name: str | None = None) -> int:
        gid = next(self.ids)
        status, body = await self.call("PUT", f"/admin/groups/{gid}",
                                       {"name": name or f"group{gid}", "members": members})
        assert status == 200, body
        return gid

    async def deposit(self, uid: int, amount: str, ref: str | None = None) -> str:
        status, body = await self.call("POST", f"/admin/wallets/{uid}/deposit",
                                       {"amount": amount, "ref": ref or f"dep-{uid}-{next(self.ids)}"})
        assert status == 200, body
        return body["balance"]
