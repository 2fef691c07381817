"""docs/protocol.md's "Rates and bounds" inside one node: sockets per user and per node,
requests being worked on, what a closed socket leaves behind, and the size of every answer."""
import asyncio
import collections
import contextlib
import logging
import socket
import time

import prometheus_client
import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from rtserver import auth, codec, header_gate, sparing_log
from rtserver.chat import HISTORY_BYTES, newest_within
from rtserver.errors import NodeFull, TooManyConnections
from rtserver.header_gate import HeaderGate
from rtserver.listener import ACCEPTS_PER_TURN, PatientSocket
from rtserver.memory import LONG_LIVED, Reclaimer
from rtserver.quotas import HISTORY_BYTES_BURST, REQUESTS_PER_CONNECTION, REQUESTS_PER_USER, Quotas
from rtserver.ratelimit import TokenBucket
from tests.test_hostile import upgrade

LONG_TEXT = "红包" * 1000  # 2,000 characters, 6,000 bytes: a hundred make 600 KB


# The counts alone

def test_a_users_sockets_are_capped_and_a_closed_one_frees_its_seat():
    quotas = Quotas(max_connections=100, max_connections_per_user=2)
    quotas.take_socket(1)
    quotas.take_socket(1)
    with pytest.raises(TooManyConnections):
        quotas.take_socket(1)
    quotas.take_socket(2)  # another user is not held up by the first
    quotas.give_socket(1)
    quotas.take_socket(1)
    assert quotas.connections == 3


def test_a_full_node_refuses_everyone_until_a_socket_closes():
    quotas = Quotas(max_connections=2, max_connections_per_user=20)
    quotas.take_socket(1)
    quotas.take_socket(2)
    with pytest.raises(NodeFull):
        quotas.take_socket(3)
    quotas.give_socket(2)
    quotas.take_socket(3)


def test_requests_are_capped_per_connection_and_per_user():
    quotas = Quotas(max_connections=100, max_connections_per_user=20)
    assert not quotas.take_request(1, on_connection=REQUESTS_PER_CONNECTION)
    assert all(quotas.take_request(1, on_connection=0) for _ in range(REQUESTS_PER_USER))
    assert not quotas.take_request(1, on_connection=0)
    assert quotas.take_request(2, on_connection=0)
    quotas.give_request(1)
    assert quotas.take_request(1, on_connection=0)


def test_a_users_history_is_a_budget_of_bytes_that_short_pages_hardly_touch():
    quotas = Quotas(max_connections=100, max_connections_per_user=20)
    quotas.take_socket(1)
    for _ in range(1000):  # catching up a thousand rooms, each a page of a few lines
        assert quotas.may_read_history(1)
        quotas.history_read(1, 2000)
    longest, pages = HISTORY_BYTES, 0
    while quotas.may_read_history(1):
        quotas.history_read(1, longest)
        pages += 1
    assert pages <= HISTORY_BYTES_BURST // longest  # the longest pages: a burst, then a wait
    assert quotas.may_read_history(2)  # another user's budget is their own
    quotas.give_socket(1)
    assert quotas.may_read_history(1)  # a user who left and came back starts afresh


def test_history_keeps_the_newest_messages_that_fit():
    messages = [{"id": n, "text": "x" * 100} for n in range(10)]
    size = codec.size_at_most(messages[0])
    assert newest_within(messages, 3 * size) == (messages[7:], 3 * size)
    assert newest_within(messages, 3 * size - 1) == (messages[8:], 2 * size)
    assert newest_within(messages, 100 * size) == (messages, 10 * size)


# Sockets

