"""Figures of `make siege` from what was recorded, judged against the targets; the table.

The targets are docs/protocol.md's "a node stays up for everyone" made into numbers. They are
reported, never asserted: the same bench runs against servers with and without the defences.
"""
import statistics

from bench.wire import percentile

MB = 1024  # KB
TARGETS = {
    "p99": "ordinary p99 ≤ 3× the baseline's and < 250 ms",
    "peak_rss": "peak RSS ≤ idle + 300 MB",
    "rss_after": "RSS at the end of recovery ≤ idle + 50 MB",
    "log": "log growth < 1 MB",
    "failures": "no ordinary request failed",
}


def clients(windows: list[dict]) -> dict:
    """The ordinary clients of every load process, pooled over the given windows."""
    latencies = [x for w in windows for x in w["latencies"]]
    joins = [x for w in windows for x in w.get("joins", [])]  # older runs had no newcomers
    firsts = sorted(w["first_failure"] for w in windows if w["first_failure"])
    return {"requests": len(latencies), "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1), "newcomers": len(joins),
            "join_p50_ms": round(percentile(joins, 50) * 1000, 1),
            "join_max_ms": round(max(joins, default=0) * 1000, 1),
            "failures": sum(w["failures"] for w in windows),
            "first_failure": firsts[0] if firsts else None}


def merged(reports: list[dict]) -> dict:
    """The attack processes' reports as one: counts added, anything else listed."""
    out: dict = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, int) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, dict):
                out[key] = merged([out.get(key, {}), value])
            else:
                out.setdefault(key, []).append(value)
    return out


def figures_of(raw: dict, args) -> dict:
    base = raw["baseline"]
    baseline = {"ordinary": clients(base["attack_window"]),
                "rss_idle_mb": round(base["idle"][0] / MB, 1),
                "rss_peak_mb": round(base["attack"]["peak_rss_kb"] / MB, 1),
                "fds_idle": base["idle"][1], "fds_peak": base["attack"]["peak_fds"],
                "log_growth_bytes": base["log_growth"]}
    figures = {"seconds": args.seconds, "recover": args.recover, "quick": args.quick,
               "targets": TARGETS, "baseline": baseline, "phases": {}}
    for name, phase in raw.items():
        if name != "baseline":
            figures["phases"][name] = judged(phase_figures(phase), baseline)
    return figures


def phase_figures(phase: dict) -> dict:
    during = clients(phase["attack_window"])
    both = clients(phase["attack_window"] + phase["recovery_window"])
    stopped = phase["attack"]["stopped"]
    return {"ordinary": {**during, "failures": both["failures"],
                         "first_failure": both["first_failure"],
                         "recovery_p99_ms": clients(phase["recovery_window"])["p99_ms"]},
            "rss_idle_mb": round(phase["idle"][0] / MB, 1),
            "rss_peak_mb": round(phase["attack"]["peak_rss_kb"] / MB, 1),
            # After a restart the new server's memory says nothing of the attacked one's.
            "rss_after_mb": None if stopped else round(phase["after"][0] / MB, 1),
            "fds_idle": phase["idle"][1], "fds_peak": phase["attack"]["peak_fds"],
            "fds_after": phase["after"][1], "log_growth_bytes": phase["log_growth"],
            "stopped": stopped, "attack": merged(phase["got"])}


def judged(phase: dict, baseline: dict) -> dict:
    p99, base_p99 = phase["ordinary"]["p99_ms"], baseline["ordinary"]["p99_ms"]
    phase["ordinary"]["p99_vs_baseline"] = round(p99 / base_p99, 2) if base_p99 else None
    after = phase["rss_after_mb"]
    phase["met"] = {
        "p99": p99 <= 3 * base_p99 and p99 < 250,
        "peak_rss": phase["rss_peak_mb"] <= phase["rss_idle_mb"] + 300 and not phase["stopped"],
        "rss_after": after is not None and after <= phase["rss_idle_mb"] + 50,
        "log": phase["log_growth_bytes"] < MB * MB,
        "failures": phase["ordinary"]["failures"] == 0,
    }
    return phase


