"""A lean docs/protocol.md client for load generation: msgpack frames, replies matched by id.

The load generators share the machine with the server, so every cycle they spend on a frame is
one the server does not get (real clients run on their own phones). This client is a plain
asyncio protocol speaking RFC 6455 itself: frames are cut from the bytes as they arrive, with
no task, queue or future per frame.
"""
import asyncio
import base64
import itertools
import os
import socket
import time
import urllib.parse

import msgpack

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Conn(asyncio.Protocol):
    """One socket. `request` waits for its reply; events go to `on_event` if set."""

    def __init__(self):
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = loop.create_future()
        self.reader = loop.create_future()  # done when the connection is gone
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future] = {}
        self.on_event = None

    @classmethod
    async def open(cls, base_ws_url: str, token: str, sock: socket.socket | None = None) -> "Conn":
        """Upgrade to a WebSocket, over `sock` if given (already connected) or a new socket."""
        url = urllib.parse.urlsplit(base_ws_url)
        loop = asyncio.get_running_loop()
        if sock is None:
            _, conn = await loop.create_connection(cls, url.hostname, url.port)
        else:
            _, conn = await loop.create_connection(cls, sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        conn.transport.write(
            f"GET /ws?token={token} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: rp.v1.msgpack\r\n\r\n".encode())
        await conn.upgraded
        return conn

    # asyncio's side

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.upgraded.cancelled():  # whoever opened it gave up waiting for the upgrade
            self.transport.close()
            return
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:self.buffer.find(b"\r\n")])
            del self.buffer[:end + 4]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self.upgraded.set_result(None)
        self._read_frames()

    def connection_lost(self, exc) -> None:
        for fut in [self.upgraded, self.reader, *self.waiting.values()]:
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))
        self.reader.exception()  # retrieved: a closed connection is not an error here

    # RFC 6455 frames

    def _read_frames(self) -> None:
        buf, pos = self.buffer, 0
        while len(buf) - pos >= 2:
            opcode, size, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if size == 126:
                size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif size == 127:
                size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if len(buf) - pos < head + size:
                break  # the rest of this frame has not arrived yet
            payload = bytes(buf[pos + head:pos + head + size])
            pos += head + size
            if opcode in (OP_TEXT, OP_BINARY):  # the server never fragments its messages
                self._message(msgpack.unpackb(payload))
            elif opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.transport.close()
        del buf[:pos]

    def _message(self, frame: dict) -> None:
        rid = frame.get("re")
        if rid is not None and rid in self.waiting:
            waiting = self.waiting.pop(rid)
            if not waiting.done():  # done: given up on by `request_within`
                waiting.set_result(frame)
        elif self.on_event is not None:
            self.on_event(frame, time.time())

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client frame is masked (RFC 6455 §5.3): XOR with a fresh random key."""
        size, mask = len(payload), os.urandom(4)
        if size < 126:
            head = bytes([0x80 | opcode, 0x80 | size])
        elif size <= 0xFFFF:
            head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
        keys = (mask * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(size, "big")
        if self.transport.is_closing():  # uvloop would raise RuntimeError: say what it means
            raise ConnectionError("closed")
        self.transport.write(head + mask + masked)

    # the client's side

    def post(self, op: str, **args) -> int:
        """Send a request without waiting: its reply goes to `on_event`. Returns its id."""
        rid = next(self.ids)
        self._send(OP_BINARY, msgpack.packb({"op": op, "id": rid, **args}))
        return rid

    async def request(self, op: str, **args) -> dict:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[self.post(op, **args)] = fut
        return await fut

    async def request_within(self, seconds: float, op: str, **args) -> dict:
        """`request`, or TimeoutError after `seconds`; a reply that comes later is dropped."""
        return await asyncio.wait_for(self.request(op, **args), seconds)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(OP_CLOSE, (1000).to_bytes(2, "big"))
            self.transport.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
