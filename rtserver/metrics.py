"""Prometheus metrics: connections, requests by op and outcome, request latency."""
from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("rtserver_connections", "Open WebSocket connections")
REQUESTS = Counter("rtserver_requests_total", "Socket requests answered", ["op", "outcome"])
LATENCY = Histogram("rtserver_request_seconds", "Time to answer a socket request", ["op"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
EVENTS = Counter("rtserver_events_total", "Events sent to connections", ["ev"])
HTTP = Counter("rtserver_http_requests_total", "HTTP requests", ["handler", "status"])
