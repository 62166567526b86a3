# ruff: noqa: S101
"""The benchmark harness must not rot: run every phase for about a second and check the result's shape.

No timing is asserted (the machine is shared and noisy); only that each section exists, that the load
generator got answers, that nothing was overdrawn and that the ledger still verifies. The aggregation of
every request into percentiles and the history writer are tested directly.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import history, run
from benchmarks.loadgen import TIMEOUT, UNFINISHED, summarize

ROOT = Path(__file__).resolve().parent.parent

PHASES = [
    "bare_django_ping",
    "bare_drf_tpcb",
    "withdrawals_many_capacity",
    "withdrawals_many_open",
    "withdrawals_hot_c8",
    "withdrawals_hot_c32",
    "deposits_capacity",
    "deposits_open",
    "webhooks",
    "balance_reads",
    "idempotent_replays",
    "overload",
]


def test_bench_smoke(tmp_path: Path) -> None:
    # Never skipped: make test always provides the servers, and without them the settings refuse to load.
    assert os.environ.get("DATABASE_URL"), "run it through scripts/testenv.py (make test)"
    out = tmp_path / "latest.json"
    proc = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--no-doc", "--db-prefix",
         "bench_smoke", "--out", str(out), "--history", str(tmp_path / "history.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = json.loads(out.read_text())

    for section in (
        "machine",
        "baselines",
        "phases",
        "checks",
        "memory",
        "cpu_s_total",
        "targets",
        "profile",
    ):
        assert section in results, section
    for name in ("pg_test_fsync", "tpcb_c8", "hot_c8", "hot_c32", "spread_c8", "spread_c32"):
        assert name in results["baselines"], name
    assert results["baselines"]["tpcb_c8"]["tps"] is not None
    for name in PHASES:
        phase = results["phases"][name]
        assert phase["sent"] > 0, name
        assert "cpu_s" in phase, name
    for name in PHASES[:-1]:  # everything but overload must have had successful answers
        assert results["phases"][name]["ok"] > 0, (name, results["phases"][name]["status"])
    for name in (
        "bare_django_ping",
        "bare_drf_tpcb",
        "balance_reads",
    ):  # light load: the client itself must not fail
        assert results["phases"][name]["errors"] == 0, (name, results["phases"][name]["status"])
    assert "lock_hold_ms" in results["phases"]["withdrawals_hot_c8"]
    for name in PHASES:  # every request sent is in the percentiles, with the shed share beside them
        phase = results["phases"][name]
        assert phase["latency_ms"]["p50"] is not None, name
        assert 0.0 <= phase["shed_share"] <= 1.0, name
    noop = results["baselines"]["celery_noop"]
    assert set(noop) == {"c1", "c4"}, noop  # smoke: capacity clients capped at 4
    for timing in noop.values():
        assert timing["executed"] > 0, timing
        assert timing["tasks_per_s"] > 0, timing
        assert timing["latency_ms"]["p99"] is not None, timing
    hooks = results["phases"]["webhooks"]
    settle = hooks["settle_ms"]
    assert settle["acked"] > 0, settle
    assert settle["limit_s"] == 30.0, settle
    assert settle["credited"] + settle["not_credited_in_time"] == settle["acked"], settle
    # Some events must really be credited, or the settle measures nothing (test objects refused, say).
    assert settle["credited"] > 0, (settle, hooks["webhook_logs_top_results"])
    assert settle["p99"] is not None, settle  # over every acked event, the uncredited at the limit
    assert "backlog_queued_after_limit" in hooks, hooks
    assert hooks["webhook_logs_by_status"], hooks
    assert results["args"]["overload_duration"] == results["args"]["duration"]  # smoke keeps short phases
    assert results["checks"]["overdrafts"] == 0
    assert results["checks"]["ledger_verify_exit"] == 0
    assert all(r["target"] and "goal" in r for r in results["targets"])
    assert [w for w in results["memory"]["web"] if w["role"] == "worker"]
    assert results["memory"]["celery"]
    assert "queries" in results["profile"], results["profile"]
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert (tmp_path / "profile_withdrawal.txt").exists()
    # A smoke run (and a --no-doc one) never appends to the committed history.
    assert not (tmp_path / "history.jsonl").exists()


def test_percentiles_cover_every_request() -> None:
    # 90 fast 200s, 5 slow 503s and 5 timeouts at the 10 s client timeout (plus the wait for a slot).
    outcomes = [("200", 10.0)] * 90 + [("503", 2000.0)] * 5 + [(TIMEOUT, 10_500.0)] * 3
    outcomes += [(UNFINISHED, 12_000.0)] * 2
    summary = summarize(outcomes, elapsed=10.0)
    assert summary["sent"] == 100
    assert summary["ok"] == 90
    assert summary["ok_per_s"] == 9.0
    assert summary["status"] == {"200": 90, "503": 5, TIMEOUT: 3, UNFINISHED: 2}
    assert summary["shed"] == 5
    assert summary["shed_share"] == 0.05
    assert summary["timeouts"] == 5
    assert summary["unfinished"] == 2
    assert summary["not_ok_share"] == 0.1
    # The 2xx-only view would say 10 ms at p99; over every request the tail is the timeouts'.
    assert summary["latency_ms_ok"]["p99"] == 10.0
    assert summary["latency_ms"]["p50"] == 10.0
    assert summary["latency_ms"]["p95"] == 10_500.0  # the 96th of 100: past the 503s
    assert summary["latency_ms"]["p99"] == 12_000.0
    assert summary["latency_ms"]["max"] == 12_000.0
    assert summary["latency_ms"]["mean"] == round((900 + 10_000 + 31_500 + 24_000) / 100, 3)


def test_only_full_runs_append_to_the_history(tmp_path: Path) -> None:
    full = run.parse_args([])
    assert history.is_full_run(full, run.PHASES)
    assert not history.is_full_run(run.parse_args(["--smoke"]), run.PHASES)
    assert not history.is_full_run(run.parse_args(["--no-doc"]), run.PHASES)
    assert not history.is_full_run(run.parse_args(["--phases", "reads"]), run.PHASES)
    assert full.overload_duration == 60.0
    assert run.parse_args(["--smoke"]).overload_duration == 1.0

    phase = {"mode": "open", "offered_rate": 300.0, "ok_per_s": 250.0, "sent": 4500, "shed_share": 0.1,
             "timeouts": 2, "latency_ms": {"p50": 20.0, "p99": 900.0}}  # fmt: skip
    results = {
        "started_at": "2026-12-04T05:00:00Z",
        "machine": {"cores": 2},
        "args": {"duration": 15.0, "smoke": False},
        "phases": {"webhooks": {**phase, "settle_ms": {"acked": 10, "credited": 9, "p99": 5.0}},
                   "bare_drf_tpcb": {"ok_per_s": 400.0}, "bare_django_ping": {"ok_per_s": 900.0}},
        "baselines": {"tpcb_c8": {"tps": 2000.0}, "pg_test_fsync": {"fdatasync_ops_per_s": 9000.0},
                      "celery_noop": {"c1": {"tasks_per_s": 300.0, "latency_ms": {"p50": 3.0, "p99": 6.0}}}},
        "targets": [{"target": "overdrafts", "value": 0}],
        "checks": {"overdrafts": 0, "ledger_verify_exit": 0},
    }  # fmt: skip
    path = tmp_path / "results" / "history.jsonl"
    history.append(path, results, {"git_sha": "abc", "git_dirty": False})
    history.append(
        path, {**results, "started_at": "2026-12-04T06:00:00Z"}, {"git_sha": "def", "git_dirty": True}
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["timestamp"], x["git_sha"]) for x in lines] == [("2026-12-04T05:00:00Z", "abc"),
                                                             ("2026-12-04T06:00:00Z", "def")]  # fmt: skip
    first = lines[0]
    assert first["machine"] == {"cores": 2}
    assert first["paths"]["webhooks"] == {
        "load": "open 300.0/s", "ok_per_s": 250.0, "sent": 4500,
        "p50_ms": 20.0, "p99_ms": 900.0, "shed_share": 0.1, "timeouts": 2,
    }  # fmt: skip
    assert first["webhook_settle"]["acked"] == 10
    assert first["webhook_settle"]["p99_ms"] == 5.0
    assert first["baselines"]["tpcb_c8"] == 2000.0
    assert first["baselines"]["bare_drf_tpcb_per_s"] == 400.0
    assert first["baselines"]["bare_django_ping_per_s"] == 900.0
    assert first["baselines"]["celery_noop"] == {"c1": {"tasks_per_s": 300.0, "p50_ms": 3.0, "p99_ms": 6.0}}
    assert first["checks"] == {"overdrafts": 0, "ledger_verify_exit": 0}
    assert "smoke" not in first["args"]
    assert history.git_revision()["git_sha"]  # the worktree is a git checkout
