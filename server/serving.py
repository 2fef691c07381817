"""One process of `rtserver serve` or `rtserver jobs`: open the context, run, close it on a signal."""
import asyncio
import logging
import os
import signal

import tornado.ioloop

from handlers.base import MAX_BODY  # what any route but BaseHandler's reads at most
from jobs.outbound import Delivery
from jobs.runner import JobRunner
from rtserver import metrics
from server.context import close_context, open_context
from rtserver.listener import listen, raise_fd_limit
from rtserver.memory import TRIM_INTERVAL, calm_garbage_collector
from server.app import make_app

log = logging.getLogger("rtserver")

SHUTDOWN_GRACE = 10  # seconds in-flight requests get to finish on SIGTERM
# A frame is at most 1 MiB (handlers/socket.py); Tornado's default lets a peer buffer 100 MB.
MAX_BUFFER = 4 << 20


def run(settings, main) -> None:
    """Run the service's main coroutine, on uvloop unless --uvloop=false."""
    loop_factory = None
    if settings.uvloop:
        try:
            import uvloop
            loop_factory = uvloop.new_event_loop
        except ImportError:
            log.warning("uvloop is not installed; running on asyncio's own loop")
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)


async def serve(settings, index: int = 0) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully; `index` is this process's place
    among `--processes` (each of them binds the port with SO_REUSEPORT)."""
    metrics.PROCESS.info({"pid": str(os.getpid()), "index": str(index)})
    raise_fd_limit(settings.max_connections)
    ctx = await open_context(settings)
    calm_garbage_collector()
    server = listen(make_app(ctx), settings.port, settings.address, settings.header_timeout,
                    ctx.reclaimer, settings.accept_rate, reuse_port=settings.processes > 1, max_body_size=MAX_BODY,
                    max_buffer_size=MAX_BUFFER)
    memory = tornado.ioloop.PeriodicCallback(ctx.reclaimer.give_back, TRIM_INTERVAL * 1000)
    memory.start()
    runner = JobRunner(ctx) if settings.jobs == "inline" else None
    if runner:
        runner.start()
    delivery = start_delivery(ctx)
    log.info("rtserver serving on http://%s:%d%s", settings.address, settings.port,
             " (dev)" if settings.dev else "")
    await _until_signalled()
    log.info("shutting down")
    server.stop()
    memory.stop()
    if ctx.inflight:  # answer what was asked before the sockets close
        await asyncio.wait(list(ctx.inflight), timeout=SHUTDOWN_GRACE)
    ctx.hub.shut_all(1001, "server shutting down")
    if runner:
        await runner.stop()
    if delivery:
        await delivery.stop()
    await server.close_all_connections()
    await close_context(ctx)


async def jobs_alone(settings) -> None:
    ctx = await open_context(settings)
    runner = JobRunner(ctx)
    runner.start()
    delivery = start_delivery(ctx)
    await _until_signalled()
    await runner.stop()
    if delivery:
        await delivery.stop()
    await close_context(ctx)


def start_delivery(ctx) -> Delivery | None:
    """Every node delivers outbound events, when there are any (--events-url)."""
    if not ctx.outbox.enabled:
        return None
    delivery = Delivery(ctx)
    delivery.start()
    return delivery


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
