"""The application factory: routes and settings around a context opened elsewhere."""
import logging
import pathlib

import tornado.web

from handlers import admin, asyncapi, dev, health, openapi, pay, socket
from handlers.base import StaticFiles
from rtserver import metrics
from rtserver.context import Context
from rtserver.sparing_log import OncePerSecond

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"  # the socket protocol, served as /asyncapi.json
# What the page imports (its import map names both), served straight from where they are, never
# copied: the JS client package's modules, and msgpack's ES modules from npm's install.
CLIENT_JS = ROOT / "clients" / "js" / "src"
MSGPACK_JS = ROOT / "node_modules" / "@msgpack" / "msgpack" / "dist.esm"
WEBSOCKET_PING_INTERVAL = 25  # seconds; below the usual 30–60 s idle cut-off of proxies and NATs
access_log = logging.getLogger("tornado.access")


def make_app(ctx: Context) -> tornado.web.Application:
    routes = (socket.default_handlers + admin.default_handlers + health.default_handlers
              + dev.default_handlers + pay.default_handlers + openapi.default_handlers
              + asyncapi.handlers_for(ASYNCAPI)
              + [(r"/vendor/rtserver-client/(.*)", StaticFiles, {"path": str(CLIENT_JS)}),
                 (r"/vendor/msgpack/(.*)", StaticFiles, {"path": str(MSGPACK_JS)}),
                 (r"/(.*)", StaticFiles,
                  {"path": str(STATIC), "default_filename": "index.html"})])
    return tornado.web.Application(
        routes,
        ctx=ctx,
        log_function=log_request,
        websocket_ping_interval=WEBSOCKET_PING_INTERVAL,
        websocket_max_message_size=socket.HARD_FRAME_LIMIT,
    )


_refusals: dict[int, OncePerSecond] = {}  # the access log's lines for each refusing status


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Log a request by its path only: queries carry tokens, and tokens never reach a log.

    Refusals (4xx, 5xx) are what a flood makes: one line a second for each status at most."""
    status = handler.get_status()
    metrics.HTTP.labels(type(handler).__name__, str(status)).inc()
    line = ("%d %s %s %.1fms", status, handler.request.method, handler.request.path,
            1000.0 * handler.request.request_time())
    if status < 400:
        access_log.info(*line)
    else:
        if status not in _refusals:
            _refusals[status] = OncePerSecond(access_log, logging.WARNING if status < 500
                                              else logging.ERROR)
        _refusals[status].say(*line)

