"""Dependencies going down and coming back, each said once: an outage is two log lines.

While MariaDB or Redis is away every request and every sweep that needs it fails; a line (or a
traceback) for each would bury the log (18,000 lines in an eleven-minute outage, once). Here the
first failure is logged with its cause, the rest are counted (`rtserver_dependency_failures_total`),
and a probe says when the dependency answers again, with how long and how many failed meanwhile.
"""
import asyncio
import logging
import time

from rtserver import metrics
from storage.errors import dependency_of, is_deadlock, is_dependency_down

log = logging.getLogger("rtserver.outages")

PROBE_EVERY = 1.0  # seconds between asking a dependency that is down whether it is back


class Outages:
    def __init__(self, probes: dict):
        self.probes = probes  # dependency name → async callable that succeeds once it answers
        self._down: dict[str, list] = {}  # name → [since, failures]
        self._probing: set[asyncio.Task] = set()

    def failed(self, exc: BaseException, doing: str, logger: logging.Logger) -> None:
        """Say that `doing` failed: once per outage when a dependency is down, else with a
        traceback on `logger` (a bug is always worth its lines). A deadlock is one line of
        its own: MariaDB is there, it rolled back one of two transactions."""
        if is_deadlock(exc):
            logger.warning("%s failed: MariaDB gave up on a lock (%s)", doing, exc)
            return
        if not is_dependency_down(exc):
            logger.error("%s failed", doing, exc_info=exc)
            return
        name = dependency_of(exc)
        metrics.dependency_failed(name)
        down = self._down.get(name)
        if down is not None:
            down[1] += 1
            return
        self._down[name] = [time.monotonic(), 1]
        log.warning("%s is unreachable (%s failed: %s); counting failures until it answers",
                    name, doing, exc)
        task = asyncio.ensure_future(self._until_back(name))
        self._probing.add(task)
        task.add_done_callback(self._probing.discard)

    async def _until_back(self, name: str) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            try:
                await self.probes[name]()
            except Exception as exc:
                if not is_dependency_down(exc):
                    raise
                continue
            since, failures = self._down.pop(name)
            log.warning("%s is back after %.0f s; %d failures meanwhile", name,
                        time.monotonic() - since, failures)
            return

    def close(self) -> None:
        for task in self._probing:
            task.cancel()
