"""The hub: one encoding per broadcast, and slow consumers cut off instead of eating memory."""
import asyncio
import base64
import os
import socket

import pytest

from rtserver import auth
from rtserver.hub import group_room, user_room
from tests.client import text_message


async def never_reading_socket(port: int, token: str) -> socket.socket:
    """Open a WebSocket by hand with a tiny receive buffer, then never read from it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode())
    answer = await loop.sock_recv(sock, 1024)
    assert answer.startswith(b"HTTP/1.1 101")
    return sock


@pytest.mark.gen_test
async def test_a_consumer_that_never_reads_is_cut_off_and_others_get_everything(
        admin, connect, ctx, http_port, settings):
    reader_id, sleeper_id = await admin.users(2)
    gid = await admin.group([reader_id, sleeper_id])
    reader = await connect(reader_id)
    sleeper = await never_reading_socket(http_port, auth.issue_token(settings.token_secret,
                                                                     sleeper_id))
    try:
        await asyncio.sleep(0.1)
        assert ctx.hub.count() == 2
        payload = "红" * 50_000  # about 150 KB a frame
        for n in range(1, 61):
            ctx.hub.publish([group_room(gid)], text_message(n, gid, payload))
            await asyncio.sleep(0)
        for n in range(1, 61):
            assert (await reader.event("message", timeout=20))["message"]["id"] == n
        for _ in range(100):
            if ctx.hub.count() == 1:
                break
            await asyncio.sleep(0.05)
        assert ctx.hub.count() == 1, "the sleeper was not cut off"
        assert (await reader.request("ping"))["ok"] is True
    finally:
        sleeper.close()


@pytest.mark.gen_test
async def test_broadcast_encodes_once_per_subprotocol(admin, connect, ctx, monkeypatch):
    users = await admin.users(4)
    gid = await admin.group(users)
    clients = [await connect(uid, "rp.v1.json" if i % 2 else "rp.v1.msgpack")
               for i, uid in enumerate(users)]
    from rtserver import codec
    encoded = []
    real_encode = codec.encode
    monkeypatch.setattr(codec, "encode", lambda p, f: encoded.append(p) or real_encode(p, f))
    assert ctx.hub.publish([group_room(gid)], text_message(1, gid, "一次")) == 4
    assert sorted(encoded) == ["rp.v1.json", "rp.v1.msgpack"]
    for client in clients:
        assert (await client.event("message"))["message"]["text"] == "一次"


@pytest.mark.gen_test
async def test_every_socket_sends_small_frames_at_once(admin, connect, ctx):
    """Nagle's algorithm off: a reply written right after a grab's events must not wait for
    the client's delayed ACK of them (some 40 ms)."""
    user = (await admin.users(1))[0]
    await connect(user)
    await connect(user, "rp.v1.json")
    sockets = [conn.ws_connection.stream.socket for conn in ctx.hub._joined]
    assert len(sockets) == 2
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)


@pytest.mark.gen_test
async def test_a_socket_past_its_unsent_limit_is_cut_off_with_nothing_more_to_send(
        admin, connect, ctx, http_port, settings):
    sleeper_id = await admin.user()
    sleeper = await never_reading_socket(http_port, auth.issue_token(settings.token_secret,
                                                                     sleeper_id))
    try:
        await asyncio.sleep(0.1)
        for _ in range(60):  # 9 MB in one write, then silence: no later message finds it over
            ctx.hub.publish([user_room(sleeper_id)], {"ev": "message", "text": "红" * 50_000})
        for _ in range(100):
            if ctx.hub.count() == 0:
                break
            await asyncio.sleep(0.05)
        assert ctx.hub.count() == 0, "the sleeper was not cut off"
    finally:
        sleeper.close()