@pytest.mark.gen_test(timeout=30)
async def test_the_21st_socket_of_one_user_is_429_before_the_upgrade(admin, connect, settings,
                                                                      base_url, ctx):
    uid, other = await admin.user(), await admin.user()
    sockets = [await connect(uid) for _ in range(settings.max_connections_per_user)]
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await upgrade(base_url, auth.issue_token(settings.token_secret, uid))
    assert refused.value.code == 429
    metrics = await tornado.httpclient.AsyncHTTPClient().fetch(base_url + "/metrics")
    assert b'rtserver_refused_total{limit="connections_per_user"}' in metrics.body
    assert (await (await connect(other)).request("ping"))["ok"]
    open_before = ctx.quotas.connections
    sockets[0].close()
    await _until(lambda: ctx.quotas.connections == open_before - 1)
    assert (await (await connect(uid)).request("ping"))["ok"]  # the seat it left


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"max_connections": 3}], indirect=True)
async def test_a_node_at_max_connections_answers_503(admin, connect, settings, base_url):
    users = await admin.users(4)
    for uid in users[:3]:
        await connect(uid)
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await upgrade(base_url, auth.issue_token(settings.token_secret, users[3]))
    assert refused.value.code == 503


# Requests being worked on

@contextlib.asynccontextmanager
async def database_busy(ctx):
    """Hold every pooled MariaDB connection, so that requests needing one wait in flight."""
    held = [await ctx.db.pool.acquire() for _ in range(ctx.db.pool.maxsize)]
    try:
        yield
    finally:
        for conn in held:
            ctx.db.pool.release(conn)


@pytest.mark.gen_test(timeout=30)
async def test_past_16_requests_on_a_socket_and_32_across_a_users_sockets_are_refused(
        admin, connect, ctx):
    uid, other = await admin.user(), await admin.user()
    phones = [await connect(uid) for _ in range(3)]
    bystander = await connect(other)
    async with database_busy(ctx):
        asked = [asyncio.ensure_future(phone.request("wallet.get"))
                 for phone in phones for _ in range(REQUESTS_PER_CONNECTION + 4)]
        await asyncio.sleep(0.3)  # every frame has arrived and waits, or was refused
        assert (await bystander.request("ping"))["ok"]  # another user is answered meanwhile
    replies = await asyncio.gather(*asked)
    assert {r["code"] for r in replies if not r["ok"]} == {"rate_limited"}
    assert sum(r["ok"] for r in replies) == REQUESTS_PER_USER
    per_phone = len(replies) // len(phones)
    for n in range(len(phones)):
        assert sum(r["ok"] for r in replies[n * per_phone:(n + 1) * per_phone]) \
            <= REQUESTS_PER_CONNECTION


@pytest.mark.gen_test(timeout=30)
async def test_a_socket_past_16_requests_gets_its_first_16_answered(admin, connect, ctx):
    phone = await connect(await admin.user())
    async with database_busy(ctx):
        asked = [asyncio.ensure_future(phone.request("wallet.get"))
                 for _ in range(REQUESTS_PER_CONNECTION + 4)]
        await asyncio.sleep(0.3)
    replies = await asyncio.gather(*asked)
    assert [r["ok"] for r in replies] == [True] * REQUESTS_PER_CONNECTION + [False] * 4


@pytest.mark.gen_test(timeout=30)
async def test_a_closed_socket_drops_its_waiting_reads_and_finishes_its_message(
        admin, connect, ctx):
    uid, friend = await admin.user(), await admin.user()
    gid = await admin.group([uid, friend])
    phone, listener = await connect(uid), await connect(friend)
    async with database_busy(ctx):
        for n in range(10):
            await phone.send({"op": "chat.history", "id": n, "to_type": "group", "to_id": gid})
        await phone.send({"op": "chat.send", "id": 99, "to_type": "group", "to_id": gid,
                          "text": "晚安"})
        await asyncio.sleep(0.2)
        assert len(ctx.inflight) == 11
        phone.close()
        await _until(lambda: ctx.hub.count() == 1)
        await asyncio.sleep(0.05)  # the dropped reads end on the next turns of the loop
        assert len(ctx.inflight) == 1  # only the message is still on its way
    said = await listener.event("message")
    assert said["message"]["text"] == "晚安"
    assert not ctx.inflight


