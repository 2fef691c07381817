"""Attacks on a real `rtserver serve` that once took a node from everyone (docs/protocol.md, "Rates
and bounds"), each made here in small and watched: a regression fails the test, never the
machine. `make siege` makes them at full strength and measures."""
import asyncio
import contextlib
import time

import pytest
import tornado.httpclient

from rtserver import auth
from rtserver.header_gate import MAX_AT_GATE
from rtserver.listener import ACCEPTS_PER_TURN
from tests.client import Admin, Client
from tests.conftest import IDS
from tests.processes import Server

RSS_WATCHDOG = 1 << 30  # bytes of growth at which the attacked server is killed and the test fails
LONG_TEXT = "红包" * 1000


def rss(pid: int) -> int:
    """A process's resident memory in bytes."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def fd_limit(pid: int) -> int:
    """The file descriptors a process may have open (its soft limit)."""
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return int(line.split()[3])


class Watchdog:
    """Sample a server's memory while an attack runs; kill it past RSS_WATCHDOG."""

    def __init__(self, server: Server):
        self.server, self.idle = server, rss(server.proc.pid)
        self.peak = self.idle
        self.task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while self.server.running:
            self.peak = max(self.peak, rss(self.server.proc.pid))
            if self.peak - self.idle > RSS_WATCHDOG:
                self.server.kill()
                return
            await asyncio.sleep(0.05)

    def stop(self) -> int:
        """End the watch; return the peak growth in bytes, failing if the server was killed."""
        self.task.cancel()
        assert self.server.running, f"killed at {self.peak - self.idle} bytes of growth"
        return self.peak - self.idle


async def slow_request(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that starts a request and never finishes its headers (slowloris)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
        return await asyncio.wait_for(reader.read(), timeout) == b""
    return False


async def healthz(base_url: str) -> int:
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + "/healthz", raise_error=False, request_timeout=5)
    return response.code


@pytest.mark.gen_test(timeout=60)
async def test_headers_that_never_end_are_cut_off_while_others_are_served(settings, children):
    server = children.server(settings, "--header-timeout=1")
    await server.until_healthy()
    slow = [await slow_request(server.port) for _ in range(50)]
    kept_alive = tornado.httpclient.AsyncHTTPClient()  # keeps its connection between fetches
    assert (await kept_alive.fetch(server.base_url + "/healthz")).code == 200
    started = time.monotonic()
    closed = await asyncio.gather(*(closed_by_server(reader, 5) for reader, _ in slow))
    assert all(closed), f"{closed.count(False)} slow requests still open"
    assert time.monotonic() - started < 4  # the header time-out, not the 60 s idle limit
    await asyncio.sleep(0.5)  # idle past the header time-out: a kept-alive connection is no slowloris
    assert (await kept_alive.fetch(server.base_url + "/healthz")).code == 200
    for _, writer in slow:
        writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_flood_of_refused_upgrades_gets_in_no_faster_than_the_accept_rate(
        settings, children):
    rate, seconds = 50, 3
    server = children.server(settings, f"--accept-rate={rate}", "--max-connections-per-user=1")
    await server.until_healthy()
    admin = Admin(server.base_url, settings.admin_token, IDS)
    attacker, bystander, newcomer = await admin.users(3)
    token = auth.issue_token(settings.token_secret, attacker)
    friend = await Client.open(server.base_url, auth.issue_token(settings.token_secret, bystander))
    held = await Client.open(server.base_url, token)  # the attacker's one socket: others get 429
    await asyncio.sleep(1)  # the bucket full again: the flood starts from its burst
    started = time.monotonic()
    ends = started + seconds
    refused = []

    async def dial_without_end():
        while time.monotonic() < ends:
            with pytest.raises(tornado.httpclient.HTTPClientError) as refusal:
                await Client.open(server.base_url, token)
            assert refusal.value.code == 429
            refused.append(time.monotonic())

    flood = [asyncio.ensure_future(dial_without_end()) for _ in range(64)]
    pings = []
    while time.monotonic() < ends:
        pings.append(await friend.request("ping"))
        await asyncio.sleep(0.05)
    await asyncio.gather(*flood)
    in_time = [at for at in refused if at <= ends]
    assert len(in_time) > rate * seconds / 2, "the flood never reached the node's pace"
    assert len(in_time) <= rate + rate * seconds + ACCEPTS_PER_TURN  # the burst, then the rate
    assert all(p["ok"] for p in pings) and len(pings) > seconds * 10
    late = await Client.open(server.base_url,  # still let in
                             auth.issue_token(settings.token_secret, newcomer))
    for client in (friend, held, late):
        client.close()


@pytest.mark.gen_test(timeout=60)
async def test_past_the_most_connections_awaiting_headers_the_oldest_make_way(
        settings, children):
    # No time-out within this test, and connections taken as fast as they come.
    server = children.server(settings, "--header-timeout=60", "--accept-rate=0")
    await server.until_healthy()
    slow = [await slow_request(server.port) for _ in range(MAX_AT_GATE + 100)]
    closed = await asyncio.gather(*(closed_by_server(reader, 3) for reader, _ in slow[:100]))
    assert all(closed), f"{closed.count(False)} of the oldest still open"
    assert not any(await asyncio.gather(*(closed_by_server(reader, 0.1)
                                          for reader, _ in slow[-100:]))), "the newest stay"
    assert await healthz(server.base_url) == 200  # a request that says what it wants is served
    for _, writer in slow:
        writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_newcomer_gets_in_at_once_while_a_crowd_of_slow_requests_fills_the_gate(
        settings, children):
    """Taken at the accept rate, a crowd of slow requests dialling at once filled the kernel's
    queue of connections: a newcomer's SYN was dropped and sent again 1 s, 3 s later. At the
    gate each is taken as it comes; the newcomer is answered before TCP would have retried."""
    server = children.server(settings, "--header-timeout=60")  # the default accept rate
    await server.until_healthy()
    crowd = MAX_AT_GATE + 500
    slow = await asyncio.gather(*(slow_request(server.port) for _ in range(crowd)))
    await asyncio.sleep(0.2)  # what the kernel queued meanwhile is taken by now
    first_retry = 1.0  # seconds: Linux's initial SYN retransmission time-out
    # Paced at the accept, the newcomer's SYN was dropped or its request waited in the kernel's
    # queue behind the crowd (seconds); at the gate it is served in milliseconds.
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        server.base_url + "/healthz", request_timeout=first_retry * 0.9, raise_error=False)
    assert response.code == 200, response.error
    for _, writer in slow:
        writer.close()
    server.check_alive()


