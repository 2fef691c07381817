"""Frames as they arrive on a real socket: split, packed together, fragmented, or refused."""
import asyncio
import base64
import contextlib
import os
import socket
import struct
import sys
import urllib.parse

import msgpack
import pytest
from tornado.iostream import IOStream

from handlers import ops
from handlers.frames import send_now
from handlers.socket import HARD_FRAME_LIMIT, SocketHandler
from rtserver import auth
from rtserver.header_gate import PrefacedStream
from rtserver.hub import user_room

BINARY, TEXT, CONTINUATION, CLOSE, PING, PONG = 0x2, 0x1, 0x0, 0x8, 0x9, 0xA


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0,
                 length: int | None = None, masked: bool = True) -> bytes:
    """A client frame, masked as clients must unless told; `length` may claim a size other
    than the payload's."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([bit | size])
    elif size <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def request(rid: int) -> bytes:
    return msgpack.packb({"op": "ping", "id": rid})


class RawSocket:
    """A WebSocket client that writes bytes exactly as a test chooses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base_url: str, token: str) -> "RawSocket":
        url = urllib.parse.urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET /ws?token={token} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: rp.v1.msgpack\r\n\r\n".encode())
        status = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in status.split(b"\r\n")[0], status
        raw = cls(reader, writer)
        assert (await raw.message())["ev"] == "hello"
        return raw

    async def send(self, data: bytes, byte_by_byte: bool = False) -> None:
        for chunk in ([data[i:i + 1] for i in range(len(data))] if byte_by_byte else [data]):
            self.writer.write(chunk)
            await self.writer.drain()
            if byte_by_byte:
                await asyncio.sleep(0.001)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (unmasked): (opcode, payload)."""
        head = await asyncio.wait_for(self.reader.readexactly(2), 10)
        size = head[1] & 0x7F
        if size == 126:
            size = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return head[0] & 0x0F, await self.reader.readexactly(size)

    async def message(self) -> dict:
        opcode, payload = await self.frame()
        assert opcode == BINARY, (opcode, payload)
        return msgpack.unpackb(payload)

    async def is_cut_off(self) -> bool:
        """True once the server has closed the connection (after a close frame or without)."""
        try:
            while True:
                opcode, _ = await self.frame()
                if opcode == CLOSE:
                    return True
        except (asyncio.IncompleteReadError, ConnectionError):
            return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def raw_socket(http_server, base_url, settings, admin):
    opened = []

    async def open_one(user_id: int | None = None) -> RawSocket:
        token = auth.issue_token(settings.token_secret, user_id or await admin.user())
        opened.append(await RawSocket.open(base_url, token))
        return opened[-1]

    yield open_one
    for raw in opened:
        raw.close()


@pytest.mark.gen_test
async def test_requests_packed_in_one_write_or_split_byte_by_byte_are_all_answered(raw_socket):
    raw = await raw_socket()
    await raw.send(b"".join(encode_frame(BINARY, request(rid)) for rid in (1, 2, 3)))
    fourth = encode_frame(BINARY, request(4))
    await raw.send(fourth[:3])  # a header cut short, then the rest
    await raw.send(fourth[3:], byte_by_byte=True)
    long_text = msgpack.packb({"op": "ping", "id": 5, "pad": "x" * 300})  # a 16-bit length
    await raw.send(encode_frame(BINARY, long_text), byte_by_byte=True)
    assert [(await raw.message())["re"] for _ in range(5)] == [1, 2, 3, 4, 5]


@pytest.mark.gen_test
async def test_a_fragmented_request_with_a_ping_in_between_is_answered_whole(raw_socket):
    raw = await raw_socket()
    whole = request(7)
    await raw.send(encode_frame(BINARY, whole[:3], fin=False)
                   + encode_frame(PING, b"are you there")
                   + encode_frame(CONTINUATION, whole[3:5], fin=False))
    assert await raw.frame() == (PONG, b"are you there")
    await raw.send(encode_frame(CONTINUATION, whole[5:]))
    assert (await raw.message())["re"] == 7


@pytest.mark.gen_test
async def test_frames_rfc_6455_forbids_cut_the_connection_and_others_are_served(raw_socket):
    forbidden = {
        "a reserved bit": encode_frame(BINARY, request(1), rsv=0x40),
        "a continuation of nothing": encode_frame(CONTINUATION, request(1)),
        "a fragmented control frame": encode_frame(PING, b"x", fin=False),
        "a control frame over 125 bytes": encode_frame(PING, b"x" * 126),
        "a new message inside a fragmented one":
            encode_frame(BINARY, b"\x81", fin=False) + encode_frame(BINARY, request(1)),
        "text that is not UTF-8": encode_frame(TEXT, b'{"op": "ping", "id": "\xff"}'),
    }
    for case, data in forbidden.items():
        raw = await raw_socket()
        await raw.send(data)
        assert await raw.is_cut_off(), case
    bystander = await raw_socket()
    await bystander.send(encode_frame(BINARY, request(9)))
    assert (await bystander.message())["re"] == 9


@pytest.mark.gen_test
async def test_a_frame_over_the_hard_limit_is_closed_with_1009_before_its_body(raw_socket):
    raw = await raw_socket()
    await raw.send(encode_frame(BINARY, b"", length=HARD_FRAME_LIMIT + 1))  # header only
    opcode, payload = await raw.frame()
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1009)


@pytest.mark.gen_test
async def test_an_unmasked_client_frame_is_closed_with_1002_and_not_answered(raw_socket):
    raw = await raw_socket()
    await raw.send(encode_frame(BINARY, request(1), masked=False))
    opcode, payload = await raw.frame()  # no answer to ping 1 comes before it
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1002)
    assert await raw.is_cut_off()


@pytest.mark.gen_test
async def test_a_close_from_the_client_is_answered_with_its_code(raw_socket):
    raw = await raw_socket()
    await raw.send(encode_frame(CLOSE, struct.pack("!H", 1000) + b"bye"))
    opcode, payload = await raw.frame()
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1000)


@pytest.mark.gen_test
async def test_what_the_socket_cannot_take_at_once_still_arrives_whole_and_in_order(
        raw_socket, admin, ctx):
    """Frames go straight to the socket when nothing is queued: the small ones written while
    a large one waits in the stream's buffer must queue behind it, not jump ahead."""
    user_id = await admin.user()
    raw = await raw_socket(user_id)
    large = "红" * 100_000  # 300 KB: more than a socket's buffers take at once
    async def read_all():
        return [await raw.message() for _ in range(20)]

    reading = asyncio.ensure_future(read_all())
    for n in range(20):  # while the client reads, so the socket keeps taking a little
        ctx.hub.publish([user_room(user_id)], {"ev": "message", "n": n,
                                               "text": large if n % 2 == 0 else "小"})
        await asyncio.sleep(0.001)  # each one written on its own turn of the loop
    heard = await reading
    assert [m["n"] for m in heard] == list(range(20))
    assert [m["text"] for m in heard] == [large, "小"] * 10


