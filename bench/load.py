"""A load-generator process: `python -m bench.load` reads one job (JSON) on stdin, connects its
clients, prints `ready`, waits for `go`, runs, and prints its measurements as one JSON line.

Jobs: ping (closed loop for a duration), grab (each client grabs every packet in its own
random order), listen (record when each `message` event arrives), idle (just stay connected);
and `make siege`'s: ordinary (bench/ordinary.py) and the attacks (bench/attacks.py,
bench/slowloris.py), which open their own sockets.
"""
import asyncio
import itertools
import json
import random
import resource
import sys
import time

import uvloop

from bench import attacks
from bench.ordinary import ordinary
from bench.slowloris import slowloris
from bench.wire import Conn


async def connect_all(url: str, tokens: list[str], batch: int = 200) -> list[Conn]:
    conns = []
    for i in range(0, len(tokens), batch):
        conns += await asyncio.gather(*(Conn.open(url, t) for t in tokens[i:i + batch]))
    return conns


async def ping(conns, job) -> dict:
    latencies, deadline = [], time.perf_counter() + job["duration"]

    async def loop(conn):
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await conn.request("ping")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in conns))
    return {"count": len(latencies), "seconds": time.perf_counter() - started,
            "latencies": latencies}


async def grab(conns, job) -> dict:
    """Every client grabs each packet of `rp_ids` in its own random order; with a `duration`,
    again and again in that order until the time is up (a closed loop, like `ping`)."""
    by_result: dict[str, list[float]] = {}
    won: dict[str, dict[str, str]] = {}
    deadline = time.perf_counter() + job.get("duration", 0)

    async def loop(index, conn):
        order = list(job["rp_ids"][index] if isinstance(job["rp_ids"][0], list) else job["rp_ids"])
        random.shuffle(order)
        for n, rp_id in enumerate(itertools.cycle(order)):
            if n >= len(order) and time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            reply = await conn.request("packet.grab", rp_id=rp_id)
            result = reply.get("result", reply.get("code"))
            by_result.setdefault(result, []).append(time.perf_counter() - started)
            if result == "ok":
                won.setdefault(job["user_ids"][index], {})[str(rp_id)] = reply["money"]

    started = time.perf_counter()
    await asyncio.gather(*(loop(i, c) for i, c in enumerate(conns)))
    return {"seconds": time.perf_counter() - started, "by_result": by_result, "won": won}


async def listen(conns, job) -> dict:
    """Record the arrival time of every `message` event: chat:<message id> or packet:<rp_id>."""
    arrivals: dict[str, list[float]] = {}
    expected = job["messages"] * len(conns)
    done = asyncio.Event()

    def on_event(frame, at):
        if frame.get("ev") == "message":
            message = frame["message"]
            key = (f"packet:{message['packet']['rp_id']}" if message["kind"] == "packet"
                   else f"chat:{message['id']}")
            arrivals.setdefault(key, []).append(at)
            if sum(map(len, arrivals.values())) >= expected:
                done.set()

    for conn in conns:
        conn.on_event = on_event
    print("listening", flush=True)
    try:
        await asyncio.wait_for(done.wait(), job["timeout"])
    except asyncio.TimeoutError:
        pass
    return {"arrivals": arrivals}


async def idle(conns, job) -> dict:
    print("connected", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return {"open": sum(1 for c in conns if not c.reader.done())}


JOBS = {"ping": ping, "grab": grab, "listen": listen, "idle": idle, "ordinary": ordinary,
        "slowloris": slowloris, **attacks.JOBS}


async def main() -> None:
    job = json.loads(sys.stdin.readline())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = await connect_all(job["url"], job["tokens"])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    result = await JOBS[job["kind"]](conns, job)
    print(json.dumps(result), flush=True)
    for conn in conns:
        conn.close()


if __name__ == "__main__":
    # uvloop here too, so that the load generators are not what limits the figures.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
