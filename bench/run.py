"""`make bench`: a real `rtserver serve` driven by load-generator processes over real sockets.

Prints one table and writes bench/results/<time>.json. A run that finds a wrong result (shares
that do not add up, a user with two shares, a wallet off by a fen, the audit failing) prints the
error and reports no figures.
"""
import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pymysql

from bench import baseline
from bench.wire import Conn, percentile
from rtserver.auth import issue_token
from storage.db import MysqlUrl, to_fen
from storage.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOAD_PROCESSES = 2
# Seconds of quiet before each timed scenario: the background work MariaDB keeps doing after a
# burst of writes (purging old row versions, flushing pages) is not charged to the next one.
SETTLE_SECONDS = 3
WARM_UP_PACKETS = 5
STARTED = time.monotonic()


class Wrong(Exception):
    """The run found money or shares that do not add up."""


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def with_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


class Server:
    """`rtserver serve` in its own process, on its own database and Redis prefix."""

    def __init__(self, mysql_url: str, redis_url: str, prefix: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log = RESULTS / "server.log"  # the server's stderr
        self.token_secret, self.admin_token = secrets.token_hex(32), secrets.token_hex(32)
        self.env = dict(os.environ, RTSERVER_MYSQL_URL=mysql_url, RTSERVER_REDIS_URL=redis_url,
                        RTSERVER_REDIS_PREFIX=prefix, RTSERVER_TOKEN_SECRET=self.token_secret,
                        RTSERVER_ADMIN_TOKEN=self.admin_token,
                        # The bench's own clients dial by the thousand at once and are no flood:
                        # taken as they come (a variable, which older checkouts ignore).
                        RTSERVER_ACCEPT_RATE="0")

    def sibling(self) -> "Server":
        """Another node on the same database, Redis and secrets."""
        other = type(self).__new__(type(self))  # an older checkout's node stays one (bench.ab)
        other.__dict__.update(self.__dict__)
        other.port = free_port()
        other.url, other.ws_url = f"http://127.0.0.1:{other.port}", f"ws://127.0.0.1:{other.port}"
        return other

    def start(self, *flags: str, raise_fds: bool = True, command: list[str] | None = None,
              cwd: Path | None = None) -> None:
        """Start serving; `flags` come last, so they win over the bench's own (`--rate-limit=50`).
        `raise_fds=False` leaves the server the descriptor limit it inherits; `command` and `cwd`
        start another checkout's server (bench/ab.py)."""
        self.log.parent.mkdir(exist_ok=True)  # bench/results/, on a fresh clone too
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "server.cli"]), "serve", f"--port={self.port}",
             "--rate-limit=0", "--jobs=off", *flags],
            env=self.env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
            preexec_fn=raise_fd_limit if raise_fds else None)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not come up; see bench/results/server.log")

    @contextlib.contextmanager
    def profiled(self, output: str | None):
        """Sample the server with py-spy while the block runs (a flame graph for speedscope)."""
        if not output:
            yield
            return
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                                "--pid", str(self.proc.pid), "--format", "speedscope",
                                "--rate", "250", "-o", output], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far, its processes under `--processes N` included."""
        pids, found = [self.proc.pid], 0.0
        while pids:
            pid = pids.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                pids += [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                         for c in (task / "children").read_text().split()]
            except FileNotFoundError:  # gone meanwhile
                continue
            found += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return found

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def admin(self, method: str, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         method=method,
                                         headers={"Authorization": f"Bearer {self.admin_token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def token(self, user_id: int) -> str:
        return issue_token(self.token_secret, user_id)


class Loads:
    """Load-generator processes, each given its share of the clients."""

    def __init__(self, job: dict, tokens: list[str], extra: list[dict] | None = None,
                 processes: int = LOAD_PROCESSES):
        self.procs = []
        for i in range(processes):
            part = {**job, "tokens": tokens[i::processes], **(extra[i] if extra else {})}
            if "urls" in job:  # several nodes: each load process talks to one of them
                part["url"] = job["urls"][i % len(job["urls"])]
            proc = subprocess.Popen([sys.executable, "-m", "bench.load"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                    preexec_fn=raise_fd_limit)
            proc.stdin.write(json.dumps(part) + "\n")
            proc.stdin.flush()
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout.readline().strip() == "ready", "a load process failed to connect"

    def go(self) -> None:
        """Start the timed part, once the machine has settled."""
        time.sleep(SETTLE_SECONDS)
        self.say("go")

    def say(self, line: str) -> None:
        for proc in self.procs:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    def ask(self, line: str) -> list[dict]:
        """Say `line` and read each process's one-line JSON answer."""
        self.say(line)
        return [json.loads(proc.stdout.readline()) for proc in self.procs]

    def wait_line(self, expected: str) -> None:
        for proc in self.procs:
            assert proc.stdout.readline().strip() == expected

    def results(self) -> list[dict]:
        found = [json.loads(proc.stdout.readline()) for proc in self.procs]
        for proc in self.procs:
            proc.wait(timeout=60)
        return found

    def stop_idle(self) -> list[dict]:
        self.say("go")
        return self.results()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# Scenarios ------------------------------------------------------------------------------------