# Answers

@pytest.mark.gen_test(timeout=60)
async def test_history_of_long_messages_pages_under_256_kib_and_misses_none(admin, connect):
    uid = await admin.user()
    gid = await admin.group([uid])
    writer = await connect(uid)
    for n in range(100):
        reply = await writer.request("chat.send", to_type="group", to_id=gid,
                                     text=f"{n:03d}{LONG_TEXT}"[:2000])
        assert reply["ok"], reply
    for subprotocol in codec.SUBPROTOCOLS:
        reader = await connect(uid, subprotocol)
        seen, before = [], None
        while True:
            page = await reader.request("chat.history", to_type="group", to_id=gid, limit=100,
                                        **({"before": before} if before else {}))
            assert len(_encoded(subprotocol, page)) <= codec.MAX_REPLY
            if not page["messages"]:
                break
            assert len(page["messages"]) < 100
            seen = page["messages"] + seen
            before = page["messages"][0]["id"]
        assert [m["text"][:3] for m in seen] == [f"{n:03d}" for n in range(100)], subprotocol
    assert HISTORY_BYTES < codec.MAX_REPLY


async def _until(condition, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _encoded(subprotocol: str, frame: dict) -> bytes:
    """A frame as the server sent it (both codecs encode a map the same way every time)."""
    data = codec.encode(subprotocol, frame)
    return data if isinstance(data, bytes) else data.encode()


def test_a_full_collection_waits_until_most_of_a_burst_of_connections_is_gone():
    reclaimer = Reclaimer()
    long_ago = [reclaimer.connection_opened() - LONG_LIVED for _ in range(5000)]
    for opened_at in long_ago[:1500]:
        reclaimer.connection_ended(opened_at)
    reclaimer.give_back()
    assert reclaimer.ended == 1500  # 3,500 still open: a collection would walk them for little
    for opened_at in long_ago[1500:4900]:
        reclaimer.connection_ended(opened_at)
    reclaimer.give_back()
    assert reclaimer.ended == 0 and reclaimer.open == 100


def test_connections_gone_within_moments_never_set_off_a_full_collection():
    reclaimer = Reclaimer()
    for _ in range(5000):  # a flood, each connection refused at once
        reclaimer.connection_ended(reclaimer.connection_opened())
    reclaimer.connection_ended(None)  # a client gone before its socket opened was never counted
    assert reclaimer.open == 0 and reclaimer.ended == 0


@pytest.mark.gen_test
async def test_a_burst_of_connections_is_taken_a_few_a_turn_and_none_is_lost():
    # Tornado alone would take up to 128 in one turn of the loop, every open socket waiting.
    loop = tornado.ioloop.IOLoop.current()
    listener = PatientSocket.taking(tornado.netutil.bind_sockets(0, "127.0.0.1")[0])
    taken_in = collections.Counter()  # turn of the loop → connections taken in it
    turn, ticking = [0], [True]

    def tick():  # runs once every turn of the loop
        turn[0] += 1
        if ticking[0]:
            loop.add_callback(tick)

    def taken(conn, _address):
        taken_in[turn[0]] += 1
        conn.close()

    tick()
    stop = tornado.netutil.add_accept_handler(listener, taken)
    port = listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    try:
        for _ in range(200):
            if sum(taken_in.values()) == 100:
                break
            await asyncio.sleep(0.01)
        assert sum(taken_in.values()) == 100
        assert max(taken_in.values()) <= ACCEPTS_PER_TURN
    finally:
        ticking[0] = False
        stop()
        listener.close()
        for client in clients:
            client.close()


class Recorded(tornado.httpserver.HTTPServer):
    """An HTTP server that notes when each connection reached it from the gate."""

    def initialize(self, *args, **kwargs):
        super().initialize(*args, **kwargs)
        self.taken_at: list[float] = []

    def handle_stream(self, stream, address):
        self.taken_at.append(time.monotonic())
        return super().handle_stream(stream, address)


class Echo(tornado.web.RequestHandler):
    def post(self):
        self.write(self.request.body)


@contextlib.contextmanager
def gated(header_timeout: float, pace: TokenBucket | None):
    """A server behind a header gate, on a port of its own; yields (gate, server, port)."""
    server = Recorded(tornado.web.Application([("/echo", Echo)]))
    gate = HeaderGate(server, header_timeout, pace)
    listener = PatientSocket.taking(tornado.netutil.bind_sockets(0, "127.0.0.1")[0])
    port = listener.getsockname()[1]
    gate.watch(listener)
    try:
        yield gate, server, port
    finally:
        gate.stop()
        server.stop()


async def post_in_pieces(port: int, pieces: list[bytes], source: str = "127.0.0.1") -> bytes:
    """Send a request in `pieces`, a moment apart, from the `source` address; the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


ECHO = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 11\r\n\r\n"
        b"hello there")


@pytest.mark.gen_test
async def test_what_the_gate_read_reaches_the_request_whole():
    with gated(5, None) as (_gate, server, port):
        at_once = await post_in_pieces(port, [ECHO])  # the body came with the headers
        in_pieces = await post_in_pieces(port, [ECHO[i:i + 7] for i in range(0, len(ECHO), 7)])
        bare_newlines = await post_in_pieces(port, [ECHO.replace(b"\r\n", b"\n")])
    for answer in (at_once, in_pieces, bare_newlines):
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nhello there")
    assert len(server.taken_at) == 3


@pytest.mark.gen_test
async def test_headers_late_are_closed_at_the_gate_and_tornado_never_sees_them():
    with gated(0.5, None) as (gate, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(ECHO[:20])
        assert await asyncio.wait_for(reader.read(), 5) == b"", "closed, nothing answered"
        assert not gate.waiting and not server.taken_at
        writer.close()


@pytest.mark.gen_test
async def test_past_the_most_at_the_gate_the_one_waiting_longest_makes_way(monkeypatch):
    monkeypatch.setattr(header_gate, "MAX_AT_GATE", 20)
    with gated(60, None) as (gate, server, port):
        slow = []
        for _ in range(25):
            slow.append(await asyncio.open_connection("127.0.0.1", port))
            slow[-1][1].write(b"GET / HTTP/1.1\r\n")
            await _until(lambda: len(gate.waiting) == min(len(slow), 20))
        closed = [await asyncio.wait_for(reader.read(), 5) for reader, _ in slow[:5]]
        assert closed == [b""] * 5 and len(gate.waiting) == 20
        assert prometheus_client.REGISTRY.get_sample_value("rtserver_connections_at_gate") == 20
        assert (await post_in_pieces(port, [ECHO])).endswith(b"hello there"), "a newcomer is served"
        for _, writer in slow:
            writer.close()


@pytest.mark.gen_test
async def test_complete_requests_go_on_no_faster_than_the_rate_in_order_and_none_is_lost():
    rate, burst, clients = 100, 10, 60
    with gated(10, TokenBucket(rate, burst, time.monotonic())) as (_gate, server, port):
        started = time.monotonic()
        answers = await asyncio.gather(*(post_in_pieces(port, [ECHO]) for _ in range(clients)))
    assert all(a.endswith(b"hello there") for a in answers)
    for n, at in enumerate(server.taken_at, start=1):  # never ahead of the bucket
        assert n <= burst + rate * (at - started) + 1
    assert server.taken_at[-1] - started >= (clients - burst - 1) / rate


@pytest.mark.gen_test
async def test_requests_waiting_their_turn_are_let_through_by_one_timer():
    rate, clients = 20, 40
    with gated(10, TokenBucket(rate, 1, time.monotonic())) as (gate, server, port):
        turns = []
        admit = gate._admit
        gate._admit = lambda: (turns.append(time.monotonic()), admit())
        started = time.monotonic()
        waiting = [asyncio.ensure_future(post_in_pieces(port, [ECHO])) for _ in range(clients)]
        await _until(lambda: len(server.taken_at) >= rate // 2)  # half a second of them
        seconds = time.monotonic() - started
        # One timer comes back when the next is due; one timer per request waiting would
        # come back some `clients` times as often.
        assert len(turns) <= clients + 2 * rate * seconds + 5, len(turns)
        for request in waiting:
            request.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


@pytest.mark.gen_test
async def test_a_peer_flooding_the_gate_waits_behind_its_own_and_a_newcomer_goes_next():
    rate = 10
    with gated(10, TokenBucket(rate, 1, time.monotonic())) as (gate, server, port):
        flood = [asyncio.ensure_future(post_in_pieces(port, [ECHO], source="127.0.0.2"))
                 for _ in range(20)]
        await _until(lambda: len(gate.complete) >= 15)
        taken_before = len(server.taken_at)
        answer = await post_in_pieces(port, [ECHO])  # from 127.0.0.1
        assert answer.endswith(b"hello there")
        assert len(server.taken_at) - taken_before <= 2, "served at the flood's next turn"
        assert len(gate.complete) >= 10, "the flood still waiting its turns"
        for request in flood:
            request.cancel()
        await asyncio.gather(*flood, return_exceptions=True)


@pytest.mark.gen_test
async def test_a_complete_request_not_served_in_time_is_closed():
    with gated(0.5, TokenBucket(1, 1, time.monotonic())) as (gate, server, port):
        first, second = await asyncio.gather(post_in_pieces(port, [ECHO]),
                                             post_in_pieces(port, [ECHO]))
    assert sorted([first, second]) == sorted([b"", first or second]), "one served, one closed"
    assert (first or second).endswith(b"hello there") and len(server.taken_at) == 1


@pytest.mark.gen_test
async def test_headers_longer_than_tornado_reads_are_answered_431_at_the_gate():
    with gated(5, None) as (_gate, server, port):
        long_header = b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"
        answer = await post_in_pieces(port, [long_header])
    assert answer.startswith(b"HTTP/1.1 431 ") and not server.taken_at


@pytest.mark.gen_test
async def test_a_gate_full_of_complete_requests_makes_way_for_a_newcomer(monkeypatch):
    monkeypatch.setattr(header_gate, "MAX_AT_GATE", 5)
    with gated(10, TokenBucket(1, 1, time.monotonic())) as (gate, server, port):
        queued = [asyncio.ensure_future(post_in_pieces(port, [ECHO])) for _ in range(6)]
        await _until(lambda: len(gate.complete) == 4)  # one served, four waiting their turn
        newcomer = await asyncio.open_connection("127.0.0.1", port)
        await _until(lambda: len(gate.waiting) == 1)
        assert len(gate.complete) + len(gate.waiting) == 5, "the oldest complete one made way"
        newcomer[1].close()
        for request in queued:
            request.cancel()
        await asyncio.gather(*queued, return_exceptions=True)


def test_a_line_a_flood_repeats_is_written_once_a_second_with_the_count_held_back(
        monkeypatch, caplog):
    now = [1000.0]
    monkeypatch.setattr(sparing_log.time, "monotonic", lambda: now[0])
    line = sparing_log.OncePerSecond(logging.getLogger("rtserver.test"), logging.WARNING)
    with caplog.at_level(logging.WARNING, "rtserver.test"):
        for _ in range(5 * 1024):  # five seconds of 1,024 refusals a second (exact in binary)
            line.say("429 GET %s", "/ws")
            now[0] += 1 / 1024
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "429 GET /ws"
    assert said[1:] == ["429 GET /ws (1023 more times since the last line)"] * 4
