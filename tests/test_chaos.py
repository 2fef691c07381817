"""A short `make chaos`: compound faults under load, and not one broken guarantee.

The soak starts its own MariaDB, Redis, nodes and jobs runner, and the receiver of their
outbound events, down, failing and hanging in turn (bench/chaos/world.py), so this test needs
nothing of the suite's fixtures. Its checker only counts what is wrong whatever the
timing (an answer contradicted by the final state, money out of place), so a failure here is a
real violation: the message names each kind with its first example.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEED = 7
SECONDS = 40  # with start-up, the quiet end and the checks, well under 100 s in all
ROOT = Path(__file__).resolve().parent.parent


def test_a_short_soak_under_every_kind_of_fault_breaks_no_guarantee():
    if not (shutil.which("mariadbd", path="/usr/sbin:/usr/bin") and
            shutil.which("redis-server", path="/usr/sbin:/usr/bin:/usr/local/bin")):
        pytest.skip("the soak needs the system's mariadbd and redis-server")
    run = subprocess.run([sys.executable, "-m", "bench.chaos", "--seconds", str(SECONDS),
                          "--seed", str(SEED)], cwd=ROOT, capture_output=True, text=True,
                         timeout=SECONDS + 240)
    lines = run.stdout.strip().splitlines()
    assert lines, f"the soak printed nothing (exit {run.returncode}):\n{run.stderr[-3000:]}"
    summary = json.loads(lines[-1])
    assert all(summary["faults"].values()), summary["faults"]
    assert summary["acknowledged_grabs"] > 0
    assert set(summary["events"]["by_type"]) == {
        "packet.sent", "packet.grabbed", "packet.finished", "packet.refunded", "packet.voided",
        "packet.settled"}, summary["events"]
    report = json.loads(Path(summary["report"]).read_text())
    found = "\n".join(f"{kind} ×{seen['count']}: first {json.dumps(seen['first'], default=str)}"
                      for kind, seen in report["violations_by_kind"].items())
    assert summary["violations"] == 0, f"seed {SEED}: {summary['violations']} violations\n{found}"
    assert run.returncode == 0, run.stderr[-3000:]