def scenario_ping(server: Server, users: list[int], duration: float) -> dict:
    loads = Loads({"kind": "ping", "url": server.ws_url, "duration": duration},
                  [server.token(u) for u in users])
    loads.go()
    results = loads.results()
    latencies = [x for r in results for x in r["latencies"]]
    seconds = max(r["seconds"] for r in results)
    return {"clients": len(users), "requests_per_s": round(len(latencies) / seconds),
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99))}


async def pay_packets(server: Server, sender: int, group: int, count: int, number: int,
                      amount: str) -> list[int]:
    conn = await Conn.open(server.ws_url, server.token(sender))
    rp_ids = []
    for _ in range(count):
        created = await conn.request("packet.create", type=3, for_id=group, number=number,
                                     amount=amount, pay_type="balance")
        paid = await conn.request("packet.pay", rp_id=created["rp_id"])
        assert paid["ok"], paid
        rp_ids.append(created["rp_id"])
    conn.close()
    return rp_ids


def scenario_storm(servers: list[Server], grabbers: list[int], rp_ids: list[int],
                   profile: str | None = None) -> tuple[dict, dict]:
    """One storm: its duration and latencies by result, and who won what."""
    server = servers[0]
    extra = [{"user_ids": [str(u) for u in grabbers[i::LOAD_PROCESSES]]}
             for i in range(LOAD_PROCESSES)]
    loads = Loads({"kind": "grab", "urls": [s.ws_url for s in servers], "rp_ids": rp_ids},
                  [server.token(u) for u in grabbers], extra)
    with server.profiled(profile):
        loads.go()
        cpu = sum(s.cpu_seconds() for s in servers)
        results = loads.results()
        cpu = sum(s.cpu_seconds() for s in servers) - cpu
    storm = {"seconds": max(r["seconds"] for r in results), "by_result": {}, "cpu_seconds": cpu}
    won: dict[str, dict[str, str]] = {}
    for r in results:
        for result, values in r["by_result"].items():
            storm["by_result"].setdefault(result, []).extend(values)
        won.update(r["won"])
    return storm, won


def measured_storm(servers: list[Server], sender: int, group: int, grabbers: list[int],
                   packets: int, shares: int) -> tuple[dict, list[int], dict]:
    """A warm-up storm, then a measured one, on `servers`: its figures, and the packets and
    wins of both for the money check."""
    warm_ids, warm_won = warm_up(servers, sender, group, grabbers, shares)
    rp_ids = asyncio.run(pay_packets(servers[0], sender, group, packets, shares, "100.00"))
    storm, won = scenario_storm(servers, grabbers, rp_ids)
    return storm_figures([storm], len(grabbers), packets), warm_ids + rp_ids, merge(warm_won, won)


