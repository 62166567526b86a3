"""Turning a run's results into the target ratios, a markdown table and a PNG chart of latency percentiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b in (None, 0):
        return None
    return round(float(a) / float(b), 3)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 9: the measured value, the goal and whether it is met."""
    phases, base = results.get("phases", {}), results.get("baselines", {})
    many = _get(phases, "withdrawals_many_capacity", "ok_per_s")
    bare = _get(phases, "bare_drf_tpcb", "ok_per_s")
    hot8 = _get(phases, "withdrawals_hot_c8", "ok_per_s")
    hot32 = _get(phases, "withdrawals_hot_c32", "ok_per_s")
    holds = [
        _get(phases, name, "lock_hold_ms", "p99") for name in ("withdrawals_hot_c8", "withdrawals_hot_c32")
    ]
    hold = max((h for h in holds if h is not None), default=None)
    rows: list[tuple[str, Any, str, float, bool]] = [
        ("withdrawals/s (many) / bare DRF TPC-B", _ratio(many, bare), ">=", 0.5, True),
        (
            "withdrawals/s (many) / pgbench TPC-B",
            _ratio(many, _get(base, "tpcb_c8", "tps")),
            ">=",
            0.15,
            True,
        ),
        ("hot wallet (8 clients) / many wallets", _ratio(hot8, many), ">=", 0.3, True),
        (
            "hot wallet / raw hot-row pgbench, 8 clients",
            _ratio(hot8, _get(base, "hot_c8", "tps")),
            ">=",
            0.25,
            True,
        ),
        (
            "hot wallet / raw hot-row pgbench, 32 clients",
            _ratio(hot32, _get(base, "hot_c32", "tps")),
            ">=",
            0.25,
            True,
        ),
        ("hot wallet 32 clients / 8 clients", _ratio(hot32, hot8), ">=", 0.8, True),
        ("balance row lock hold p99 (ms)", hold, "<=", 2.0, True),
        (
            "deadlocks (all phases)",
            sum(_get(phases, n, "deadlock_retries") or 0 for n in phases),
            "==",
            0,
            True,
        ),
        ("overdrafts", _get(results, "checks", "overdrafts"), "==", 0, True),
        (
            "webhook ack p99 (ms, all requests) at the offered rate",
            _get(phases, "webhooks", "latency_ms", "p99"),
            "<",
            50,
            True,
        ),
        ("webhook shed share at the offered rate", _get(phases, "webhooks", "shed_share"), "<", 0.01, True),
        (
            "webhook settle p99 (ms), every acked event -> balance",
            _get(phases, "webhooks", "settle_ms", "p99"),
            "<",
            500,
            True,
        ),
        ("overload goodput / capacity", _get(phases, "overload", "goodput_ratio"), ">=", 0.9, True),
        ("overload client timeouts", _get(phases, "overload", "timeouts"), "==", 0, True),
        (
            "balance read p99 (ms, all requests) at the offered rate",
            _get(phases, "balance_reads", "latency_ms", "p99"),
            "<",
            20,
            True,
        ),
        (
            "replay p99 / balance read p99",
            _ratio(
                _get(phases, "idempotent_replays", "latency_ms", "p99"),
                _get(phases, "balance_reads", "latency_ms", "p99"),
            ),
            "<=",
            1.0,
            True,
        ),
        (
            "peak RSS per web worker (MiB)",
            max(
                (w["peak_rss_mib"] for w in _get(results, "memory", "web") or [] if w["role"] == "worker"),
                default=None,
            ),
            "<",
            150,
            True,
        ),
    ]
    out = []
    for name, value, op, goal, _ in rows:
        met = None
        if value is not None:
            met = {
                ">=": value >= goal,
                "<=": value <= goal,
                "<": value < goal,
                "==": value == goal,
            }[op]
        out.append({"target": name, "value": value, "goal": f"{op} {goal}", "met": met})
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    phases = results.get("phases", {})
    base = results.get("baselines", {})
    fsync = base.get("pg_test_fsync", {})
    lines = [
        f"Run of {results.get('started_at')}: {m.get('cores')} cores ({m.get('cpu_model')}), "
        f"{m.get('memory_gib')} GiB, Python {m.get('python')}, PostgreSQL {m.get('postgresql')} "
        f"(fsync {results.get('fsync')}), Redis {m.get('redis')}, kernel {m.get('kernel')}. "
        f"Load average at start {results.get('load_avg_start')}, at end {results.get('load_avg_end')} "
        f"(the machine is shared: other runs add noise). Whole run {results.get('wall_s')} s; "
        f"{_get(results, 'args', 'duration')} s per load phase, {_get(results, 'args', 'pg_duration')} s per "
        f"pgbench run; gunicorn {_get(results, 'args', 'workers')} workers x "
        f"{_get(results, 'args', 'threads')} "
        f"threads (gthread, queue-timed), Celery concurrency {_get(results, 'args', 'celery_concurrency')}.",
        "",
        "### Baselines (same run)",
        "",
        "| baseline | tps | latency avg (ms) |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("tpcb_c8", "pgbench TPC-B, 8 clients"),
        ("hot_c8", "hot row lock-update-insert, 8 clients"),
        ("hot_c32", "hot row lock-update-insert, 32 clients"),
        ("spread_c8", "same script over 10k rows, 8 clients"),
        ("spread_c32", "same script over 10k rows, 32 clients"),
    ):
        row = base.get(key, {})
        lines.append(f"| {label} | {_fmt(row.get('tps'))} | {_fmt(row.get('latency_avg_ms'))} |")
    for key, label in (
        ("bare_drf_tpcb", "bare DRF TPC-B endpoint"),
        ("bare_django_ping", "bare Django ping"),
    ):
        bare = phases.get(key, {})
        lines.append(
            f"| {label}, {bare.get('concurrency')} clients | {_fmt(bare.get('ok_per_s'))} | "
            f"{_fmt(_get(bare, 'latency_ms', 'mean'))} |"
        )
    for run in (base.get("celery_noop") or {}).values():
        lines.append(
            f"| no-op Celery task, enqueue → executed, {run.get('clients')} client(s) (p99 "
            f"{_fmt(_get(run, 'latency_ms', 'p99'))} ms) | {_fmt(run.get('tasks_per_s'))} | "
            f"{_fmt(_get(run, 'latency_ms', 'mean'))} |"
        )
    lines.append(
        f"| pg_test_fsync: one 8 kB write + fdatasync | {_fmt(fsync.get('fdatasync_ops_per_s'))} | "
        f"{_fmt((fsync.get('fdatasync_us') or 0) / 1000 if fsync.get('fdatasync_us') else None)} |"
    )
    lines += [
        "",
        "### Wallet paths",
        "",
        "Latency percentiles are over every request sent (2xx, shed 503s, other errors at their real latency;"
        " timeouts and unanswered requests at the time waited); the shed share (503) is beside them, and the"
        " p99 of the 2xx answers alone for comparison with earlier runs.",
        "",
        "| phase | load | ok/s | p50 ms | p95 ms | p99 ms | shed | p99 2xx ms | statuses | timeouts | "
        "lock hold p99 ms | ser. retries | deadlocks | CPU s web/celery/pg/sandbox/loadgen |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for name, entry in phases.items():
        load = (
            f"open {entry.get('offered_rate')}/s"
            if entry.get("mode") == "open"
            else f"closed {entry.get('concurrency')} clients"
        )
        lat = entry.get("latency_ms", {})
        shed = entry.get("shed_share")
        cpu = entry.get("cpu_s", {})
        cpu_text = "/".join(_fmt(cpu.get(g)) for g in ("web", "celery", "postgres", "sandbox", "loadgen"))
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(entry.get("status", {}).items()))
        lines.append(
            f"| {name} | {load} | {_fmt(entry.get('ok_per_s'))} | {_fmt(lat.get('p50'))} | "
            f"{_fmt(lat.get('p95'))} | {_fmt(lat.get('p99'))} | "
            f"{'-' if shed is None else f'{shed:.1%}'} | {_fmt(_get(entry, 'latency_ms_ok', 'p99'))} | "
            f"{statuses} | {entry.get('timeouts')} | "
            f"{_fmt(_get(entry, 'lock_hold_ms', 'p99'))} | {entry.get('serialization_retries')} | "
            f"{entry.get('deadlock_retries')} | {cpu_text} |"
        )
    hooks = phases.get("webhooks", {})
    settle = hooks.get("settle_ms", {})
    lines += [
        "",
        f"Webhooks: {hooks.get('distinct_events')} distinct signed `purchase.paid` events of real, "
        "paid sandbox "
        f"purchases (the rest of the {hooks.get('sent')} sent are duplicates). Settle (ack → "
        f"`deposit_credit` journal written) over all {settle.get('acked')} acknowledged events, waiting "
        f"up to {_fmt(settle.get('limit_s'))} s after the phase (waited {_fmt(settle.get('waited_s'))} s): "
        f"{settle.get('credited')} credited, {settle.get('not_credited_in_time')} not "
        "(counted at the limit); "
        f"p50 {_fmt(settle.get('p50'))} ms, p99 {_fmt(settle.get('p99'))} ms, "
        f"max {_fmt(settle.get('max'))} ms; "
        f"credits/s {_fmt(hooks.get('credits_per_s'))}; events still open in the log after the limit "
        f"{hooks.get('backlog_queued_after_limit')} (set aside then); webhook_logs by status "
        f"{hooks.get('webhook_logs_by_status')}.",
        "",
        "### Targets (issue 9)",
        "",
        "| target | measured | goal | met |",
        "|---|---:|---|---|",
    ]
    for row in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        lines.append(f"| {row['target']} | {_fmt(row['value'])} | {row['goal']} | {met} |")
    checks = results.get("checks", {})
    memory = results.get("memory", {})
    lines += [
        "",
        "### Correctness and resources",
        "",
        f"- Overdrafts (negative available/reserved): {checks.get('overdrafts')}; `ledger_verify` exit code "
        f"{checks.get('ledger_verify_exit')}; withdrawals written {checks.get('withdrawals')}; serialization "
        f"retries {checks.get('serialization_retries_total')}, deadlock retries "
        f"{checks.get('deadlock_retries_total')}, given up {checks.get('conflicts_given_up_total')} "
        "(whole run).",
        "- Peak RSS (MiB): web "
        + ", ".join(f"{w['role']} {w['peak_rss_mib']}" for w in memory.get("web", []))
        + "; Celery "
        + ", ".join(f"{w['role']} {w['peak_rss_mib']}" for w in memory.get("celery", []))
        + f"; load generator {memory.get('loadgen_peak_rss_mib')}.",
        "- Largest web worker RSS (MiB) at the end of each phase: "
        + ", ".join(
            f"{name} {phase['web_worker_peak_rss_mib_so_far']}"
            for name, phase in results.get("phases", {}).items()
            if phase.get("web_worker_peak_rss_mib_so_far") is not None
        )
        + ".",
        "- CPU seconds over the whole run: "
        + ", ".join(f"{k} {v}" for k, v in sorted(results.get("cpu_s_total", {}).items()))
        + ".",
    ]
    prof = results.get("profile", {})
    if prof.get("queries"):
        lines.append(
            "- Queries per request (in-process, profile_path.py): "
            + ", ".join(f"{k} {v['queries']}" for k, v in prof["queries"].items())
            + f"; POST /withdrawals in-process {prof.get('ms_per_request_in_process')} ms per request."
        )
    lines.append(f"\n![latency percentiles](../benchmarks/results/{results.get('chart', 'latency.png')})")
    return "\n".join(lines)


