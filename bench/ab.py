"""`python -m bench.ab --before DIR`: the grab storm, A/B, on this code and an older checkout.

`--flags "..."` gives this code's server flags of its own (the older one runs without them), so
that one checkout A/B-tests a flag: `--before . --flags "--events-url=..."`. `--two-nodes`
gives each turn a storm over two nodes of each code as well (a second node on the same database
and Redis), and compares two nodes against one.

One server of each code, each on its own database and Redis prefix, warmed up alike, then given
`--turns` storms each, in turn, so that the machine's drift falls on both; medians compared.
DIR is a checkout of the older code with its own `.venv` (`make install` there), e.g.
`git worktree add ../before COMMIT`. Prints each storm and the medians.
"""
import argparse
import asyncio
import pathlib
import secrets
import statistics
import sys
import time

from bench import run
from storage.migrate import migrate

GROUP, GRABBERS, PACKETS, SHARES = 900_001, 200, 40, 100


class Before(run.Server):
    """`rtserver serve` from the older checkout, started as that code starts itself."""

    def __init__(self, checkout: pathlib.Path, *args):
        super().__init__(*args)
        self.checkout = checkout

    def start(self, *flags: str, raise_fds: bool = True) -> None:
        module = "server.cli" if (self.checkout / "server" / "cli.py").exists() else "rtserver.cli"
        python = self.checkout / ".venv" / "bin" / "python"
        super().start(*flags, raise_fds=raise_fds, command=[str(python), "-m", module],
                      cwd=self.checkout)


def set_up(make, tag: str, flags: list[str]) -> tuple:
    name = f"rtserver_ab_{tag}_{secrets.token_hex(3)}"
    url = run.with_database("mysql://root@127.0.0.1:3306/rtserver", name)
    migrate(url)
    server = make(url, "redis://127.0.0.1:6379/0", f"{name}:")
    server.start(*flags)
    sender = run.provision(server, 1, 1, "100000.00")[0]
    grabbers = run.provision(server, 2, GRABBERS, "0.01")
    server.admin("PUT", f"/admin/groups/{GROUP}", {"name": "storm", "members": [sender] + grabbers})
    run.warm_up([server], sender, GROUP, grabbers, SHARES)
    return server, sender, grabbers, url, f"{name}:"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, type=pathlib.Path)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--flags", default="", help="flags of this code's server alone")
    parser.add_argument("--two-nodes", action="store_true",
                        help="a storm over two nodes of each code too, each turn")
    args = parser.parse_args()
    sides = {"before": set_up(lambda *a: Before(args.before.resolve(), *a), "before", []),
             "after": set_up(run.Server, "after", args.flags.split())}
    second_nodes = {}  # under --two-nodes: each side's second node
    rows = {name: [] for name in sides}
    pairs = {name: [] for name in sides}  # (one node, two nodes) winning grabs a turn
    try:
        if args.two_nodes:
            for name, (server, *_rest) in sides.items():
                second_nodes[name] = server.sibling()
                second_nodes[name].start(*([] if name == "before" else args.flags.split()))
        for turn in range(args.turns):
            for name, (server, sender, grabbers, _, _) in sides.items():
                storm = one_storm([server], sender, grabbers)
                rows[name].append(storm)
                print(f"turn {turn + 1} {name}: {storm['won_per_s']} /s, p99 ok "
                      f"{storm.get('ok_p99_ms')} ms, too_slow {storm.get('too_slow_p99_ms')} ms, "
                      f"CPU {storm['cpu_ms_per_won']} ms a win", flush=True)
                if args.two_nodes:
                    two = one_storm([server, second_nodes[name]], sender, grabbers)
                    pairs[name].append((storm["won_per_s"], two["won_per_s"]))
                    print(f"turn {turn + 1} {name}, two nodes: {two['won_per_s']} /s, "
                          f"{two['won_per_s'] / storm['won_per_s']:.2f}× one node", flush=True)
    finally:
        for node in second_nodes.values():
            node.stop()
        for server, _, _, url, prefix in sides.values():
            server.stop()
            run.drop(url, "redis://127.0.0.1:6379/0", prefix)
    for name, storms in rows.items():
        print(f"{name}: medians {statistics.median(s['won_per_s'] for s in storms)} /s, p99 ok "
              f"{statistics.median(s['ok_p99_ms'] for s in storms)} ms, too_slow "
              f"{statistics.median(s['too_slow_p99_ms'] for s in storms)} ms, server CPU "
              f"{statistics.median(s['cpu_ms_per_won'] for s in storms)} ms a win")
        if pairs[name]:
            print(f"{name}, two nodes: medians {statistics.median(b for _, b in pairs[name])} /s,"
                  f" {statistics.median(b / a for a, b in pairs[name]):.2f}× one node")
    return 0


def one_storm(servers: list, sender: int, grabbers: list[int]) -> dict:
    """Pay the storm's packets, let MariaDB settle, and grab them all over `servers`."""
    rp_ids = asyncio.run(run.pay_packets(servers[0], sender, GROUP, PACKETS, SHARES, "100.00"))
    time.sleep(run.SETTLE_SECONDS)
    return run.storm_figures([run.scenario_storm(servers, grabbers, rp_ids)[0]], GRABBERS,
                             PACKETS)


if __name__ == "__main__":
    sys.exit(main())
