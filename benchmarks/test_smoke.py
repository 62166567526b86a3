# ruff: noqa: S101
"""The benchmark harness must not rot: run every phase for about a second and check the result's shape.

No timing is asserted (the machine is shared and noisy); only that each section exists, that the load
generator got answers, that nothing was overdrawn and that the ledger still verifies.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PHASES = [
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
         "bench_smoke", "--out", str(out)],
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
    for name in ("bare_drf_tpcb", "balance_reads"):  # light load: the client itself must not fail
        assert results["phases"][name]["errors"] == 0, (name, results["phases"][name]["status"])
    assert "lock_hold_ms" in results["phases"]["withdrawals_hot_c8"]
    assert "settle_ms" in results["phases"]["webhooks"]
    assert results["checks"]["overdrafts"] == 0
    assert results["checks"]["ledger_verify_exit"] == 0
    assert all(r["target"] and "goal" in r for r in results["targets"])
    assert [w for w in results["memory"]["web"] if w["role"] == "worker"]
    assert results["memory"]["celery"]
    assert "queries" in results["profile"], results["profile"]
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert (tmp_path / "profile_withdrawal.txt").exists()
