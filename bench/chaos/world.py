"""The soak's own world: a private MariaDB and Redis on free ports, a TCP proxy in front of each,
two `rtserver serve` nodes and one `rtserver jobs` runner, all under one directory, and the
receiver of their outbound events (receiver.py).

Nodes and the runner reach MariaDB and Redis through the proxies only, so that cutting a proxy
cuts them off. Everything started here is killed by `close()`, whatever happened meanwhile.
"""
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pymysql

from bench.chaos.receiver import Receiver
from tools import services
from tools.child import Child
from tools.tcp_proxy import TcpProxy, free_port

READY_TIMEOUT = 60.0  # seconds a process gets to answer; InnoDB recovery can take a while
DATABASE = "rtserver"

# Short clocks, so that expiry, voiding and settlement happen many times in one run.
PACKET_TTL, PAYMENT_TIMEOUT, JOB_INTERVAL = 20, 10, 1
EVENTS_TIMEOUT = 2  # seconds a POST of an event may take: a hanging receiver costs little


class Died(RuntimeError):
    """The process exited before it was ready."""


def wait_until(check, child: Child, what: str, deadline: float) -> None:
    """Poll `check()` until it is true; fail at once if `child` has died."""
    while not check():
        if not child.running:
            raise Died(f"{what} exited with {child.proc.returncode}:\n{child.log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in time:\n{child.log()}")
        time.sleep(0.05)