@pytest.mark.gen_test
async def test_nothing_goes_straight_to_the_socket_while_the_stream_holds_bytes():
    ours, peer = socket.socketpair()
    stream = IOStream(ours)
    try:
        peer.setblocking(False)
        written = stream.write(b"a" * 4_000_000)  # far more than the socket takes at once
        received = bytearray(peer.recv(1 << 20))  # room again, before the stream can know
        assert stream.writing()
        assert send_now(stream, b"b") == 0  # it would overtake the bytes queued before it
        while not written.done():
            await asyncio.sleep(0.001)
            with contextlib.suppress(BlockingIOError):
                received += peer.recv(1 << 20)
        assert send_now(stream, b"bcd") == 3  # nothing queued: the socket takes it at once
        while len(received) < 4_000_003:
            await asyncio.sleep(0.001)
            with contextlib.suppress(BlockingIOError):
                received += peer.recv(1 << 20)
        assert received == b"a" * 4_000_000 + b"bcd"
    finally:
        stream.close()
        peer.close()


@pytest.mark.gen_test
async def test_a_burst_of_thousands_of_frames_lets_other_clients_in_within_it(
        raw_socket, connect, admin, monkeypatch):
    """However many frames one read brings (here 10,000 pings in 60 KB), the connection gives
    way every few dozen: another client's request is answered in the middle of the burst."""
    handled = []
    monkeypatch.setattr(SocketHandler, "on_ping", lambda self, data: handled.append("ping"))
    _, real_ping = ops.OPS["ping"]

    async def marked_ping(ctx, user_id):
        handled.append("request")
        return await real_ping(ctx, user_id)

    monkeypatch.setitem(ops.OPS, "ping", ({}, marked_ping))
    flooder = await raw_socket()
    bystander = await connect(await admin.user())
    await flooder.send(encode_frame(PING, b"") * 10_000)
    while not handled:  # the burst is being read
        await asyncio.sleep(0)
    assert (await bystander.request("ping"))["ok"]
    assert handled.index("request") < 1_000