def storm_figures(storms: list[dict], clients: int, packets: int) -> dict:
    """Rates are the median storm's (the machine drifts between storms); latencies are pooled."""
    def rate(storm, results):
        return sum(len(storm["by_result"].get(r, ())) for r in results) / storm["seconds"]

    every = {r for storm in storms for r in storm["by_result"]}
    won = [round(rate(storm, ["ok"])) for storm in storms]
    figures = {"clients": clients, "packets": packets, "storms": len(storms),
               "won_per_s": round(statistics.median(won)), "won_per_s_each": won,
               "requests_per_s": round(statistics.median(rate(s, every) for s in storms)),
               # What the server spent on each winning grab (and its share of the losing ones):
               # whether the server itself did more work, not the load or the rest of the machine.
               "cpu_ms_per_won": round(statistics.median(
                   1000 * s["cpu_seconds"] / max(1, len(s["by_result"].get("ok", ())))
                   for s in storms), 3)}
    for result in sorted(every):
        values = [x for storm in storms for x in storm["by_result"].get(result, ())]
        figures[f"{result}_p50_ms"] = ms(percentile(values, 50))
        figures[f"{result}_p99_ms"] = ms(percentile(values, 99))
    return figures


def warm_up(servers: list[Server], sender: int, group: int, grabbers: list[int],
            shares: int) -> tuple[list[int], dict]:
    """A short storm, not measured: database pools and the server's memory grow once, as in a
    server that has been serving for a minute. Its packets and wins are checked with the rest."""
    rp_ids = asyncio.run(pay_packets(servers[0], sender, group, WARM_UP_PACKETS, shares,
                                     "100.00"))
    return rp_ids, scenario_storm(servers, grabbers, rp_ids)[1]


def scenario_too_slow(server: Server, grabbers: list[int], rp_ids: list[int],
                      won: dict[str, dict[str, str]], duration: float) -> dict:
    """Each grabber grabs again, closed loop for `duration`, the finished packets it lost."""
    plan = [[rp for rp in rp_ids if str(rp) not in won.get(str(u), {})] for u in grabbers]
    extra = [{"user_ids": [str(u) for u in grabbers[i::LOAD_PROCESSES]],
              "rp_ids": plan[i::LOAD_PROCESSES]} for i in range(LOAD_PROCESSES)]
    loads = Loads({"kind": "grab", "url": server.ws_url, "duration": duration},
                  [server.token(u) for u in grabbers], extra)
    loads.go()
    results = loads.results()
    seconds = max(r["seconds"] for r in results)
    slow = [x for r in results for x in r["by_result"].get("too_slow", [])]
    other = {k for r in results for k in r["by_result"] if k != "too_slow"}
    if other:
        raise Wrong(f"losers grabbing again got {other}, not only too_slow")
    return {"answers_per_s": round(len(slow) / seconds), "p50_ms": ms(percentile(slow, 50)),
            "p99_ms": ms(percentile(slow, 99))}


async def send_and_pay(server: Server, sender: int, group: int, messages: int) -> dict:
    """Send chat messages and pay packets into the room; return when each was sent."""
    conn = await Conn.open(server.ws_url, server.token(sender))
    sent = {}
    packets = [(await conn.request("packet.create", type=3, for_id=group, number=1,
                                   amount="0.01", pay_type="balance"))["rp_id"]
               for _ in range(messages)]
    for n in range(messages):
        started = time.time()
        reply = await conn.request("chat.send", to_type="group", to_id=group, text=f"新年好 {n}")
        sent[f"chat:{reply['message']['id']}"] = started
        await asyncio.sleep(0.05)
    for rp_id in packets:
        sent[f"packet:{rp_id}"] = time.time()
        await conn.request("packet.pay", rp_id=rp_id)
        await asyncio.sleep(0.05)
    conn.close()
    return sent