@pytest.mark.gen_test(timeout=90)
async def test_out_of_file_descriptors_is_logged_once_a_second_and_the_node_recovers(
        settings, children):
    # The server asks for 10 sockets and its headroom of descriptors, more than prlimit leaves
    # it unless it may raise its own hard limit: whichever it got, more connections come.
    server = Server(settings, children.directory / "serve.log", "--header-timeout=3",
                    "--max-connections=10", "--accept-rate=0")
    server.argv = ["prlimit", "--nofile=256:256", *server.argv]
    children.start(server)
    await server.until_healthy()
    started = time.monotonic()
    held = await asyncio.gather(*(slow_request(server.port)
                                  for _ in range(fd_limit(server.proc.pid) + 150)),
                                return_exceptions=True)
    await asyncio.sleep(2)
    lines = [line for line in server.log_path.read_text().splitlines()
             if "cannot accept connections" in line]
    assert lines, "the node never ran out of descriptors: the test made no attack"
    assert len(lines) <= time.monotonic() - started + 1
    assert "Traceback" not in server.log_path.read_text()
    for connection in held:
        if not isinstance(connection, BaseException):
            connection[1].close()
    assert await healthz(server.base_url) == 200  # served again once they are gone
    server.check_alive()


@pytest.mark.gen_test(timeout=120)
async def test_one_user_flooding_history_from_many_sockets_leaves_memory_and_others_alone(
        settings, children):
    server = children.server(settings, "--rate-limit=50")
    await server.until_healthy()
    admin = Admin(server.base_url, settings.admin_token, IDS)
    attacker, lurker, bystander = await admin.users(3)
    gid = await admin.group([attacker, lurker, bystander])
    token = auth.issue_token(settings.token_secret, attacker)
    writer = await Client.open(server.base_url, token)
    for n in range(100):  # ~600 KB of history; paced under the rate limit
        assert (await writer.request("chat.send", to_type="group", to_id=gid,
                                     text=LONG_TEXT))["ok"]
        await asyncio.sleep(0.021)
    writer.close()
    watchdog = Watchdog(server)
    phones, refused = await _sockets(server.base_url, token, 30)
    assert len(phones) == 20 and refused == [429] * 10
    # Clients that ask and never read: each socket's unsent bytes are bounded, and so are sockets.
    lurking = [await Client.open(server.base_url, auth.issue_token(settings.token_secret, lurker))
               for _ in range(20)]
    for phone in lurking:
        phone.reader.cancel()
        for _ in range(2):
            await phone.send({"op": "chat.history", "id": 1, "to_type": "group", "to_id": gid,
                              "limit": 100})
    friend = await Client.open(server.base_url, auth.issue_token(settings.token_secret, bystander))
    flood = [asyncio.ensure_future(_history_flood(phone, gid, seconds=5)) for phone in phones]
    answers = []
    while not all(task.done() for task in flood):
        answers.append(await friend.request("wallet.get"))
        await asyncio.sleep(0.1)
    growth = watchdog.stop()
    codes = {code for task in flood for code in task.result()}
    assert all(a["ok"] for a in answers), [a for a in answers if not a["ok"]][:3]
    assert codes <= {"ok", "rate_limited"} and "ok" in codes
    assert growth < 300 << 20, f"RSS grew {growth >> 20} MB"
    for phone in phones + lurking + [friend]:
        phone.close()
    settled = rss(server.proc.pid)
    for _ in range(150):  # freed memory goes back to the system within a trim or two
        settled = rss(server.proc.pid)
        if settled - watchdog.idle < 100 << 20:
            break
        await asyncio.sleep(0.1)
    assert settled - watchdog.idle < 100 << 20, f"still {(settled - watchdog.idle) >> 20} MB up"


async def _sockets(base_url: str, token: str, n: int) -> tuple[list[Client], list[int]]:
    """Try `n` sockets with one token; return those opened and the refusals' statuses."""
    opened, refused = [], []
    for _ in range(n):
        try:
            opened.append(await Client.open(base_url, token))
        except tornado.httpclient.HTTPClientError as exc:
            refused.append(exc.code)
    return opened, refused


async def _history_flood(phone: Client, gid: int, seconds: float) -> list[str]:
    """45 `chat.history` of 100 messages a second, under the rate limit; return the outcomes."""
    outcomes, ends = [], time.monotonic() + seconds
    asked = []
    while time.monotonic() < ends:
        asked.append(asyncio.ensure_future(phone.request("chat.history", to_type="group",
                                                         to_id=gid, limit=100)))
        await asyncio.sleep(1 / 45)
    for reply in await asyncio.gather(*asked):
        outcomes.append("ok" if reply["ok"] else reply["code"])
    return outcomes