def write_doc(path: Path, table: str) -> None:
    block = f"{START}\n{table}\n{END}"
    if path.exists() and START in path.read_text():
        text = path.read_text()
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1] if END in rest else ""
        path.write_text(head + block + tail)
        return
    path.write_text(
        "# Benchmarks\n\n`make bench` (benchmarks/run.py) measures the real stack; the block below is "
        f"rewritten by each run.\n\n{block}\n"
    )


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, p50, p95, p99 = [], [], [], []
    for name, entry in results.get("phases", {}).items():
        lat = entry.get("latency_ms") or {}
        if lat.get("p50") is None:
            continue
        names.append(name)
        p50.append(lat["p50"])
        p95.append(lat["p95"])
        p99.append(lat["p99"])
    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.27
    xs = list(range(len(names)))
    ax.bar([x - width for x in xs], p50, width, label="p50")
    ax.bar(xs, p95, width, label="p95")
    ax.bar([x + width for x in xs], p99, width, label="p99")
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log; every request sent; open loop: from scheduled send)")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_title(
        f"Wallet latency percentiles, {results.get('started_at')} (load avg {results.get('load_avg_start')})"
    )
    ax.legend()
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    """Re-render the targets, the table in docs/benchmarks.md and the chart from a results file.

    python benchmarks/report.py [benchmarks/results/latest.json]
    """
    import json
    import sys

    root = Path(__file__).resolve().parent.parent
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "benchmarks" / "results" / "latest.json"
    results = json.loads(source.read_text())
    results["targets"] = targets(results)
    chart(results, source.with_name(results.get("chart", "latency.png")))
    source.write_text(json.dumps(results, indent=2, default=str))
    write_doc(root / "docs" / "benchmarks.md", markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