def scenario_fanout(servers: list[Server], sender: int, group: int, members: list[int],
                    messages: int) -> dict:
    server = servers[0]
    loads = Loads({"kind": "listen", "urls": [s.ws_url for s in servers],
                   "messages": 2 * messages, "timeout": 60}, [server.token(u) for u in members])
    loads.go()
    loads.wait_line("listening")
    sent = asyncio.run(send_and_pay(server, sender, group, messages))
    arrivals: dict[str, list[float]] = {}
    for r in loads.results():
        for key, times in r["arrivals"].items():
            arrivals.setdefault(key, []).extend(times)
    figures = {"members": len(members)}
    for kind in ("chat", "packet"):
        last = [max(arrivals[k]) - t for k, t in sent.items() if k.startswith(kind)
                and len(arrivals.get(k, [])) == len(members)]
        if len(last) != messages:
            raise Wrong(f"{kind}: only {len(last)} of {messages} reached every member")
        figures[f"{kind}_last_member_p50_ms"] = ms(percentile(last, 50))
        figures[f"{kind}_last_member_p99_ms"] = ms(percentile(last, 99))
    return figures


def scenario_idle(server: Server, users: list[int]) -> dict:
    before = server.rss_kb()
    loads = Loads({"kind": "idle", "url": server.ws_url}, [server.token(u) for u in users],
                  processes=4)
    loads.go()
    loads.wait_line("connected")
    time.sleep(1)
    after = server.rss_kb()
    opened = sum(r["open"] for r in loads.stop_idle())
    if opened != len(users):
        raise Wrong(f"only {opened} of {len(users)} idle connections stayed open")
    return {"connections": len(users), "rss_before_mb": round(before / 1024, 1),
            "rss_after_mb": round(after / 1024, 1),
            "kb_per_connection": round((after - before) / len(users), 2)}


def progress(what: str) -> None:
    """A line on stderr as each part starts: a full run takes minutes."""
    print(f"[{time.monotonic() - STARTED:5.0f} s] {what}", file=sys.stderr, flush=True)


def merge(first: dict, second: dict) -> dict:
    """Per-user wins of two storms."""
    merged = {uid: dict(wins) for uid, wins in first.items()}
    for uid, wins in second.items():
        merged.setdefault(uid, {}).update(wins)
    return merged


# Checks ---------------------------------------------------------------------------------------

def check_money(mysql_url: str, rp_ids: list[int], won: dict[str, dict[str, str]],
                deposit_fen: int, server: Server) -> None:
    """Every packet's shares add up, nobody holds two, each wallet is exactly right, audit ok."""
    u = MysqlUrl.parse(mysql_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password,
                           database=u.database)
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        for rp_id in rp_ids:
            cur.execute("SELECT p.total_money, p.number, SUM(s.money) AS shares,"
                        " COUNT(s.user_id) AS grabbed, COUNT(DISTINCT s.user_id) AS grabbers"
                        " FROM red_packet p JOIN red_packet_log s ON s.rp_id = p.id"
                        " WHERE p.id = %s GROUP BY p.id", (rp_id,))
            row = cur.fetchone()
            if row["shares"] != row["total_money"] or row["grabbed"] != row["number"] or \
                    row["grabbers"] != row["grabbed"]:
                raise Wrong(f"packet {rp_id}: {row}")
        for user_id, wins in won.items():
            cur.execute("SELECT balance FROM wallets WHERE user_id = %s", (user_id,))
            balance = to_fen(cur.fetchone()["balance"])
            cur.execute("SELECT rp_id, money FROM red_packet_log WHERE user_id = %s", (user_id,))
            held = {str(r["rp_id"]): to_fen(r["money"]) for r in cur.fetchall()}
            told = {rp: int(m.replace(".", "")) for rp, m in wins.items()}
            if held != told or balance != deposit_fen + sum(held.values()):
                raise Wrong(f"user {user_id}: told {told}, holds {held}, balance {balance}")
    conn.close()
    audit = subprocess.run([sys.executable, "-m", "server.cli", "audit"], env=server.env,
                           capture_output=True, text=True)
    if audit.returncode != 0:
        raise Wrong("audit failed:\n" + audit.stdout)


