"""The process's memory: fewer pauses for the garbage collector, freed memory given back."""
import ctypes
import gc
import time

GC_YOUNG_THRESHOLD = 50_000  # allocations between young-generation collections (Python: 700)
TRIM_INTERVAL = 10  # seconds between handing freed memory back to the system
# A closed connection leaves its objects in reference cycles (Tornado's streams, futures and
# callbacks) that only a full collection frees, and those are rare here (above). A full
# collection costs what is still alive, so it runs once most of a burst of connections is gone:
# at least this many ended since the last one, and ten times as many as are still open.
COLLECT_AFTER_ENDED = 1000
# Only connections that lived this long count: what dies younger is freed by the young
# collections, which run all the time. A flood of connections refused at once (each gone within
# milliseconds) would otherwise set off a full collection every few seconds, some 60-80 ms of a
# busy node each, felt by every socket.
LONG_LIVED = 1.0


def calm_garbage_collector() -> None:
    """Collect young objects less often: every connection is a web of long-lived objects, and
    each full collection walks them all, a pause felt by every socket at once."""
    gc.collect()
    gc.freeze()  # what start-up made lives as long as the process
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


def _glibc():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim, or its own allocator does
        return None


_MALLOC_TRIM = _glibc()


class Reclaimer:
    """Gives back what ended connections held: collects their cycles, trims the heap."""

    def __init__(self):
        self.open = 0  # connections (HTTP and WebSocket) open now
        self.ended = 0  # long-lived connections ended since the last full collection

    def connection_opened(self) -> float:
        """Count a connection in; return when it opened, for `connection_ended`."""
        self.open += 1
        return time.monotonic()

    def connection_ended(self, opened_at: float | None) -> None:
        """Count out a connection opened at `opened_at` (None: it never was)."""
        if opened_at is None:
            return
        self.open -= 1
        if time.monotonic() - opened_at >= LONG_LIVED:
            self.ended += 1

    def give_back(self) -> None:
        """Return freed memory to the system: glibc keeps what a burst of large replies freed
        in its arenas, and the process would otherwise stay at its peak for good."""
        if self.ended >= max(COLLECT_AFTER_ENDED, 10 * self.open):
            self.ended = 0
            gc.collect()
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)
