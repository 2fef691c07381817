"""Prometheus metrics: connections, requests by op and outcome, request latency."""
import functools

from prometheus_client import Counter, Gauge, Histogram, Info

# Which process answered the scrape: under `rtserver serve --processes N` each has its own
# metrics, and a scrape of the shared port reaches one of them.
PROCESS = Info("rtserver_process", "This process: its pid and its index among --processes")
CONNECTIONS = Gauge("rtserver_connections", "Open WebSocket connections")
AT_GATE = Gauge("rtserver_connections_at_gate",
                "New connections waiting for their first request's headers, or their turn")
REQUESTS = Counter("rtserver_requests_total", "Socket requests answered", ["op", "outcome"])
LATENCY = Histogram("rtserver_request_seconds", "Time to answer a socket request", ["op"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
EVENTS = Counter("rtserver_events_total", "Events sent to connections", ["ev"])
HTTP = Counter("rtserver_http_requests_total", "HTTP requests", ["handler", "status"])
DEPENDENCY_FAILURES = Counter("rtserver_dependency_failures_total",
                              "Requests and jobs failed because a dependency was down",
                              ["dependency"])
REFUSED = Counter("rtserver_refused_total", "Work refused for a node's own safety (a limit reached)",
                  ["limit"])


def answered(op: str, outcome: str, seconds: float) -> None:
    """Count a socket request answered and how long it took."""
    _requests(op, outcome).inc()
    _latency(op).observe(seconds)


def dependency_failed(dependency: str) -> None:
    DEPENDENCY_FAILURES.labels(dependency).inc()


def refused(limit: str) -> None:
    """Count one refusal by the limit that made it."""
    _refused(limit).inc()


# Ops, outcomes and limits are few (unknown ops are counted as "unknown"): each labelled child
# is looked up once, not on every request.
@functools.cache
def _requests(op: str, outcome: str):
    return REQUESTS.labels(op, outcome)


@functools.cache
def _refused(limit: str):
    return REFUSED.labels(limit)


@functools.cache
def _latency(op: str):
    return LATENCY.labels(op)
