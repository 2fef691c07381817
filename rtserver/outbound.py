"""Outbound events: the chat app's back end told what happened to packets (--events-url).

A use-case says what happened with `uow.send_out(type, data)`; the unit of work keeps it in its
own transaction (storage/outbound.py), so an event exists exactly when its change does: none
for money the database refused, no change without its event. A job on every node
(jobs/outbound.py) claims due events and POSTs each as JSON `{"id", "type", "time", "data"}`,
signed with --events-secret, until it is answered 2xx: at least once, with the same `id` on
every try, retried with backoff for --events-retry-for seconds, then kept as failed for
`GET /admin/events` and `POST /admin/events/replay`.

The delivery has an HTTP client of its own: a receiver that hangs holds none of the payment
providers' connections, and no grab ever waits for it.
"""
import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets
import time

import tornado.httpclient
from prometheus_client import Counter, Gauge

from storage import outbound
from storage.schema import EventState

log = logging.getLogger("rtserver.outbound")

TYPES = ("packet.sent", "packet.grabbed", "packet.finished", "packet.refunded", "packet.voided",
         "packet.settled")
FIRST_RETRY_MS = 4_000  # docs/protocol.md: the first retry within 5 s (jitter takes up to a quarter)
MAX_RETRY_MS = 600_000  # then doubling, up to 10 minutes
ROUND = 200  # events one node claims at a time
SENDS_AT_ONCE = 32  # POSTs in flight from one node
# A claim outlasts its round (every POST of it times out at the latest after --events-timeout,
# however many wait for a connection): only a node that died mid-round leaves rows to others.
CLAIM_TIMEOUTS = 3
KEEP_DELIVERED_MS = 7 * 86_400_000

SENT = Counter("rtserver_outbound_events_total", "Outbound events' tries, by outcome",
               ["outcome"])  # delivered, retried, failed (given up)
FAILED = Gauge("rtserver_outbound_events_failed",
               "Outbound events given up on (GET /admin/events?state=failed), as last counted")


def now_ms() -> int:
    return int(time.time() * 1000)


def retry_delay_ms(tries: int, jitter: float) -> int:
    """How long to wait after the `tries`-th failed try (1, 2, …): 4 s doubling up to 10
    minutes, less up to a quarter of it by `jitter` (0 ≤ jitter < 1), so that the events of
    one outage do not all come back at the same moment."""
    base = min(MAX_RETRY_MS, FIRST_RETRY_MS << min(tries - 1, 20))
    return int(base * (1 - jitter / 4))


def body_of(row: dict) -> bytes:
    """The POST body of a stored event: the same bytes on every try."""
    return json.dumps({"id": str(row["id"]), "type": row["type"], "time": row["created"] // 1000,
                       "data": row["data"]}, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp + "." + body`, keyed by the secret (X-Rtserver-Signature)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def view(row: dict) -> dict:
    """An event as `GET /admin/events` shows it."""
    return {"id": str(row["id"]), "type": row["type"], "time": row["created"] // 1000,
            "data": row["data"], "state": row["state"].wire_name, "tries": row["tries"],
            "last_error": row["last_error"]}


class Outbox:
    """This node's side of the outbound events: whether there are any (--events-url), and the
    wake-up its delivery job waits on after a commit that kept some."""

    def __init__(self, url: str, secret: str, retry_for: int, timeout: float):
        self.url, self.secret, self.retry_for_ms = url, secret, retry_for * 1000
        self.timeout = timeout
        self.claim_ms = int(timeout * 1000 * CLAIM_TIMEOUTS)
        self.due = asyncio.Event()
        self.http = None  # made on first use, on the running loop

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def deadline_ms(self, now: int) -> int:
        return now + self.retry_for_ms

    def wake(self) -> None:
        self.due.set()

    async def post(self, row: dict) -> str | None:
        """POST one event; None when it was answered 2xx, else what went wrong."""
        if self.http is None:
            self.http = tornado.httpclient.AsyncHTTPClient(force_instance=True,
                                                           max_clients=SENDS_AT_ONCE)
        body, timestamp = body_of(row), str(int(time.time()))
        request = tornado.httpclient.HTTPRequest(
            self.url, method="POST", body=body, request_timeout=self.timeout,
            connect_timeout=self.timeout, follow_redirects=False,
            headers={"Content-Type": "application/json", "X-Rtserver-Event-Id": str(row["id"]),
                     "X-Rtserver-Timestamp": timestamp,
                     "X-Rtserver-Signature": signature(self.secret, timestamp, body)})
        response = await self.http.fetch(request, raise_error=False)
        if 200 <= response.code < 300:
            return None
        return f"HTTP {response.code}" if response.code != 599 else str(response.error)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


async def deliver_due(ctx) -> int:
    """One round: claim the events due now and POST them side by side; return how many."""
    claim, now = secrets.token_hex(8), now_ms()
    async with ctx.db.cursor() as cur:
        rows = await outbound.claim(cur, claim, now, now + ctx.outbox.claim_ms, ROUND)
    if not rows:
        return 0
    errors = await asyncio.gather(*(ctx.outbox.post(row) for row in rows), return_exceptions=True)
    async with ctx.db.cursor() as cur:
        sent = [row["id"] for row, error in zip(rows, errors) if error is None]
        if sent:
            await outbound.delivered(cur, sent, now_ms())
            SENT.labels("delivered").inc(len(sent))
        for row, error in zip(rows, errors):
            if error is not None:
                await _not_delivered(cur, row, claim, str(error))
    return len(rows)


async def _not_delivered(cur, row: dict, claim: str, error: str) -> None:
    now = now_ms()
    next_try = now + retry_delay_ms(row["tries"] + 1, random.random())
    given_up = next_try > row["deadline"]
    await outbound.not_delivered(cur, row["id"], claim, next_try, error, given_up)
    SENT.labels("failed" if given_up else "retried").inc()
    if given_up:
        log.warning("outbound event %s (%s) not delivered by its deadline: %s", row["id"],
                    row["type"], error)


async def tidy(ctx) -> None:
    """Forget events delivered a week ago, and count the failed ones for the metric."""
    async with ctx.db.cursor() as cur:
        await outbound.forget_delivered(cur, now_ms() - KEEP_DELIVERED_MS, 10_000)
        FAILED.set(await outbound.count(cur, EventState.FAILED))


async def listing(ctx, state: EventState, after: int, limit: int) -> dict:
    async with ctx.db.cursor() as cur:
        rows = await outbound.listing(cur, state, after, limit)
    return {"events": [view(row) for row in rows]}


async def replay(ctx, ids: list[int] | None) -> dict:
    """Send failed events (those of `ids`, or all) again, with a new --events-retry-for."""
    now = now_ms()
    async with ctx.db.cursor() as cur:
        replayed = await outbound.replay(cur, ids, now, ctx.outbox.deadline_ms(now))
    ctx.outbox.wake()
    return {"replayed": replayed}
