"""`rtserver serve | migrate | jobs | audit`."""
import asyncio
import logging
import sys

import tornado.log

from rtserver import config

USAGE = "usage: rtserver {serve,migrate,jobs,audit} [--flag=value ...]  (rtserver serve --help)"


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
    from server import processes, serving
    settings = settings.require_secrets()
    if settings.processes == 1:
        serving.run(settings, serving.serve(settings))
        return 0
    processes.check_port_free(settings.port, settings.address)
    return processes.supervise(
        settings.processes, lambda index: serving.run(settings, serving.serve(settings, index)))


def jobs(settings) -> int:
    from server import serving
    serving.run(settings, serving.jobs_alone(settings))
    return 0


def audit(settings) -> int:
    from jobs.audit import run_audit
    return asyncio.run(run_audit(settings))


COMMANDS = {"serve": serve, "migrate": migrate, "jobs": jobs, "audit": audit}

if __name__ == "__main__":
    sys.exit(main())
