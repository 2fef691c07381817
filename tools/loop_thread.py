"""An asyncio loop of its own in a daemon thread, for a server that runs beside its caller's
loop and must answer even while that loop is busy or blocked (the TCP proxies, the soak's
events receiver)."""
import asyncio
import threading


class LoopThread:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    @property
    def ended(self) -> bool:
        return self.loop.is_closed()

    def call(self, coro, timeout: float = 5.0):
        """Run `coro` on the loop, from any other thread, and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
