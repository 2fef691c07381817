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
SENDS_AT_ONCE = 32  # POSTs in flight from one node
ROUND = 4 * SENDS_AT_ONCE  # events one node claims at a time
# A claim outlasts its round (at most ROUND / SENDS_AT_ONCE POSTs one after the other, each
# ending by --events-timeout), so only a node that died mid-round leaves rows to the others.
CLAIM_TIMEOUTS = ROUND // SENDS_AT_ONCE + 2
MAX_ANSWER = 64 * 1024  # bytes of a receiver's answer read, at most: it is not looked at
REPLAY_BATCH = 1000
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
        self.http = self.sending = None  # made on first use, on the running loop

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
            self.http = tornado.httpclient.AsyncHTTPClient(
                force_instance=True, max_clients=SENDS_AT_ONCE, max_body_size=MAX_ANSWER)
            # POSTs wait here rather than in the client's queue, whose wait counts against
            # their time-out: a slow receiver would fail events that were never sent.
            self.sending = asyncio.Semaphore(SENDS_AT_ONCE)
        async with self.sending:
            return await self._post(row)

    async def _post(self, row: dict) -> str | None:
        body, timestamp = body_of(row), str(int(time.time()))
        request = tornado.httpclient.HTTPRequest(
            self.url, method="POST", body=body, request_timeout=self.timeout,
            connect_timeout=self.timeout, follow_redirects=False,
            headers={"Content-Type": "application/json", "X-Rtserver-Event-Id": str(row["id"]),
                     "X-Rtserver-Timestamp": timestamp,
                     "X-Rtserver-Signature": signature(self.secret, timestamp, body)})
        # No answer at all (refused, reset, timed out) raises; any HTTP answer is returned.
        response = await self.http.fetch(request, raise_error=False)
        return None if 200 <= response.code < 300 else f"HTTP {response.code}"

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


async def deliver_due(ctx) -> tuple[int, int]:
    """One round: claim the events due now and POST them side by side; return how many were
    claimed and how many delivered."""
    claim, now = secrets.token_hex(8), now_ms()
    async with ctx.db.cursor() as cur:
        rows = await outbound.claim(cur, claim, now, now + ctx.outbox.claim_ms, ROUND)
    if not rows:
        return 0, 0
    errors = await asyncio.gather(*(ctx.outbox.post(row) for row in rows), return_exceptions=True)
    sent = [row["id"] for row, error in zip(rows, errors) if error is None]
    failed = [_retry(row, str(error) or type(error).__name__)
              for row, error in zip(rows, errors) if error is not None]
    async with ctx.db.cursor() as cur:
        if sent:
            await outbound.delivered(cur, sent, now_ms())
        if failed:
            await outbound.not_delivered(cur, claim, failed)
    SENT.labels("delivered").inc(len(sent))
    return len(rows), len(sent)


def _retry(row: dict, error: str) -> tuple[int, int, str, bool]:
    """When to try a failed event again, or whether to give up on it."""
    next_try = now_ms() + retry_delay_ms(row["tries"] + 1, random.random())
    given_up = next_try > row["deadline"]
    SENT.labels("failed" if given_up else "retried").inc()
    if given_up:
        log.warning("outbound event %s (%s) not delivered by its deadline: %s", row["id"],
                    row["type"], error)
    return row["id"], next_try, error, given_up


async def tidy(ctx) -> None:
    """Forget events delivered a week ago, and count the failed ones for the metric."""
    async with ctx.db.cursor() as cur:
        while await outbound.forget_delivered(cur, now_ms() - KEEP_DELIVERED_MS, 1000) == 1000:
            pass
        FAILED.set(await outbound.count(cur, EventState.FAILED))


async def listing(ctx, state: EventState, after: int, limit: int) -> dict:
    async with ctx.db.cursor() as cur:
        rows = await outbound.listing(cur, state, after, limit)
    return {"events": [view(row) for row in rows]}


async def replay(ctx, ids: list[int] | None) -> dict:
    """Send failed events (those of `ids`, or every one) again, each with its own id, for
    another --events-retry-for; every one of them a thousand at a time."""
    now, replayed, after = now_ms(), 0, 0
    async with ctx.db.cursor() as cur:
        while batch := ids or await outbound.failed_ids(cur, after, REPLAY_BATCH):
            replayed += await outbound.replay(cur, batch, now, ctx.outbox.deadline_ms(now))
            if ids or len(batch) < REPLAY_BATCH:
                break
            after = batch[-1]
    ctx.outbox.wake()
    return {"replayed": replayed}