class Process(Child):
    """A child the faults can kill, terminate, stop and continue, and start again in place.

    `rtserver` exits when MariaDB or Redis does not answer as it starts; like a supervisor
    (systemd's Restart=), `start` tries again until READY_TIMEOUT has passed.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, env=None, ready=None,
                 supervised: bool = False):
        super().__init__(argv, log_path, env)
        self.name, self.supervised = name, supervised
        self.ready = ready or self._up_a_while

    def _up_a_while(self) -> bool:
        """For a process with nothing to ask: it has not exited in its first seconds."""
        return time.monotonic() - self.started > 2.0

    def start(self) -> "Process":
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            super().start()
            self.started = time.monotonic()
            try:
                wait_until(self.ready, self, self.name, deadline)
                return self
            except Died:
                if not self.supervised or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def signal(self, signum: int) -> None:
        if self.running:
            self.proc.send_signal(signum)

    def stop_gracefully(self, timeout: float) -> None:
        """SIGTERM; SIGKILL if it is still there after `timeout` seconds."""
        self.signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def node_answers(url: str) -> bool:
    """Listening and answering HTTP: /healthz may say 503 while a dependency is cut."""
    try:
        urllib.request.urlopen(url + "/healthz", timeout=1)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class World:
    def __init__(self, directory: Path):
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.token_secret, self.admin_token = secrets.token_hex(16), secrets.token_hex(16)
        self.sandbox_secret = secrets.token_hex(16)
        self.receiver = Receiver(secrets.token_hex(16))
        self.processes: list[Process] = []
        self.proxies: list[TcpProxy] = []
        self.nodes: list[Process] = []

    # starting

    def up(self) -> None:
        self.mysql = self._mariadb()
        self.redis = self._redis()
        self.mysql_proxy, self.redis_proxy = TcpProxy(self.mysql_port), TcpProxy(self.redis_port)
        self.proxies = [self.mysql_proxy, self.redis_proxy]
        for proxy in self.proxies:
            proxy.open()
        self.cli("migrate", direct=True)
        self.receiver.open()
        self.node_ports = [free_port(), free_port()]
        self.nodes = [self._start(self._node(i)) for i in range(len(self.node_ports))]
        self.jobs = self._start(Process("jobs", self._rtserver("jobs"), self._log("jobs"),
                                        self.env(), supervised=True))

    def _mariadb(self) -> Process:
        directory = self.directory / "mariadb"
        directory.mkdir(exist_ok=True)
        result = subprocess.run(services.install_db_command(directory / "data"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}")
        self.mysql_port = free_port()
        return self._start(Process(
            "mariadbd", services.mariadbd_command(directory, self.mysql_port),
            directory / "stdout.log",
            ready=lambda: services.mysql_answers("127.0.0.1", self.mysql_port)))

    def _redis(self) -> Process:
        directory = self.directory / "redis"
        directory.mkdir(exist_ok=True)
        self.redis_port = free_port()
        url = f"redis://127.0.0.1:{self.redis_port}/0"
        return self._start(Process("redis-server", services.redis_command(directory,
                                                                          self.redis_port),
                                   directory / "stdout.log",
                                   ready=lambda: services.redis_answers(url)))

    def _node(self, index: int) -> Process:
        url = self.node_url(index)
        return Process(f"node{index}", self._rtserver(
            "serve", f"--port={self.node_ports[index]}", "--jobs=off"),
            self._log(f"node{index}"), self.env(), ready=lambda: node_answers(url),
            supervised=True)

    def _rtserver(self, command: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "server.cli", command, *args,
                f"--packet-ttl={PACKET_TTL}", f"--payment-timeout={PAYMENT_TIMEOUT}",
                f"--job-interval={JOB_INTERVAL}", f"--sandbox-secret={self.sandbox_secret}",
                f"--events-url={self.receiver.url}", f"--events-secret={self.receiver.secret}",
                f"--events-timeout={EVENTS_TIMEOUT}"]

    def _start(self, process: Process) -> Process:
        self.processes.append(process)
        return process.start()

    def _log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    # addresses

    def mysql_url(self, direct: bool = False) -> str:
        port = self.mysql_port if direct else self.mysql_proxy.port
        return f"mysql://root@127.0.0.1:{port}/{DATABASE}"

    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_proxy.port}/0"

    def node_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.node_ports[index]}"

    def env(self, direct: bool = False) -> dict[str, str]:
        return dict(os.environ, RTSERVER_MYSQL_URL=self.mysql_url(direct),
                    RTSERVER_REDIS_URL=self.redis_url(), RTSERVER_TOKEN_SECRET=self.token_secret,
                    RTSERVER_ADMIN_TOKEN=self.admin_token)

    def cli(self, command: str, direct: bool = True) -> subprocess.CompletedProcess:
        """Run `rtserver COMMAND` (the real command line), straight at MariaDB by default."""
        if command == "migrate":
            self._create_database()
        return subprocess.run([sys.executable, "-m", "server.cli", command],
                              env=self.env(direct), capture_output=True, text=True, timeout=120)

    def _create_database(self) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=self.mysql_port, user="root")
        with conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")

    def connect_mysql(self) -> pymysql.connections.Connection:
        """A connection of the checker's own, past the proxy."""
        return pymysql.connect(host="127.0.0.1", port=self.mysql_port, user="root",
                               database=DATABASE, autocommit=True,
                               cursorclass=pymysql.cursors.DictCursor)

    # healing and ending

    def heal(self) -> list[str]:
        """Bring back whatever a fault left down: every proxy open, every process running, the
        receiver listening and answering. Returns what could not be brought back."""
        failed = []
        self.receiver.open()
        self.receiver.misbehave("ok")
        for proxy in self.proxies:
            if not proxy.listening:
                proxy.open()
        for process in self.processes:
            process.signal(signal.SIGCONT)
            if not process.running:
                try:
                    process.start()
                except RuntimeError as exc:
                    failed.append(str(exc)[:500])
        return failed

    def close(self) -> None:
        """Kill everything this world started; safe to call twice."""
        for process in reversed(self.processes):
            process.signal(signal.SIGCONT)
            try:
                process.kill()
            except Exception:  # noqa: BLE001 - the next process must die too
                pass
        for proxy in self.proxies:
            try:
                proxy.stop()
            except Exception:  # noqa: BLE001
                pass
        try:
            self.receiver.stop()
        except Exception:  # noqa: BLE001
            pass
        self.processes, self.proxies = [], []
        # The logs stay for reading; the datadir (over 100 MB, nothing to learn) goes.
        shutil.rmtree(self.directory / "mariadb" / "data", ignore_errors=True)

    def log_lines(self) -> dict[str, int]:
        """Lines each rtserver process wrote: an outage should not flood them."""
        return {p.name: p.log_path.read_bytes().count(b"\n") for p in self.processes
                if p.name.startswith(("node", "jobs")) and p.log_path.exists()}
