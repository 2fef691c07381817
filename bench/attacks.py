"""Attacks of `make siege` over WebSockets, each by one user and within the rate limit.

history: many sockets of one user ask for the longest history there is, faster than the server
can build it, and read what comes. unread: many sockets of one user ask for it twice and never
read. flood: one user opens sockets as fast as it can. Each job runs `seconds` from `go`, then
closes its sockets and reports what it got.
"""
import asyncio
import errno
import socket
import time
import urllib.parse

from bench.wire import Conn

CONNECT_TIMEOUT = 5.0  # seconds; a server that neither accepts nor refuses counts as a timeout
DIALLERS = 64  # sockets being opened at once
TICK = 0.1  # seconds between the history attack's bursts
TCP_STATES = {1: "established", 7: "closed", 8: "closed"}  # Linux tcp_states.h: 8 is CLOSE_WAIT


async def dial(url: str, source: str | None = None, rcvbuf: int | None = None) -> socket.socket:
    """A TCP socket connected to `url`'s host and port, from `source` and with a receive
    buffer of `rcvbuf` bytes (set before connecting, so that the window is offered small)."""
    address = urllib.parse.urlsplit(url)
    sock = socket.socket()
    sock.setblocking(False)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            # The port is chosen at connect, per destination: no port is taken twice.
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
    except BaseException:
        sock.close()
        raise
    return sock


def outcome(exc: BaseException) -> str:
    """A refused upgrade's HTTP status (`429`), or what else stopped the socket."""
    text = str(exc)
    if isinstance(exc, ConnectionError) and text.startswith("HTTP/"):
        return text.split()[1]
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return text or type(exc).__name__


def tcp_state(conn: Conn) -> str:
    """The socket's state from the kernel: a socket that is not read still learns it was shut."""
    sock = conn.transport.get_extra_info("socket")
    return TCP_STATES.get(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0], "other")


def count(tally: dict, key: str) -> None:
    tally[key] = tally.get(key, 0) + 1


async def open_many(job: dict, token: str, wanted: int, deadline: float,
                    rcvbuf: int | None = None) -> tuple[list[Conn], dict]:
    """Upgrade up to `wanted` sockets of one user before `deadline`, `DIALLERS` at a time; the
    sockets that got through, and how the others were refused."""
    opened, refused, tried = [], {}, iter(range(wanted))
    sources = job.get("sources") or [None]

    async def dialler(n: int) -> None:
        for attempt in tried:
            if time.monotonic() >= deadline:
                return
            try:
                sock = await asyncio.wait_for(
                    dial(job["url"], sources[(n + attempt) % len(sources)], rcvbuf),
                    CONNECT_TIMEOUT)
                opened.append(await asyncio.wait_for(Conn.open(job["url"], token, sock),
                                                     CONNECT_TIMEOUT))
            except (OSError, asyncio.TimeoutError) as exc:
                count(refused, outcome(exc))

    await asyncio.gather(*(dialler(n) for n in range(DIALLERS)))
    return opened, refused


def close_all(conns: list[Conn]) -> int:
    """Close the sockets; how many the server had closed already."""
    gone = sum(1 for c in conns if c.reader.done())
    for conn in conns:
        conn.transport.abort()  # a reset: nothing left lingering on either side
    return gone


async def history(_conns, job) -> dict:
    """`sockets` sockets, each sending `chat.history` at `per_second` and reading the answers."""
    deadline = time.monotonic() + job["seconds"]
    conns, refused = await open_many(job, job["token"], job["sockets"], deadline)
    answers, sizes = {}, []

    def on_answer(frame: dict, _at: float) -> None:
        if "re" not in frame:
            return  # hello and events
        if frame.get("ok"):
            sizes.append(len(frame["messages"]))
            count(answers, "history")
        else:
            count(answers, frame.get("code", "?"))

    for conn in conns:
        conn.on_event = on_answer
    started, paced, sent = time.monotonic(), 0, 0
    while (now := time.monotonic()) < deadline:
        owed = int(job["per_second"] * (now - started))  # by the clock: a late tick catches up
        burst, paced = owed - paced, owed
        for conn in conns:
            if not conn.reader.done():
                for _ in range(burst):
                    conn.post("chat.history", to_type="group", to_id=job["group"], limit=100)
                sent += burst
        await asyncio.sleep(TICK)
    return {"sockets": job["sockets"], "accepted": len(conns), "refused": refused,
            "sent": sent, "answers": answers,
            "messages_per_answer": [min(sizes), max(sizes)] if sizes else None,
            "closed_by_server": close_all(conns)}


async def unread(_conns, job) -> dict:
    """`sockets` sockets with a small receive buffer, each asking for the longest history
    twice and never reading; kept open for `seconds`."""
    deadline = time.monotonic() + job["seconds"]
    conns, refused = await open_many(job, job["token"], job["sockets"], deadline,
                                     rcvbuf=job["rcvbuf"])
    for conn in conns:
        conn.transport.pause_reading()
        for _ in range(2):
            conn.post("chat.history", to_type="group", to_id=job["group"], limit=100)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    states = {}
    for conn in conns:
        count(states, tcp_state(conn))
    close_all(conns)
    return {"sockets": job["sockets"], "accepted": len(conns), "refused": refused,
            "at_the_end": states}


async def flood(_conns, job) -> dict:
    """One user opening sockets as fast as it can, `attempts` at most within `seconds`; those
    the server lets in stay open until the end."""
    deadline = time.monotonic() + job["seconds"]
    conns, refused = await open_many(job, job["token"], job["attempts"], deadline)
    tried = len(conns) + sum(refused.values())
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    return {"attempts": tried, "accepted": len(conns), "refused": refused,
            "closed_by_server": close_all(conns)}


JOBS = {"history": history, "unread": unread, "flood": flood}