@pytest.mark.parametrize("settings", [{"rate_limit": 50}], indirect=True)
@pytest.mark.gen_test
async def test_a_ping_flood_costs_tokens_and_is_cut_off(raw_socket):
    raw = await raw_socket()
    await raw.send(encode_frame(PING, b"x") * 1_000)
    pongs = 0
    while (frame := await raw.frame())[0] == PONG:
        pongs += 1
    opcode, payload = frame
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1008)
    assert 100 <= pongs < 200  # the bucket's burst (twice the rate) and what refilled meanwhile


@pytest.mark.parametrize("settings", [{"rate_limit": 50}], indirect=True)
@pytest.mark.gen_test
async def test_nothing_a_client_sends_after_it_was_cut_off_is_done(raw_socket, admin, connect):
    flooder_id, friend_id = await admin.users(2)
    flooder = await raw_socket(flooder_id)
    await flooder.send(b"".join(encode_frame(BINARY, request(n)) for n in range(400)))
    assert await flooder.is_cut_off()
    await asyncio.sleep(0.2)  # its bucket fills again while it ignores the close
    said = msgpack.packb({"op": "chat.send", "id": 1, "to_type": "user", "to_id": friend_id,
                          "text": "说完了吗"})
    await flooder.send(encode_frame(BINARY, said) + encode_frame(CLOSE, struct.pack("!H", 1000)))
    assert await flooder.is_cut_off()
    friend = await connect(friend_id)
    history = await friend.request("chat.history", to_type="user", to_id=flooder_id)
    assert history["messages"] == []


@pytest.mark.gen_test
async def test_a_text_frame_is_measured_in_bytes_not_characters(raw_socket):
    raw = await raw_socket()
    text = '{"op": "ping", "id": 1, "pad": "%s"}' % ("红" * 30_000)  # 30,000 characters, 90 KB
    await raw.send(encode_frame(TEXT, text.encode()))
    reply = await raw.message()
    assert (reply["ev"], reply["code"], reply["message"]) == ("error", "bad_frame",
                                                              "frame too large")


@pytest.mark.gen_test
async def test_a_stream_from_the_header_gate_is_written_straight_to_its_socket():
    # Every connection of the server comes through the gate as a PrefacedStream: were its
    # frames left to Tornado's write, each would cost a future and a trip through its buffer.
    ours, peer = socket.socketpair()
    stream = PrefacedStream(bytearray(b"GET / HTTP/1.1\r\n\r\n"), ours)
    try:
        assert send_now(stream, b"bcd") == 3
        assert not stream.writing()
        assert peer.recv(10) == b"bcd"
    finally:
        stream.close()
        peer.close()


@pytest.mark.gen_test
async def test_a_stream_from_the_header_gate_is_no_bigger_than_tornados_own():
    # Every idle socket holds one: an attribute too many in its dict once cost 1.3 KB each.
    pairs = [socket.socketpair() for _ in range(2)]
    ours = PrefacedStream(bytearray(b"GET"), pairs[0][0])
    tornados = IOStream(pairs[1][0])
    try:
        assert sys.getsizeof(ours.__dict__) <= sys.getsizeof(tornados.__dict__)
    finally:
        for stream in (ours, tornados):
            stream.close()
        for _, peer in pairs:
            peer.close()


@pytest.mark.gen_test
async def test_a_stream_from_the_header_gate_reads_what_the_gate_read_then_its_socket():
    ours, peer = socket.socketpair()
    stream = PrefacedStream(bytearray(b"GET /ws"), ours)
    try:
        assert await stream.read_bytes(64, partial=True) == b"GET /ws"
        waiting = stream.read_bytes(64, partial=True)  # nothing sent yet: it waits
        with pytest.raises(AssertionError, match="Already reading"):  # as Tornado's own stream
            stream.read_bytes(64, partial=True)
        peer.send(b" HTTP/1.1")
        assert await waiting == b" HTTP/1.1"
        # That read emptied the socket, so the next does not ask it at once; bytes that came in
        # between are read all the same, once the loop sees the socket readable.
        peer.send(b"\r\n")
        assert await asyncio.wait_for(stream.read_bytes(64, partial=True), 5) == b"\r\n"
    finally:
        stream.close()
        peer.close()
