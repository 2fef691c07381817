"""`python -m bench.gate`: what a connection that never completes its headers costs the server,
behind the header gate (rtserver/header_gate.py) and, as the baseline in the same run, taken
straight by Tornado's HTTP server as it comes.

A client process opens `--connections` sockets as fast as it can, sends each the start of a
request (`GET /x HTTP/1.1` and a header, no end), and closes the oldest once 3,000 are open, as
slowloris does when the server lets it in. The server runs alone in this process, on uvloop as
`rtserver serve` does; its CPU time (user and system) over the run, per connection, is printed
for each. No database, no Redis: only the taking in, the reading and the closing are measured.
"""
import argparse
import asyncio
import resource
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
import uvloop

from bench.run import raise_fd_limit
from rtserver.listener import BACKLOG, GuardedServer, PatientSocket
from rtserver.memory import Reclaimer

HELD = 3000  # connections the client keeps open at once
CLIENT = f"""
import socket, sys
port, count, held = int(sys.argv[1]), int(sys.argv[2]), []
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.send(b"GET /x HTTP/1.1\\r\\nHost: bench\\r\\n")
    held.append(sock)
    if len(held) > {HELD}:
        held.pop(0).close()
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def cost_per_connection(server: tornado.httpserver.HTTPServer, count: int) -> float:
    """Server CPU µs per connection while a client process opens and drops `count`."""
    listener = PatientSocket.taking(tornado.netutil.bind_sockets(0, "127.0.0.1",
                                                                 backlog=BACKLOG)[0])
    server.add_sockets([listener])
    before = cpu_seconds()
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(listener.getsockname()[1]), str(count))
    await client.wait()
    server.stop()
    return (cpu_seconds() - before) * 1e6 / count


async def main(count: int) -> None:
    app = tornado.web.Application([])
    gated = await cost_per_connection(
        GuardedServer(app, header_timeout=10, pace=None, reclaimer=Reclaimer()), count)
    tornado_alone = await cost_per_connection(
        tornado.httpserver.HTTPServer(app, idle_connection_timeout=10), count)
    print(f"{count:,} connections that never complete their headers, server CPU per connection:")
    print(f"  at the header gate: {gated:.1f} µs")
    print(f"  Tornado alone:      {tornado_alone:.1f} µs ({tornado_alone / gated:.1f}×)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=20_000)
    args = parser.parse_args()
    raise_fd_limit()  # both ends of the held connections are on this machine
    uvloop.run(main(args.connections))
