"""The run's report (JSON, under bench/results/) and its picture, drawn the way Jepsen draws a
run: what the clients saw over time, with the fault windows shaded behind it."""
import json
from collections import Counter
from pathlib import Path

from bench.chaos import faults as fault_kinds
from bench.chaos.checker import LOST, WON, Violation
from bench.chaos.history import History

COLOURS = {"kill9": "#d62728", "sigterm": "#ff7f0e", "sigstop": "#bcbd22",
           "jobs_kill9": "#8c564b", "redis_restart": "#e377c2", "flushall": "#17becf",
           "redis_cut": "#9467bd", "mysql_cut": "#1f77b4", "mysql_kill9": "#2ca02c",
           "events_down": "#7f7f7f", "events_503": "#aec7e8", "events_hang": "#c5b0d5"}


def acknowledged(history: History) -> list:
    return [c for c in history.of("packet.grab")
            if c.outcome in WON and "money" in (c.reply or {})]


def succeeded(call) -> bool:
    """Answered without a failure code (`too_slow` and `expired` are answers too)."""
    return call.outcome in ("200", "204") or bool((call.reply or {}).get("ok"))


def operations(history: History) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {}
    for call in history.calls:
        counts.setdefault(call.op, Counter())[call.outcome or "unfinished"] += 1
    return {op: dict(sorted(c.items())) for op, c in sorted(counts.items())}


def _when(v: Violation) -> float:
    return v.example.get("sent", v.example.get("at", 0.0))


def by_kind(violations: list[Violation]) -> dict[str, dict]:
    kinds: dict[str, list[Violation]] = {}
    for v in violations:
        kinds.setdefault(v.kind, []).append(v)
    return {kind: {"count": len(vs), "first": min(vs, key=_when).example,
                   "worst": max(vs, key=lambda v: v.weight).example}
            for kind, vs in sorted(kinds.items())}


def write(path: Path, seed: int, seconds: float, history: History, faults: list,
          violations: list[Violation], extra: dict) -> dict:
    report = {"seed": seed, "seconds": seconds, "operations": operations(history),
              "acknowledged_grabs": len(acknowledged(history)),
              "faults": fault_kinds.summary(faults), "fault_log": fault_kinds.as_json(faults),
              "violations": len(violations), "violations_by_kind": by_kind(violations), **extra}
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    return report


def draw(path: Path, history: History, faults: list, title: str) -> bool:
    """Draw the picture; False where matplotlib (the `bench` extra) is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max([history.now()] + [c.sent for c in history.calls])
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 6.5),
                                      gridspec_kw={"height_ratios": [1, 1.4]})
    per_second = Counter(int(c.received) for c in acknowledged(history))
    seconds = range(int(end) + 1)
    top.step(seconds, [per_second.get(s, 0) for s in seconds], where="post", color="black",
             linewidth=0.8)
    top.set_ylabel("acknowledged grabs / s")
    for colour, keep in (("#1f77b4", succeeded),
                         ("#ff7f0e", lambda c: not succeeded(c) and c.outcome not in LOST),
                         ("#d62728", lambda c: c.outcome in LOST)):
        calls = [c for c in history.calls if c.latency is not None and keep(c)]
        bottom.scatter([c.sent for c in calls], [max(c.latency, 1e-4) * 1000 for c in calls],
                       s=2, color=colour, alpha=0.5, linewidths=0)
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms): answered · failed · none")
    bottom.set_xlabel("seconds into the run")
    shown = set()
    for f in faults:
        if f.start is None:
            continue
        for axis in (top, bottom):
            axis.axvspan(f.start, max(f.end or f.start, f.start + 0.3), color=COLOURS[f.kind],
                         alpha=0.25, linewidth=0,
                         label=f.kind if axis is top and f.kind not in shown else None)
        shown.add(f.kind)
    top.legend(loc="upper left", ncol=len(COLOURS), fontsize=7, frameon=False, bbox_to_anchor=(0, 1.25))
    top.set_title(title, fontsize=9, loc="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
