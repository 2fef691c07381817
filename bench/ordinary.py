"""Ordinary clients for `make siege`: what everyone else does while one user attacks.

Each client pings and grabs, in a closed loop with a short think time, the newest packet its
group heard of; one of them (the sender) keeps paying packets into the group, so grabs win or
come too late for real; and once a second someone opens the app (a newcomer dials a socket of
its own, pings and leaves), since an attack on connections would keep out the people arriving,
not those already in. Every request is timed, and every failure counted: an error answer, no
answer within `TIMEOUT` seconds, a connection refused or dropped (the client then reconnects).
Each `mark` line on stdin is answered with the window since the last one; `stop` ends the job.
"""
import asyncio
import itertools
import json
import random
import sys
import time

from bench.wire import Conn

TIMEOUT = 5.0  # seconds; an answer later than this is a failure, as a user would see it
THINK = (0.05, 0.15)  # seconds between one client's requests: a person, not a flood
RECONNECT_PAUSE = 0.5  # seconds before a dropped client dials again
NEWCOMER_EVERY = 1.0  # seconds between newcomers
GRAB_RESULTS = {"ok", "too_slow", "already"}
PACKET = {"type": 3, "amount": "0.20", "number": 20, "pay_type": "balance"}  # 0.01 a share


class Window:
    """What the clients saw since the last `mark`: latencies in seconds, failures."""

    def __init__(self):
        self.latencies: list[float] = []
        self.joins: list[float] = []  # a newcomer's dial to its first answer
        self.failures = 0
        self.first_failure: str | None = None
        self.results: dict[str, int] = {}

    def failed(self, what: str) -> None:
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = f"{time.strftime('%H:%M:%S')} {what}"

    def as_dict(self) -> dict:
        return {"latencies": [round(x, 5) for x in self.latencies],
                "joins": [round(x, 5) for x in self.joins], "failures": self.failures,
                "first_failure": self.first_failure, "results": self.results}


class Clients:
    """The process's clients, their shared window and the packets their group heard of."""

    def __init__(self, job: dict):
        self.url, self.group = job["url"], job["group"]
        self.deadline = time.monotonic() + job["duration"]
        self.window = Window()
        self.packets: list[int] = []
        self.heard: set[int] = set()

    def on_event(self, frame: dict, _at: float) -> None:
        message = frame.get("message") if frame.get("ev") == "message" else None
        if message and message["kind"] == "packet" and message["to_id"] == self.group:
            rp_id = message["packet"]["rp_id"]
            if rp_id not in self.heard:
                self.heard.add(rp_id)
                self.packets.append(rp_id)

    async def timed(self, conn: Conn, op: str, **args) -> dict | None:
        """One request, timed; None (and a failure counted) when it did not come back well."""
        started = time.perf_counter()
        try:
            reply = await conn.request_within(TIMEOUT, op, **args)
        except asyncio.TimeoutError:
            self.window.failed(f"{op}: no answer within {TIMEOUT:.0f} s")
            return None
        self.window.latencies.append(time.perf_counter() - started)
        outcome = reply.get("result") if op == "packet.grab" else None
        if not reply.get("ok") or (outcome is not None and outcome not in GRAB_RESULTS):
            self.window.failed(f"{op}: {reply.get('code') or outcome} {reply.get('message', '')}")
            return None
        key = f"{op}:{outcome}" if outcome else op
        self.window.results[key] = self.window.results.get(key, 0) + 1
        return reply

    async def connected(self, conn: Conn | None, token: str) -> Conn | None:
        """The client's socket, dialled again if it is gone; None if that failed."""
        if conn is not None and not conn.reader.done():
            return conn
        if conn is not None:
            self.window.failed("connection dropped")
        try:
            conn = await asyncio.wait_for(Conn.open(self.url, token), TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self.window.failed(f"connect: {exc!r}"[:200])
            await asyncio.sleep(RECONNECT_PAUSE)
            return None
        conn.on_event = self.on_event
        return conn

    async def member(self, conn: Conn, token: str) -> None:
        grabbed: set[int] = set()
        while time.monotonic() < self.deadline:
            conn = await self.connected(conn, token)
            if conn is None:
                continue
            try:
                await self.timed(conn, "ping")
                await asyncio.sleep(random.uniform(*THINK))
                fresh = [rp for rp in self.packets[-5:] if rp not in grabbed]
                if fresh:
                    grabbed.add(fresh[-1])
                    await self.timed(conn, "packet.grab", rp_id=fresh[-1])
                await asyncio.sleep(random.uniform(*THINK))
            except ConnectionError:
                pass  # counted when `connected` finds it gone

    async def newcomers(self, tokens: list[str]) -> None:
        """Once a second a member opens a second socket (the app on another phone): dials,
        upgrades, pings, and hangs up; the whole of it within `TIMEOUT`, or it failed."""
        for token in itertools.cycle(tokens):
            if time.monotonic() >= self.deadline:
                return
            started, conn = time.perf_counter(), None
            try:
                conn = await asyncio.wait_for(Conn.open(self.url, token), TIMEOUT)
                await conn.request_within(TIMEOUT - (time.perf_counter() - started), "ping")
                self.window.joins.append(time.perf_counter() - started)
            except (OSError, asyncio.TimeoutError) as exc:
                self.window.failed(f"newcomer: {exc!r}"[:200])
            finally:
                if conn is not None:
                    conn.close()
            await asyncio.sleep(max(0.0, NEWCOMER_EVERY - (time.perf_counter() - started)))

    async def sender(self, conn: Conn, token: str, per_second: float) -> None:
        while time.monotonic() < self.deadline:
            conn = await self.connected(conn, token)
            if conn is None:
                continue
            try:
                created = await self.timed(conn, "packet.create", for_id=self.group, **PACKET)
                if created:
                    await self.timed(conn, "packet.pay", rp_id=created["rp_id"])
                await asyncio.sleep(1 / per_second)
            except ConnectionError:
                pass


async def stdin_lines():
    """stdin as an async stream: a `mark` is answered while the clients keep running."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def ordinary(conns, job) -> dict:
    """Run the members (and the sender, if this process has it) until `stop`, the end of
    stdin or `duration`, answering each `mark` with the window since the last."""
    clients = Clients(job)
    for conn in conns:
        conn.on_event = clients.on_event
    tasks = [asyncio.ensure_future(clients.member(c, t)) for c, t in zip(conns, job["tokens"])]
    if job.get("sender_token"):
        sender = await Conn.open(job["url"], job["sender_token"])
        tasks.append(asyncio.ensure_future(
            clients.sender(sender, job["sender_token"], job["packets_per_s"])))
        tasks.append(asyncio.ensure_future(clients.newcomers(job["tokens"])))
    lines = await stdin_lines()
    while (left := clients.deadline - time.monotonic()) > 0:
        try:
            line = (await asyncio.wait_for(lines.readline(), left)).strip()
        except asyncio.TimeoutError:
            break
        if line != b"mark":
            break  # `stop`, or the end of stdin: the siege is over
        print(json.dumps(clients.window.as_dict()), flush=True)
        clients.window = Window()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients.window.as_dict()
