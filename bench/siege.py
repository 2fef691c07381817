"""`make siege`: ordinary clients' service while one user, or one unauthenticated peer, attacks.

A real `rtserver serve` (rate limit on, its own database and Redis prefix) serves 200 ordinary
clients that ping and grab the packets a sender keeps paying into their group (bench/ordinary.py).
After a baseline, each attack runs for `--seconds` and the server is watched for `--recover`
seconds after it: the clients' latency and failures, the server's memory, descriptors and log.
The targets are reported, never asserted. Prints a markdown table, writes
bench/results/siege-<time>.json, and ends with a one-line JSON summary.
"""
import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import time
import urllib.request

from bench.run import RESULTS, Loads, Server, drop, progress, provision, with_database
from bench.siege_report import figures_of, summary, table
from bench.watch import Watch
from bench.wire import Conn
from storage.migrate import migrate

PHASES = ("history", "slowloris", "unread", "flood")
MEMBERS, SENDER, ATTACKERS = 200, 1, 1001  # user ids: the sender, then members; attackers
GROUP, BIG_GROUP = 900_001, 900_002  # the members' group; the attackers' group of long messages
PACKETS_PER_S = 2
LONG_TEXT = "恭喜发财新年快乐" * 250  # 2,000 characters, the most chat.send takes
LONG_MESSAGES = 100
SEND_PACE = 20  # chat.send a second while filling the history: well under the rate limit
RATE_LIMIT = 50  # the server's default; every attack stays under it
GRACE = 30  # seconds an attack may take past its time to close its sockets and report
REJOIN = 5  # seconds the ordinary clients are given to dial a restarted server again
REJOIN_MOST = 60  # seconds waited for every one of them before an attack starts all the same


def attack(name: str, args, server: Server) -> tuple[dict, list[dict], int]:
    """The load job of an attack, what each process gets of it, how many processes."""
    common = {"kind": name, "url": server.ws_url, "seconds": args.seconds}
    token = server.token(ATTACKERS + PHASES.index(name))
    if name == "history":
        return {**common, "token": token, "group": BIG_GROUP, "sockets": 100,
                "per_second": 45}, [{}], 1
    if name == "slowloris":
        # Four processes, two source addresses each: 2,500 connections per address at most.
        return common, [{"count": args.slowloris // 4,
                         "sources": [f"127.0.0.{2 + 2 * i}", f"127.0.0.{3 + 2 * i}"]}
                        for i in range(4)], 4
    if name == "unread":
        return {**common, "token": token, "group": BIG_GROUP, "sockets": args.unread,
                "rcvbuf": 4096}, [{}], 1
    return {**common, "token": token, "attempts": args.flood,
            "sources": [f"127.0.0.{n}" for n in range(10, 14)]}, [{}], 1


async def fill_history(server: Server, writer: int) -> None:
    """The attackers' group gets `LONG_MESSAGES` of the longest text, paced under the limit."""
    conn = await Conn.open(server.ws_url, server.token(writer))
    for _ in range(LONG_MESSAGES):
        reply = await conn.request("chat.send", to_type="group", to_id=BIG_GROUP, text=LONG_TEXT)
        assert reply["ok"], reply
        await asyncio.sleep(1 / SEND_PACE)
    conn.close()


def set_up(server: Server) -> None:
    provision(server, SENDER, 1, "10000.00")
    members = provision(server, SENDER + 1, MEMBERS, "0.01")
    attackers = provision(server, ATTACKERS, len(PHASES), "0.01")
    server.admin("PUT", f"/admin/groups/{GROUP}", {"name": "siege", "members": [SENDER] + members})
    server.admin("PUT", f"/admin/groups/{BIG_GROUP}", {"name": "长消息", "members": attackers})
    asyncio.run(fill_history(server, ATTACKERS))


