"""The committed history of full runs: benchmarks/results/history.jsonl, one JSON object per line.

Before/after claims in docs/benchmarks.md point at lines of this file (by timestamp and git sha), not at
runs nobody can see. Only a full run appends: every phase, not --smoke, not --no-doc (run.py decides with
`is_full_run`); a smoke or partial run's figures are not comparable with a full run's.
"""

from __future__ import annotations

import json
import subprocess
from argparse import Namespace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "benchmarks" / "results" / "history.jsonl"


def is_full_run(args: Namespace, all_phases: tuple[str, ...]) -> bool:
    return not args.smoke and not args.no_doc and set(args.phases) == set(all_phases)


def git_revision() -> dict[str, Any]:
    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return {"git_sha": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain"))}


def _path_figures(entry: dict[str, Any]) -> dict[str, Any]:
    lat = entry.get("latency_ms") or {}
    return {
        "load": f"open {entry.get('offered_rate')}/s"
        if entry.get("mode") == "open"
        else f"closed {entry.get('concurrency')}",
        "ok_per_s": entry.get("ok_per_s"),
        "sent": entry.get("sent"),
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "shed_share": entry.get("shed_share"),
        "timeouts": entry.get("timeouts"),
    }


def entry(results: dict[str, Any], revision: dict[str, Any]) -> dict[str, Any]:
    """One history line: when, which code, which machine, every path's figures and the baselines."""
    base = results.get("baselines", {})
    phases = results.get("phases", {})
    hooks = phases.get("webhooks", {})
    settle = hooks.get("settle_ms") or {}
    return {
        "timestamp": results.get("started_at"),
        **revision,
        "machine": results.get("machine"),
        "load_avg_start": results.get("load_avg_start"),
        "load_avg_end": results.get("load_avg_end"),
        "args": {
            k: v for k, v in (results.get("args") or {}).items() if k not in {"phases", "no_doc", "smoke"}
        },
        "paths": {name: _path_figures(phase) for name, phase in phases.items()},
        "webhook_settle": {
            "acked": settle.get("acked"),
            "credited": settle.get("credited"),
            "limit_s": settle.get("limit_s"),
            "p50_ms": settle.get("p50"),
            "p99_ms": settle.get("p99"),
            "credits_per_s": hooks.get("credits_per_s"),
        },
        "baselines": {
            **{
                name: base[name].get("tps")
                for name in ("tpcb_c8", "hot_c8", "hot_c32", "spread_c8", "spread_c32")
                if isinstance(base.get(name), dict)
            },
            "fdatasync_ops_per_s": (base.get("pg_test_fsync") or {}).get("fdatasync_ops_per_s"),
            "bare_drf_tpcb_per_s": (phases.get("bare_drf_tpcb") or {}).get("ok_per_s"),
            "bare_django_ping_per_s": (phases.get("bare_django_ping") or {}).get("ok_per_s"),
            "celery_noop": {
                name: {
                    "tasks_per_s": run.get("tasks_per_s"),
                    "p50_ms": (run.get("latency_ms") or {}).get("p50"),
                    "p99_ms": (run.get("latency_ms") or {}).get("p99"),
                }
                for name, run in (base.get("celery_noop") or {}).items()
            },
        },
        "targets": {row["target"]: row["value"] for row in results.get("targets", [])},
        "checks": {k: (results.get("checks") or {}).get(k) for k in ("overdrafts", "ledger_verify_exit")},
    }


def append(path: Path, results: dict[str, Any], revision: dict[str, Any] | None = None) -> dict[str, Any]:
    line = entry(results, revision if revision is not None else git_revision())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")
    return line
