"""`rtserver serve --processes 2`, a real subprocess: two children answer on one port, a storm
over both pays exactly, a killed child is replaced while the other serves, SIGTERM to the parent
stops them all gracefully, the children follow a parent killed with SIGKILL, and a child that
keeps dying makes the parent exit 1.

Which process answered is read from `/metrics` (`rtserver_process_info`); each fetch is a new
connection, which the kernel gives to one of the two listening sockets by its address hash.
"""
import asyncio
import os
import re
import signal
import time

import pytest
import tornado.httpclient
import tornado.netutil

from rtserver.config import load
from server.processes import check_port_free
from tests.client import Admin
from tests.conftest import IDS
from tests.processes import Server, free_port
from tests.test_nodes import storm

MEET_TIMEOUT = 20.0  # seconds to meet both children: a restarted one waits a second to start
PID = re.compile(r'^rtserver_process_info\{.*pid="(\d+)".*\} 1\.0$', re.M)
CONNECTIONS = re.compile(r"^rtserver_connections (\S+)$", re.M)


async def serving(children, settings, *args: str) -> Server:
    """`rtserver serve --processes=2`, once both children answer."""
    server = children.server(settings, "--processes=2", *args)
    await server.until_healthy()
    await children_answering(server)
    return server


async def scrape(server: Server) -> tuple[int, int]:
    """(pid, open sockets) of the child that answered one `/metrics`."""
    response = await tornado.httpclient.AsyncHTTPClient().fetch(server.base_url + "/metrics")
    text = response.body.decode()
    return int(PID.search(text)[1]), int(float(CONNECTIONS.search(text)[1]))


async def children_answering(server: Server) -> dict[int, int]:
    """Open sockets by pid of the two children, met by fetching `/metrics` until both answer."""
    seen = {}
    deadline = time.monotonic() + MEET_TIMEOUT
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"met only {seen}"
        pid, sockets = await scrape(server)
        seen[pid] = sockets
        await asyncio.sleep(0.01)
    return seen


def status(pid: int, field: str) -> str | None:
    """A field of /proc/PID/status; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as lines:
            return re.search(rf"^{field}:\s+(\S+)", lines.read(), re.M)[1]
    except FileNotFoundError:
        return None


def parent_of(pid: int) -> int:
    return int(status(pid, "PPid"))


def gone(pid: int) -> bool:
    """Exited: reaped, or a zombie that the reaper of orphans has not collected yet."""
    return status(pid, "State") in (None, "Z")


async def wait_for(proc, timeout: float = 40) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, timeout)


def test_processes_must_be_one_or_more_and_the_port_fixed_and_free():
    assert load([], {}).processes == 1
    assert load(["--processes", "4"], {}).processes == 4
    with pytest.raises(SystemExit, match="--processes must be 1 or more"):
        load(["--processes=0"], {})
    with pytest.raises(SystemExit, match="needs a fixed --port"):
        check_port_free(0, "127.0.0.1")
    # Another `--processes` server's socket: SO_REUSEPORT would let the children share it.
    [taken] = tornado.netutil.bind_sockets(0, "127.0.0.1", reuse_port=True)
    with taken, pytest.raises(OSError):
        check_port_free(taken.getsockname()[1], "127.0.0.1")


@pytest.mark.gen_test(timeout=60)
async def test_two_processes_share_the_port_and_a_storm_over_both_pays_exactly(
        settings, children, dial, audit):
    server = await serving(children, settings)
    admin = Admin(server.base_url, settings.admin_token, IDS)
    await storm(server, server, admin, dial)
    sockets = await children_answering(server)
    assert {parent_of(pid) for pid in sockets} == {server.proc.pid}
    assert sorted(sockets.values())[0] > 0 and sum(sockets.values()) == 24, sockets
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_a_killed_process_is_replaced_while_the_other_serves(settings, children):
    server = await serving(children, settings)
    first, second = await children_answering(server)
    os.kill(first, signal.SIGKILL)
    while not gone(first):  # exited: its listening socket is closed with it
        await asyncio.sleep(0.01)
    http = tornado.httpclient.AsyncHTTPClient()
    for _ in range(20):  # the replacement waits a second before starting
        assert (await http.fetch(server.base_url + "/healthz")).code == 200
    answering = await children_answering(server)
    assert first not in answering and second in answering and server.running
    assert f"(pid {first}) was killed by SIGKILL; starting it again" in server.log_path.read_text()


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_to_the_parent_stops_every_process_gracefully(settings, children, dial):
    server = await serving(children, settings)
    uid = await Admin(server.base_url, settings.admin_token, IDS).user()
    clients = [await dial(server.base_url, uid) for _ in range(16)]
    sockets = await children_answering(server)
    assert sum(sockets.values()) == 16 and 0 not in sockets.values(), sockets
    server.proc.terminate()
    for client in clients:
        assert await asyncio.wait_for(client.closed, 15) == 1001
    assert await wait_for(server.proc) == 0
    assert all(gone(pid) for pid in sockets)


@pytest.mark.gen_test(timeout=60)
async def test_the_children_stop_when_the_parent_is_killed(settings, children):
    server = await serving(children, settings)
    pids = await children_answering(server)
    server.proc.kill()
    deadline = time.monotonic() + 15
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "a child serves on without its parent"
        await asyncio.sleep(0.05)


@pytest.mark.gen_test(timeout=60)
async def test_a_process_that_keeps_dying_makes_the_parent_exit_1(settings, children):
    nowhere = f"mysql://root@127.0.0.1:{free_port()}/nowhere"  # refused: every child dies
    server = children.server(settings, "--processes=2", f"--mysql-url={nowhere}")
    assert await wait_for(server.proc) == 1
    assert "restarts within 60 s: giving up" in server.log_path.read_text()
