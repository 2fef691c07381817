"""Calls out to a payment provider: a time-out, bounded retries, a breaker, metrics.

One Caller per provider, so that a provider that is down slows only its own payments: after
BREAKER_FAILURES calls in a row fail, its breaker opens and every call fails at once with
ProviderDown (`unavailable`) for BREAKER_OPEN seconds; then one call is let through to try.
Never called inside a database transaction, nor on the grab path. What is logged is the
provider, the call and the outcome: never a key, a signature or a body.
"""
import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Callable

import tornado.httpclient
from prometheus_client import Counter, Histogram

from rtserver.errors import BadRequest, Unavailable

log = logging.getLogger("rtserver.providers")

BREAKER_FAILURES = 5  # calls failed in a row that open a provider's breaker
BREAKER_OPEN = 30.0  # seconds it stays open before one call may try again
BACKOFF_FIRST, BACKOFF_MOST = 0.2, 2.0  # seconds before a retry, doubled, with full jitter

CALLS = Counter("rtserver_provider_calls_total", "Calls to payment providers",
                ["provider", "call", "outcome"])
LATENCY = Histogram("rtserver_provider_call_seconds", "Time of a call to a payment provider",
                    ["provider", "call"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))


class ProviderDown(Unavailable):
    """The provider could not be reached, timed out, failed, or answered with a bad signature:
    nothing is known to have happened there."""


class ProviderRefused(BadRequest):
    """The provider answered, signed, and said no; `message` is its own reason."""


class BadAnswer(Exception):
    """An answer that is not the provider's: its signature does not verify, or its shape is
    not the documented one."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict  # tornado.httputil.HTTPHeaders: case-insensitive
    body: bytes


class Breaker:
    """Open after BREAKER_FAILURES failures in a row; half-open after BREAKER_OPEN seconds."""

    def __init__(self, failures: int = BREAKER_FAILURES, open_for: float = BREAKER_OPEN):
        self.failures, self.open_for = failures, open_for
        self.failed_in_row, self.opened_at = 0, None

    def allows(self) -> bool:
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= self.open_for:
            self.opened_at = time.monotonic()  # half-open: this one call tries, the rest wait
            return True
        return False

    def succeeded(self) -> None:
        self.failed_in_row, self.opened_at = 0, None

    def failed(self) -> None:
        self.failed_in_row += 1
        if self.failed_in_row >= self.failures:
            self.opened_at = time.monotonic()


class Caller:
    """The HTTP calls of one provider."""

    def __init__(self, provider: str, timeout: float, breaker: Breaker | None = None):
        self.provider, self.timeout = provider, timeout
        self.breaker = breaker or Breaker()
        self.http = tornado.httpclient.AsyncHTTPClient()

    async def call(self, call: str, method: str, url: str, *, headers: dict, body: bytes | None,
                   check: Callable[[Reply], object], tries: int = 3):
        """Make one call (`call` names it in metrics and logs) and return `check(reply)`.

        `check` verifies the answer (raising BadAnswer when it is not the provider's, or
        ProviderRefused for a signed refusal) and says what it means. A call that fails to
        connect, times out, answers 5xx or BadAnswer is made again, `tries` times in all, with
        backoff and jitter: every call here is idempotent on a number we chose."""
        delay = BACKOFF_FIRST
        for attempt in range(1, tries + 1):
            if not self.breaker.allows():
                self._count(call, "breaker_open")
                raise ProviderDown(f"{self.provider} is unavailable; retry later")
            outcome, started = "down", time.monotonic()
            try:
                reply = await self._fetch(method, url, headers, body)
                if reply.status >= 500:
                    raise ConnectionError(f"HTTP {reply.status}")
                answer = check(reply)
                outcome = "ok"
                return answer
            except ProviderRefused:
                outcome = "refused"
                raise
            except BadAnswer as exc:
                outcome, why = "bad_answer", str(exc)
            except (OSError, tornado.httpclient.HTTPClientError, asyncio.TimeoutError) as exc:
                why = type(exc).__name__ if not str(exc) else str(exc)
            finally:
                LATENCY.labels(self.provider, call).observe(time.monotonic() - started)
                self._count(call, outcome)
                (self.breaker.succeeded if outcome in ("ok", "refused") else self.breaker.failed)()
            log.warning("%s %s failed (%s), try %d of %d", self.provider, call, why, attempt, tries)
            if attempt < tries:
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(2 * delay, BACKOFF_MOST)
        raise ProviderDown(f"{self.provider} did not answer {call}; retry later")

    async def _fetch(self, method: str, url: str, headers: dict, body: bytes | None) -> Reply:
        request = tornado.httpclient.HTTPRequest(
            url, method=method, headers=headers, body=body, request_timeout=self.timeout,
            connect_timeout=self.timeout, follow_redirects=False,
            allow_nonstandard_methods=body is None and method == "POST")
        response = await self.http.fetch(request, raise_error=False)
        if response.code == 599:  # tornado's own: no HTTP answer (refused, reset, timed out)
            raise ConnectionError(str(response.error))
        return Reply(response.code, response.headers, response.body or b"")

    def _count(self, call: str, outcome: str) -> None:
        CALLS.labels(self.provider, call, outcome).inc()


async def side_by_side(ctx, rows: list[dict], work) -> int:
    """`await work(ctx, row)` for each row, one provider's rows in turn and the providers side
    by side, so that a slow provider delays only its own; return how many said True."""
    by_provider: dict[str, list[dict]] = {}
    for row in rows:
        by_provider.setdefault(row["provider"], []).append(row)

    async def in_turn(rows_of_one: list[dict]) -> int:
        return sum([bool(await work(ctx, row)) for row in rows_of_one])

    return sum(await asyncio.gather(*(in_turn(group) for group in by_provider.values())))
