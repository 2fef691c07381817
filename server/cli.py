"""`rtserver serve | migrate | jobs | audit`."""
import asyncio
import logging
import signal
import sys

import tornado.ioloop
import tornado.log

from rtserver import config

USAGE = "usage: rtserver {serve,migrate,jobs,audit} [--flag=value ...]  (rtserver serve --help)"
log = logging.getLogger("rtserver")

SHUTDOWN_GRACE = 10  # seconds in-flight requests get to finish on SIGTERM
# A frame is at most 1 MiB (handlers/socket.py); Tornado's default lets a peer buffer 100 MB.
MAX_BUFFER = 4 << 20


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    tornado.log.enable_pretty_logging()
    logging.getLogger().setLevel(logging.INFO)
    settings = config.load(argv[1:])
    return COMMANDS[argv[0]](settings) or 0


def migrate(settings) -> int:
    from storage.migrate import migrate as apply
    applied = apply(settings.mysql_url)
    print("applied: " + ", ".join(applied) if applied else "schema up to date")
    return 0


def serve(settings) -> int:
    run(settings, _serve(settings.require_secrets()))
    return 0


def jobs(settings) -> int:
    run(settings, _jobs_alone(settings))
    return 0


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


def audit(settings) -> int:
    from jobs.audit import run_audit
    return asyncio.run(run_audit(settings))


async def _serve(settings) -> None:
    from handlers.base import MAX_BODY  # what any route but BaseHandler's reads at most
    from jobs.runner import JobRunner
    from server.app import make_app
    from rtserver.context import close_context, open_context
    from rtserver.listener import listen, raise_fd_limit
    from rtserver.memory import TRIM_INTERVAL, calm_garbage_collector

    raise_fd_limit(settings.max_connections)
    ctx = await open_context(settings)
    calm_garbage_collector()
    server = listen(make_app(ctx), settings.port, settings.address, settings.header_timeout,
                    ctx.reclaimer, max_body_size=MAX_BODY, max_buffer_size=MAX_BUFFER)
    memory = tornado.ioloop.PeriodicCallback(ctx.reclaimer.give_back, TRIM_INTERVAL * 1000)
    memory.start()
    runner = JobRunner(ctx) if settings.jobs == "inline" else None
    if runner:
        runner.start()
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
    await server.close_all_connections()
    await close_context(ctx)


async def _jobs_alone(settings) -> None:
    from jobs.runner import JobRunner
    from rtserver.context import close_context, open_context

    ctx = await open_context(settings)
    runner = JobRunner(ctx)
    runner.start()
    await _until_signalled()
    await runner.stop()
    await close_context(ctx)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


COMMANDS = {"serve": serve, "migrate": migrate, "jobs": jobs, "audit": audit}

if __name__ == "__main__":
    sys.exit(main())
