"""A local Redis Cluster of three masters, from the system's redis-server, for trying
`--redis-cluster` (`make cluster`) and for the tests that run against it.

    .venv/bin/python tools/cluster.py up DIR     # prints the URL of one node
    .venv/bin/python tools/cluster.py down DIR
    .venv/bin/python tools/cluster.py try DIR    # the cluster and two rtserver nodes, until ^C
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import redis

MASTERS = 3


def free_ports(count: int) -> list[int]:
    """Ports free now whose cluster-bus ports (port + 10000) are free too."""
    ports = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536 and port not in ports:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            ports.append(port)
    return ports


def up(directory: pathlib.Path) -> str:
    """Start the masters under `directory`, join them into a cluster; return one node's URL."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not (server and cli):
        raise SystemExit("cluster: redis-server and redis-cli are needed "
                         "(apt-get install redis-server)")
    directory = directory.resolve()  # redis-server reads its paths after changing into --dir
    directory.mkdir(parents=True, exist_ok=True)
    ports = free_ports(MASTERS)
    for port in ports:
        node = directory / str(port)
        node.mkdir(exist_ok=True)
        subprocess.run([server, "--port", str(port), "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes", "--cluster-config-file", str(node / "nodes.conf"),
                        "--save", "", "--appendonly", "no", "--dir", str(node),
                        "--daemonize", "yes", "--pidfile", str(node / "pid"),
                        "--logfile", str(node / "log")], check=True)
    for port in ports:
        wait(lambda: redis.Redis(port=port).ping())
    subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                    "--cluster-replicas", "0", "--cluster-yes"], check=True,
                   stdout=subprocess.DEVNULL)
    for port in ports:
        wait(lambda: redis.Redis(port=port).cluster("info")["cluster_state"] == "ok")
    (directory / "ports").write_text(" ".join(map(str, ports)))
    return f"redis://127.0.0.1:{ports[0]}/0"


def down(directory: pathlib.Path) -> None:
    for pid_file in directory.glob("*/pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
    time.sleep(0.2)
    shutil.rmtree(directory, ignore_errors=True)


def wait(check, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("cluster: the nodes did not come up")
        time.sleep(0.1)


def interrupted(signum, frame):
    raise KeyboardInterrupt


def try_it(directory: pathlib.Path, ports=(8888, 8889)) -> None:
    """Run two rtserver nodes (--dev, jobs inline) on the cluster until interrupted."""
    signal.signal(signal.SIGTERM, interrupted)  # stop everything on SIGTERM as on ^C
    url = up(directory)
    subprocess.run([sys.executable, "-m", "server.cli", "migrate"], check=True)
    nodes = [subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--dev",
                               "--redis-cluster", f"--redis-url={url}", f"--port={port}"])
             for port in ports]
    print(f"cluster: Redis Cluster at {url}; rtserver at "
          + " and ".join(f"http://127.0.0.1:{p}" for p in ports) + " (^C stops all)", flush=True)
    try:
        for node in nodes:
            node.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for node in nodes:
            node.terminate()
            node.wait()
        down(directory)


if __name__ == "__main__":
    command, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    {"up": lambda: print(up(folder)), "down": lambda: down(folder),
     "try": lambda: try_it(folder)}[command]()
