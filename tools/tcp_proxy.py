"""A TCP proxy that can cut a link and bring it back, for the recovery tests and `make chaos`."""
import asyncio
import socket

from tools.loop_thread import LoopThread


def free_port() -> int:
    """A TCP port nothing listens on at this moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpProxy:
    """Forwards a local port to a TCP server, from a thread of its own.

    `close()` stops listening and drops every connection at once, as when the network or the
    server goes away; `open()` listens again on the same port. `delay` (seconds, settable at any
    time) holds back every chunk each way, as a slow network does.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()
        self._thread = LoopThread()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def open(self) -> None:
        self._thread.call(self._open())

    def close(self) -> None:
        self._thread.call(self._close())

    def stop(self) -> None:
        self.close()
        self._thread.call(self._end_pipes())
        self._thread.end()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port,
                                                  reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _end_pipes(self) -> None:
        """End the pipes still copying: a loop stopped under them leaves them pending."""
        pipes = asyncio.all_tasks() - {asyncio.current_task()}  # this loop runs only the proxy
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader, writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, upstream_writer.transport}
        self._transports |= pair
        await asyncio.gather(self._copy(reader, upstream_writer),
                             self._copy(upstream_reader, writer))
        self._transports -= pair

    async def _copy(self, reader, writer) -> None:
        """Copy until either side ends; then end the other one too."""
        try:
            while data := await reader.read(1 << 16):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