# The run --------------------------------------------------------------------------------------

def provision(server: Server, first_id: int, count: int, deposit: str) -> list[int]:
    users = list(range(first_id, first_id + count))
    for uid in users:
        server.admin("PUT", f"/admin/users/{uid}", {"name": f"u{uid}"})
        server.admin("POST", f"/admin/wallets/{uid}/deposit", {"amount": deposit,
                                                               "ref": f"bench-{uid}"})
    return users


CEILINGS = {"seed": "seed_sql", "for_update": "for_update_sql"}  # design → its figures' name


def ceiling(mysql_url: str, design: str, connections: int, grabbers: int, packets: int,
            shares: int) -> int:
    """Set up a copy of a storm straight in SQL and grab it with a baseline design over a pool
    of `connections`: its winning grabs per second."""
    url = with_database(mysql_url, f"{MysqlUrl.parse(mysql_url).database}_{design}")
    migrate(url)
    u = MysqlUrl.parse(url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password,
                           database=u.database, autocommit=True)
    try:
        with conn.cursor() as cur:
            users = list(range(1, grabbers + 1))
            cur.executemany("INSERT INTO wallets (user_id, balance, update_time) VALUES (%s, 0, 0)",
                            [(uid,) for uid in users])
            rp_ids = []
            for _ in range(packets):
                cur.execute("INSERT INTO red_packet (user_id, for_id, pay_status, type, intro,"
                            " number, total_money, add_time) VALUES (0, 0, 1, 3, '', %s, %s, 0)",
                            (shares, shares))
                rp_ids.append(cur.lastrowid)
                cur.executemany("INSERT INTO red_packet_log (rp_id, seq, money, add_time)"
                                " VALUES (%s, %s, 1.00, 0)",
                                [(cur.lastrowid, seq) for seq in range(1, shares + 1)])
        time.sleep(SETTLE_SECONDS)
        result = asyncio.run(baseline.run(url, rp_ids, users, shares, connections, design))
        if result["won"] != packets * shares:
            raise Wrong(f"{design}: {result['won']} grabs won of {packets * shares}")
        return round(result["won_per_s"])
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{u.database}`")
        conn.close()


def best_pools(mysql_url: str, grabbers: int, packets: int, shares: int) -> dict[str, dict]:
    """Each baseline design tried at every pool of the sweep: the pool at which it does best,
    and what each gave."""
    found = {}
    for design in baseline.DESIGNS:
        rates = {n: ceiling(mysql_url, design, n, grabbers, packets, shares)
                 for n in baseline.SWEEP}
        found[design] = {"connections": max(rates, key=rates.get), "sweep": rates}
    return found


def baselines(mysql_url: str, grabbers: int, packets: int, shares: int,
              pools: dict[str, dict]) -> dict[str, int]:
    """Both baseline designs at their best pools: each one's winning grabs per second."""
    return {CEILINGS[design]: ceiling(mysql_url, design, pools[design]["connections"], grabbers,
                                      packets, shares) for design in baseline.DESIGNS}


def ratio(storm: dict, ceiling: dict, target: str) -> str:
    """Medians' ratio, and the range of the rounds' own ratios."""
    each = [a / b for a, b in zip(storm["won_per_s_each"], ceiling["won_per_s_each"])]
    return (f"ratio {storm['won_per_s'] / ceiling['won_per_s']:.2f}× (target ≥ {target}×; "
            f"rounds {min(each):.2f}–{max(each):.2f}×)")


def table(figures: dict) -> str:
    storm, seed, locked = figures["storm"], figures["seed_sql"], figures["for_update_sql"]
    pools = figures["baseline_pools"]
    room = f"fan-out {figures['fanout']['members']}"
    rows = [
        ("ping ceiling", f"{figures['ping']['requests_per_s']} req/s",
         f"p99 {figures['ping']['p99_ms']} ms"),
        ("grab storm: winning grabs", f"{storm['won_per_s']} /s",
         f"p99 ok {storm.get('ok_p99_ms')} ms, too_slow {storm.get('too_slow_p99_ms')} ms"),
        ("grab storm: all requests", f"{storm['requests_per_s']} req/s",
         f"server CPU {storm['cpu_ms_per_won']} ms per winning grab"),
        (f"  baseline seed-style SQL, pool {pools['seed']['connections']}",
         f"{seed['won_per_s']} /s", ratio(storm, seed, "1.0")),
        (f"  baseline SELECT … FOR UPDATE, pool {pools['for_update']['connections']}",
         f"{locked['won_per_s']} /s", ratio(storm, locked, "2.5")),
        ("too-slow answers", f"{figures['too_slow']['answers_per_s']} /s",
         f"p99 {figures['too_slow']['p99_ms']} ms; "
         f"{figures['too_slow']['answers_per_s'] / figures['ping']['requests_per_s']:.2f}× ping "
         "(target ≥ 0.5×)"),
        (f"{room}: chat, last member", f"p50 {figures['fanout']['chat_last_member_p50_ms']} ms",
         f"p99 {figures['fanout']['chat_last_member_p99_ms']} ms (target ≤ 40)"),
        (f"{room}: packet, last member",
         f"p50 {figures['fanout']['packet_last_member_p50_ms']} ms",
         f"p99 {figures['fanout']['packet_last_member_p99_ms']} ms"),
    ]
    if "storm_2_nodes" in figures:
        two, fan_two = figures["storm_2_nodes"], figures["fanout_2_nodes"]
        rows += [
            ("two nodes: winning grabs", f"{two['won_per_s']} /s",
             f"{two['won_per_s'] / storm['won_per_s']:.2f}× one node; p99 ok "
             f"{two.get('ok_p99_ms')} ms"),
            (f"two nodes: {room}, chat", f"p50 {fan_two['chat_last_member_p50_ms']} ms",
             f"p99 {fan_two['chat_last_member_p99_ms']} ms"),
        ]
    if "storm_2_processes" in figures:
        two = figures["storm_2_processes"]
        rows.append(("two processes: winning grabs", f"{two['won_per_s']} /s",
                     f"{two['won_per_s'] / storm['won_per_s']:.2f}× one process; p99 ok "
                     f"{two.get('ok_p99_ms')} ms"))
    if "idle" in figures:
        rows.append((f"idle {figures['idle']['connections']} connections",
                     f"{figures['idle']['kb_per_connection']} KB each",
                     f"RSS {figures['idle']['rss_after_mb']} MB (target ≤ 20 KB)"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value:>16}  {note}" for name, value, note in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for trying it")
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections (0: skip)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="storms, each followed by the baselines (medians are reported)")
    parser.add_argument("--profile", metavar="FILE",
                        help="record the server with py-spy during the first storm")
    args = parser.parse_args()
    grabbers, packets, shares, members = (200, 40, 100, 500) if not args.quick else (50, 5, 40, 100)
    RESULTS.mkdir(exist_ok=True)
    raise_fd_limit()
    run = secrets.token_hex(3)
    mysql_url = with_database(os.environ.get("RTSERVER_MYSQL_URL",
                                             "mysql://root@127.0.0.1:3306/rtserver"),
                              f"rtserver_bench_{run}")
    redis_url = os.environ.get("RTSERVER_REDIS_URL", "redis://127.0.0.1:6379/0")
    migrate(mysql_url)
    server = Server(mysql_url, redis_url, f"rtb:{run}:")
    server.start()
    figures = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}}
    try:
        # Enough for every packet of the run: the storms', three warm-ups, and fan-out's 0.01s.
        storm_packets = (args.rounds + 2) * packets + 3 * WARM_UP_PACKETS
        sender = provision(server, 1, 1, f"{storm_packets * 100 + 1}.00")[0]
        grabber_ids = provision(server, 2, grabbers, "0.01")
        storm_group = 900_001
        server.admin("PUT", f"/admin/groups/{storm_group}",
                     {"name": "storm", "members": [sender] + grabber_ids})
        progress("ping ceiling")
        figures["ping"] = scenario_ping(server, grabber_ids, duration=5)
        progress("warm-up storm")
        rp_ids, won = warm_up([server], sender, storm_group, grabber_ids, shares)
        progress("baselines at pools of " + ", ".join(map(str, baseline.SWEEP)))
        pools = best_pools(mysql_url, grabbers, packets, shares)
        figures["baseline_pools"] = pools
        # Storms and baselines take turns, so that the machine's drift falls on both alike.
        storms, ceilings = [], {"seed_sql": [], "for_update_sql": []}
        for turn in range(args.rounds):
            progress(f"grab storm and baselines, round {turn + 1} of {args.rounds}")
            storm_ids = asyncio.run(pay_packets(server, sender, storm_group, packets, shares,
                                                "100.00"))
            storm, storm_won = scenario_storm([server], grabber_ids, storm_ids,
                                              args.profile if turn == 0 else None)
            storms.append(storm)
            rp_ids, won = rp_ids + storm_ids, merge(won, storm_won)
            for name, rate in baselines(mysql_url, grabbers, packets, shares, pools).items():
                ceilings[name].append(rate)
        figures["storm"] = storm_figures(storms, grabbers, packets)
        for name, rates in ceilings.items():
            figures[name] = {"won_per_s": round(statistics.median(rates)), "won_per_s_each": rates}
        progress("checking every share and wallet")
        check_money(mysql_url, rp_ids, won, 1, server)
        progress("too-slow answers")
        figures["too_slow"] = scenario_too_slow(server, grabber_ids, rp_ids, won, duration=5)
        room = provision(server, 10_000, members, "0.01")
        fan_group = 900_002
        server.admin("PUT", f"/admin/groups/{fan_group}", {"name": "fan-out",
                                                           "members": [sender] + room})
        progress("fan-out")
        figures["fanout"] = scenario_fanout([server], sender, fan_group, room, 20)
        # The same storm and fan-out over two nodes sharing the database and Redis.
        progress("two nodes")
        second = server.sibling()
        second.start()
        try:
            figures["storm_2_nodes"], more, won_more = measured_storm(
                [server, second], sender, storm_group, grabber_ids, packets, shares)
            check_money(mysql_url, rp_ids + more, merge(won, won_more), 1, server)
            figures["fanout_2_nodes"] = scenario_fanout([server, second], sender, fan_group,
                                                        room, 20)
        finally:
            second.stop()
        rp_ids, won = rp_ids + more, merge(won, won_more)
        # One node of two processes (--processes 2) on the same port, against the one above.
        progress("two processes")
        doubled = server.sibling()
        doubled.start("--processes=2")
        try:
            figures["storm_2_processes"], more, won_more = measured_storm(
                [doubled], sender, storm_group, grabber_ids, packets, shares)
        finally:
            doubled.stop()
        rp_ids, won = rp_ids + more, merge(won, won_more)
        if args.idle:
            progress(f"{args.idle} idle connections")
            idle_users = provision(server, 100_000, args.idle, "0.01")
            figures["idle"] = scenario_idle(server, idle_users)
        progress("checking every share and wallet")
        check_money(mysql_url, rp_ids, won, 1, server)
    except Wrong as wrong:
        print(f"WRONG RESULT, no figures reported: {wrong}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        drop(mysql_url, redis_url, f"rtb:{run}:")
    print(table(figures))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(figures, indent=2))
    print(f"\nbench/results/{stamp}.json")
    return 0


def drop(mysql_url: str, redis_url: str, prefix: str) -> None:
    import redis
    u = MysqlUrl.parse(mysql_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{u.database}`")
    conn.close()
    r = redis.from_url(redis_url)
    for key in r.scan_iter(match=prefix + "*", count=1000):
        r.delete(key)


if __name__ == "__main__":
    sys.exit(main())
