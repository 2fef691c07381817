"""Real processes for the recovery tests: a private redis-server and `rtserver` children (the TCP
proxy that cuts MariaDB off and brings it back is `tools/tcp_proxy.py`).

Every child is started by a `Children` registry, which kills what is still running when the test
ends, whatever happened in it.
"""
import asyncio
import os
import shutil
import sys
import time

import pytest
import redis as sync_redis
import tornado.httpclient

from rtserver.config import Settings
from tools.child import Child
from tools.tcp_proxy import TcpProxy, free_port  # noqa: F401 (TcpProxy: the tests' import)

START_TIMEOUT = 15.0  # seconds a child gets to answer; they usually need well under one


def rtserver_env(settings: Settings) -> dict[str, str]:
    """The environment that points an `rtserver` child at this run's database and Redis."""
    return dict(os.environ, RTSERVER_MYSQL_URL=settings.mysql_url,
                RTSERVER_REDIS_URL=settings.redis_url, RTSERVER_REDIS_PREFIX=settings.redis_prefix,
                RTSERVER_TOKEN_SECRET=settings.token_secret,
                RTSERVER_ADMIN_TOKEN=settings.admin_token)


class RedisServer(Child):
    """A redis-server of the test's own (no persistence), to flush, kill and restart at will."""

    def __init__(self, directory, port: int | None = None):
        binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin")
        if binary is None:
            pytest.skip("no redis-server on this machine (apt-get install redis-server)")
        directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        super().__init__([binary, "--port", str(self.port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", str(directory)],
                         directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check_alive()
            try:
                with sync_redis.from_url(self.url, socket_timeout=1) as client:
                    client.ping()
                return self
            except sync_redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def flushall(self) -> None:
        with sync_redis.from_url(self.url) as client:
            client.flushall()


class Rtserver(Child):
    """`rtserver COMMAND ...` (the real command line) against this run's database and Redis."""

    def __init__(self, settings: Settings, command: str, *args: str, log_path):
        super().__init__([sys.executable, "-m", "server.cli", command, *args], log_path,
                         rtserver_env(settings))


class Server(Rtserver):
    """`rtserver serve` on a port of its own, jobs off and no rate limit, restartable there."""

    def __init__(self, settings: Settings, log_path, *args: str):
        self.port = free_port()
        super().__init__(settings, "serve", f"--port={self.port}", "--jobs=off",
                         "--rate-limit=0", *args, log_path=log_path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def until_healthy(self) -> None:
        """Wait until /healthz answers 200."""
        http = tornado.httpclient.AsyncHTTPClient()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check_alive()
            try:
                response = await http.fetch(self.base_url + "/healthz", raise_error=False,
                                            request_timeout=2)
                if response.code == 200:
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise AssertionError(f"rtserver not healthy after {START_TIMEOUT}s:\n{self.log()}")
            await asyncio.sleep(0.05)


class Children:
    """Starts children for one test and kills every one still running when it ends."""

    def __init__(self, directory):
        self.directory = directory
        self.started: list[Child] = []

    def __enter__(self) -> "Children":
        return self

    def __exit__(self, *exc_info) -> None:
        for child in reversed(self.started):
            child.kill()

    def start(self, child: Child) -> Child:
        self.started.append(child)
        return child.start()

    def redis(self) -> RedisServer:
        return self.start(RedisServer(self.directory / "redis"))

    def server(self, settings: Settings, *args: str) -> Server:
        return self.start(Server(settings, self._log("serve"), *args))

    def rtserver(self, settings: Settings, command: str, *args: str) -> Rtserver:
        return self.start(Rtserver(settings, command, *args, log_path=self._log(command)))

    def _log(self, name: str):
        return self.directory / f"{name}-{len(self.started)}.log"