def got(name: str, attack: dict) -> str:
    """What the attack got, in a few words."""
    refused = ", ".join(f"{k} {v}" for k, v in sorted(attack.get("refused", {}).items()))
    refused = f" (refused: {refused})" if refused else ""
    if "error" in attack:
        return f"killed: {attack['error'][0]}"
    if name == "history":
        answers = attack.get("answers", {})
        sizes = [s for s in attack.get("messages_per_answer", []) if s]
        size = f", {min(s[0] for s in sizes)}–{max(s[1] for s in sizes)} messages each" \
            if sizes else ""
        others = ", ".join(f"{k} {v}" for k, v in sorted(answers.items()) if k != "history")
        return (f"{attack['accepted']}/{attack['sockets']} sockets{refused}; "
                f"{answers.get('history', 0)} of {attack['sent']} histories answered{size}"
                f"{'; ' + others if others else ''}; {attack['closed_by_server']} closed by server")
    if name == "slowloris":
        after = [s for s in attack.get("closed_after_s", []) if s is not None]
        when = f" after ~{statistics.median(after)} s" if after else ""
        failed = ", ".join(f"{k} {v}" for k, v in sorted(attack.get("failed", {}).items()))
        return (f"{attack['connected']}/{attack['count']} connected"
                f"{' (failed: ' + failed + ')' if failed else ''}; "
                f"{attack['closed_by_server']} closed by server{when}")
    if name == "unread":
        states = ", ".join(f"{k} {v}" for k, v in sorted(attack.get("at_the_end", {}).items()))
        return f"{attack['accepted']}/{attack['sockets']} sockets{refused}; at the end: {states}"
    return (f"{attack['accepted']} of {attack['attempts']} attempts accepted{refused}; "
            f"{attack['closed_by_server']} closed by server")


def joined(ordinary: dict) -> str:
    return f"{ordinary['join_p50_ms']} / {ordinary['join_max_ms']} ({ordinary['newcomers']})"


def yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def table(figures: dict) -> str:
    base = figures["baseline"]
    o = base["ordinary"]
    rows = [
        "| phase | ordinary p50 / p99 ms (× baseline p99) | met "
        "| newcomers: dial to first answer, p50 / max ms "
        "| RSS idle → peak → end of recovery, MB | met peak | met end | fds idle → peak "
        "| log growth | met | ordinary failures | met | the attack got |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| baseline | {o['p50_ms']} / {o['p99_ms']} ({o['requests']} requests) | | "
        f"{joined(o)} | "
        f"{base['rss_idle_mb']} → {base['rss_peak_mb']} | | | {base['fds_idle']} → "
        f"{base['fds_peak']} | {base['log_growth_bytes']:,} B | | {o['failures']} | "
        f"{yes(o['failures'] == 0)} | no attack |",
    ]
    for name, p in figures["phases"].items():
        o, met = p["ordinary"], p["met"]
        failures = f"{o['failures']}" + (f": {o['first_failure']}" if o["first_failure"] else "")
        after = "—" if p["rss_after_mb"] is None else p["rss_after_mb"]
        stopped = f" **stopped: {p['stopped']}**" if p["stopped"] else ""
        rows.append(
            f"| {name} | {o['p50_ms']} / {o['p99_ms']} ({o['p99_vs_baseline']}×) | "
            f"{yes(met['p99'])} | {joined(o)} | {p['rss_idle_mb']} → {p['rss_peak_mb']} → {after} | "
            f"{yes(met['peak_rss'])} | {yes(met['rss_after'])} | {p['fds_idle']} → "
            f"{p['fds_peak']} | {p['log_growth_bytes']:,} B | {yes(met['log'])} | "
            f"{failures.replace('|', '/')} | {yes(met['failures'])} | "
            f"{got(name, p['attack'])}{stopped} |")
    return "\n".join(rows)


def summary(figures: dict, path: str) -> dict:
    """One line: which targets each phase missed."""
    phases = figures["phases"]
    missed = {name: [t for t, ok in p["met"].items() if not ok] for name, p in phases.items()}
    return {"siege": path, "baseline_p99_ms": figures["baseline"]["ordinary"]["p99_ms"],
            "targets_met": sum(ok for p in phases.values() for ok in p["met"].values()),
            "targets": sum(len(p["met"]) for p in phases.values()), "missed": missed}
