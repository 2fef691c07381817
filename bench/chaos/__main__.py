"""`python -m bench.chaos [--seconds 600] [--seed N]`: the fault soak (`make chaos`).

Starts its own world, runs the workload under the seed's faults for --seconds, waits until
every clock has run out with everything healthy and every outbound event is delivered,
checks, writes the report and the picture, and prints the summary as its last line. Exits 1
when the checker found a violation.
"""
import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import uvloop

from bench.chaos import checker, deliveries, facts, faults, report
from bench.chaos.history import History
from bench.chaos.http import Http
from bench.chaos.people import People
from bench.chaos.workload import Workload
from bench.chaos.world import JOB_INTERVAL, PACKET_TTL, PAYMENT_TIMEOUT, World
from rtserver.settlement import UNSETTLED_GRACE
from storage.schema import EventState

RESULTS = Path(__file__).resolve().parent.parent / "results"
QUIET_TAIL = 10.0  # seconds at the end of the run with grabs and faults but no new packets
PENDING_WAIT = 60.0  # seconds the workload's last flows (late notifications) may take, at most
# Long enough for the last safety net: a share whose settlement message Redis lost (FLUSHALL
# just after its notification) is queued again by the sweep UNSETTLED_GRACE after its grab.
SETTLE_WAIT = PACKET_TTL + PAYMENT_TIMEOUT + UNSETTLED_GRACE + 5 * JOB_INTERVAL + 5
CONNECT_WAIT = 20.0
# The receiver's outages are chosen short enough that the senders' backoff (4 s doubling)
# brings every event within this, counted once the packets' clocks have run out.
DRAIN_WAIT = 120.0


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="how long the workload runs under faults (default 600)")
    parser.add_argument("--seed", type=int, default=1,
                        help="the same seed gives the same workload and fault schedule")
    return parser.parse_args(argv)


def say(line: str) -> None:
    print(f"chaos: {line}", file=sys.stderr, flush=True)


async def until(check, seconds: float, step: float = 0.25) -> bool:
    """Poll `check()` (a function, or a coroutine function) until it is true, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        ok = check()
        if asyncio.iscoroutine(ok):
            ok = await ok
        if ok:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)


def settled(world: World) -> bool:
    """Nothing is left for a clock to do: no payment pending, no paid packet still open, no
    grabbed share of a paid packet waiting to be credited."""
    with world.connect_mysql() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM red_packet p WHERE p.pay_status = 2"
                    " OR (p.pay_status = 1 AND p.finish_time = 0 AND p.is_cli_handle = 0)"
                    " OR (p.pay_status = 1 AND EXISTS (SELECT 1 FROM red_packet_log s"
                    " WHERE s.rp_id = p.id AND s.user_id IS NOT NULL"
                    " AND s.is_into_account = 0))")
        return cur.fetchone()["n"] == 0


def drained(world: World) -> bool:
    """No outbound event is waiting to be delivered (or tried again)."""
    with world.connect_mysql() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) AS n FROM outbound_events WHERE state = {EventState.PENDING}")
        return cur.fetchone()["n"] == 0


async def soak(args, world: World, history: History) -> tuple[list, list, dict]:
    http = Http(history, [world.node_url(i) for i in range(2)])
    people = People(args.seed, history, http, [u.replace("http", "ws") for u in http.node_urls],
                    world.token_secret, world.admin_token)
    await people.provision()
    keepers = people.start()
    await until(lambda: len(people.connected()) >= 0.9 * len(people.users), CONNECT_WAIT)
    workload = Workload(args.seed, people, world.sandbox_secret)
    schedule = faults.schedule(args.seed, args.seconds)
    start = history.now()
    for fault in schedule:
        fault.at += start
    say(f"running {args.seconds:.0f} s with {len(schedule)} faults (seed {args.seed})")
    workload.start(start + max(1.0, args.seconds - QUIET_TAIL), start + args.seconds)
    await asyncio.gather(faults.Injector(world, workload, schedule, history.now).run(),
                         asyncio.sleep(args.seconds))
    await asyncio.to_thread(world.heal)
    people.cycling = False  # sockets stay now, so their last `wallet` event can be checked
    await workload.stop(PENDING_WAIT)
    quiet_from = history.now()
    say("faults over; waiting for every clock to run out")
    done = await until(lambda: asyncio.to_thread(settled, world), SETTLE_WAIT, step=1.0)
    await asyncio.sleep(3 * JOB_INTERVAL)
    await workload.final_taps()
    await asyncio.sleep(3 * JOB_INTERVAL)  # what the last taps moved reaches every socket
    balances_at = history.now()
    events_drained = await until(lambda: asyncio.to_thread(drained, world), DRAIN_WAIT, step=1.0)
    with world.connect_mysql() as conn:
        found = facts.read(conn)
    audit = await asyncio.to_thread(world.cli, "audit")
    violations = checker.check(history, found, (audit.returncode, audit.stdout + audit.stderr),
                               quiet_from, balances_at)
    violations += deliveries.check(list(world.receiver.deliveries), world.receiver.forged, found,
                                   history.of("packet.grab"))
    await people.stop(keepers)
    http.close()
    return schedule, violations, {"settled": done, "events_drained": events_drained,
                                  "events": world.receiver.summary(),
                                  "audit": audit.stdout.strip().splitlines(),
                                  "log_lines": world.log_lines()}


def interrupted(signum, frame):
    raise KeyboardInterrupt  # the same way out as Ctrl-C: through `finally`, killing the world


def main(argv=None) -> int:
    args = parse(argv)
    run = f"{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    world = World(Path("var") / f"chaos-{run}")
    signal.signal(signal.SIGTERM, interrupted)
    history = History()
    try:
        say(f"starting the world under {world.directory}")
        world.up()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            schedule, violations, extra = runner.run(soak(args, world, history))
    finally:
        world.close()
    RESULTS.mkdir(exist_ok=True)
    json_path, png_path = RESULTS / f"chaos-{run}.json", RESULTS / f"chaos-{run}.png"
    full = report.write(json_path, args.seed, args.seconds, history, schedule, violations, extra)
    # The whole history beside it, for reading a violation's surroundings.
    json_path.with_suffix(".history.json").write_text(json.dumps(history.as_json(), default=str))
    drawn = report.draw(png_path, history, schedule, f"seed {args.seed}, {args.seconds:.0f} s,"
                                                     f" {full['violations']} violations")
    for kind, seen in full["violations_by_kind"].items():
        say(f"VIOLATION {kind} ×{seen['count']}: first {json.dumps(seen['first'], default=str)}")
    print(json.dumps({key: full[key] for key in (
        "seed", "seconds", "operations", "acknowledged_grabs", "faults", "events", "violations")} | {
        "report": str(json_path), "picture": str(png_path) if drawn else None}, default=str), flush=True)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