class Siege:
    """The server, the ordinary clients, and whatever attack is running."""

    def __init__(self, server: Server, watch: Watch, ordinary: Loads, args):
        self.server, self.watch, self.ordinary, self.args = server, watch, ordinary, args
        self.attackers: Loads | None = None

    def window(self) -> list[dict]:
        return self.ordinary.ask("mark")

    def baseline(self) -> dict:
        self.window()  # the clients' first seconds are not the baseline
        idle, log_mark = self.watch.sample(), self.log_size()
        watched = self.watch.during(self.args.seconds)
        return {"idle": idle, "attack": watched, "attack_window": self.window(),
                "log_growth": self.log_size() - log_mark}

    def phase(self, name: str) -> dict:
        """Attack for `--seconds`, then watch for `--recover` seconds (unless it was stopped)."""
        idle, log_mark = self.watch.sample(), self.log_size()
        self.window()
        job, extra, processes = attack(name, self.args, self.server)
        self.attackers = Loads(job, [], extra, processes)
        self.attackers.say("go")
        watched = self.watch.during(self.args.seconds + GRACE, self.attack_over)
        got = self.attack_results(kill=watched["stopped"] is not None)
        attack_window = self.window()
        if watched["stopped"]:
            stop(self.server)  # nothing left to recover
        else:
            self.watch.during(self.args.recover)
        return {"idle": idle, "attack": watched, "got": got, "attack_window": attack_window,
                "after": self.watch.sample(), "recovery_window": self.window(),
                "log_growth": self.log_size() - log_mark}

    def log_size(self) -> int:
        return self.server.log.stat().st_size

    def attack_over(self) -> bool:
        return all(proc.poll() is not None for proc in self.attackers.procs)

    def attack_results(self, kill: bool) -> list[dict]:
        """Each attack process's report; a process still running past its time is killed."""
        found = []
        for proc in self.attackers.procs:
            if kill or proc.poll() is None:
                proc.kill()
            line = proc.stdout.readline()
            found.append(json.loads(line) if line else {"error": "killed before it reported"})
            proc.wait(timeout=10)
        self.attackers = None
        return found

    def restart(self, name: str) -> None:
        """Keep the log of the attack `name`, and start a fresh server on the same port: the
        next attack is not charged with what this one left (a backlog, memory not given back)."""
        stop(self.server)
        self.server.log.rename(self.server.log.with_name(f"server-{name}.log"))
        start(self.server)
        time.sleep(REJOIN)
        # An attack on connections (slowloris, the flood) fills the queue that a client still
        # dialling waits in: each attack starts once every ordinary client is back.
        deadline = time.monotonic() + REJOIN_MOST
        while (back := sockets_open(self.server)) < MEMBERS + 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        if back < MEMBERS + 1:
            progress(f"only {back} of the {MEMBERS + 1} ordinary clients came back")

    def stop_all(self) -> None:
        for loads in (self.attackers, self.ordinary):
            for proc in loads.procs if loads else ():
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)


def sockets_open(server: Server) -> int:
    """The server's open WebSocket connections, as its metrics say."""
    text = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
    return next(int(float(line.split()[1])) for line in text.splitlines()
                if line.startswith("rtserver_connections "))


def start(server: Server) -> None:
    # The server's own descriptor limit, not one the bench raised: raising it is its business.
    server.start(f"--rate-limit={RATE_LIMIT}", raise_fds=False)


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.wait(timeout=30)


def interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")  # so that every `finally` cleans up


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="length of each attack")
    parser.add_argument("--recover", type=float, default=30,
                        help="seconds the server is watched after each attack")
    parser.add_argument("--only", help=f"some of the attacks: {','.join(PHASES)}")
    parser.add_argument("--quick", action="store_true",
                        help="10 s phases, 2,000 slowloris connections, 300 never-readers")
    parser.add_argument("--rss-limit-mb", type=int, default=4096,
                        help="past this RSS the attack and the server are killed")
    parser.add_argument("--log-limit-mb", type=int, default=1024,
                        help="past this much log in one attack the attack and the server are killed")
    args = parser.parse_args(argv)
    args.phases = args.only.split(",") if args.only else list(PHASES)
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; known: {','.join(PHASES)}")
    if args.quick:
        args.seconds, args.recover = min(args.seconds, 10), min(args.recover, 10)
    args.slowloris, args.unread, args.flood = ((2000, 300, 2000) if args.quick
                                               else (20_000, 1500, 15_000))
    return args


def main() -> int:
    args = parse()
    signal.signal(signal.SIGTERM, interrupted)
    RESULTS.mkdir(exist_ok=True)
    run = secrets.token_hex(3)
    mysql_url = with_database(os.environ.get("RTSERVER_MYSQL_URL",
                                             "mysql://root@127.0.0.1:3306/rtserver"),
                              f"rtserver_siege_{run}")
    redis_url = os.environ.get("RTSERVER_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"rts:{run}:"
    migrate(mysql_url)
    server = Server(mysql_url, redis_url, prefix)
    del server.env["RTSERVER_ACCEPT_RATE"]  # attacked, the node runs as deployed: paced
    siege = None
    try:
        start(server)
        progress("provisioning users, groups and the long history")
        set_up(server)
        # Long enough for every phase and restart; the clients stop by themselves after it.
        budget = 120 + (1 + len(args.phases)) * (args.seconds + GRACE + args.recover + REJOIN)
        ordinary = Loads({"kind": "ordinary", "url": server.ws_url, "group": GROUP,
                          "duration": budget, "packets_per_s": PACKETS_PER_S},
                         [server.token(u) for u in range(SENDER + 1, SENDER + 1 + MEMBERS)],
                         [{"sender_token": server.token(SENDER)}, {}])
        watch = Watch(server, args.rss_limit_mb << 10, args.log_limit_mb << 20)
        siege = Siege(server, watch, ordinary, args)
        ordinary.say("go")
        time.sleep(3)
        progress("baseline")
        raw = {"baseline": siege.baseline()}
        for n, name in enumerate(args.phases):
            progress(f"{name}: {args.seconds:.0f} s of attack, {args.recover:.0f} s of recovery")
            raw[name] = siege.phase(name)
            if n + 1 < len(args.phases):
                siege.restart(name)
    finally:
        if siege:
            siege.stop_all()
        stop(server)
        drop(mysql_url, redis_url, prefix)
    figures = figures_of(raw, args)
    print(table(figures))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"siege-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    print(f"\nbench/results/{path.name}")
    print(json.dumps(summary(figures, f"bench/results/{path.name}"), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
