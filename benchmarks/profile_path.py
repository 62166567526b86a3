"""Profile the slowest path (POST /withdrawals) in-process with pyinstrument, and count queries per request.

    python benchmarks/profile_path.py SEED.json OUT_DIR --requests N

Runs inside the wallet's own Django (production settings, the benchmark's database and sandbox) through
django.test.Client, so the profile covers middleware, DRF, the idempotency record, the SERIALIZABLE
reservation, the EFT payment call and the second transaction that applies Revio's answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

BANK = {
    "account_holder": "Bench Mark",
    "account_number": "62001234567",
    "bank_code": "250655",
    "account_type": "current",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("seed")
    parser.add_argument("out_dir")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    seed = json.loads(Path(args.seed).read_text())
    user = seed["users"][-1]
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {user['token']}")
    body = json.dumps({"amount": 1000, "currency": "ZAR", "bank_account": BANK})

    def withdraw(key: str | None = None) -> Any:
        headers = {"HTTP_IDEMPOTENCY_KEY": key or uuid.uuid4().hex}
        return client.post("/api/v1/withdrawals", body, content_type="application/json", **headers)

    queries: dict[str, Any] = {}

    def count(name: str, call: Any) -> None:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = call()
            elapsed = (time.perf_counter() - started) * 1000
        queries[name] = {
            "status": response.status_code,
            "queries": len(captured.captured_queries),
            "ms": round(elapsed, 2),
            "sql": [q["sql"][:160] for q in captured.captured_queries],
        }

    withdraw()  # warm up imports and connections
    count("withdrawal_create", withdraw)
    replay_key = uuid.uuid4().hex
    withdraw(replay_key)
    count("withdrawal_replay", lambda: withdraw(replay_key))
    count("balance_read", lambda: client.get("/api/v1/balance"))
    count(
        "deposit_create",
        lambda: client.post(
            "/api/v1/deposits", json.dumps({"amount": 5000}), content_type="application/json"
        ),
    )

    # CPU per request of each path, in this process (no profiler attached): what a web worker's thread
    # spends in Python, the drivers and the kernel for one request, without the load generator, queueing
    # or the other processes' work.
    cpu_ms: dict[str, float] = {}
    for name, call in (
        ("withdrawal_create", withdraw),
        ("withdrawal_replay", lambda: withdraw(replay_key)),
        ("balance_read", lambda: client.get("/api/v1/balance")),
        ("transaction_list", lambda: client.get("/api/v1/transactions")),
    ):
        rounds = max(5, args.requests // 2)
        cpu_started = time.process_time()
        for _ in range(rounds):
            call()
        cpu_ms[name] = round((time.process_time() - cpu_started) * 1000 / rounds, 2)

    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _ in range(args.requests):
        withdraw()
    profiler.stop()
    elapsed = time.perf_counter() - started
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    (out / "profile_withdrawal.txt").write_text(text)
    # The cheapest authenticated path, where the fixed cost per request (middleware, JWT, DRF) shows.
    reads = Profiler(interval=0.0002)
    reads.start()
    for _ in range(args.requests * 5):
        client.get("/api/v1/balance")
    reads.stop()
    (out / "profile_balance_read.txt").write_text(reads.output_text(unicode=False, color=False))
    summary = {
        "requests": args.requests,
        "ms_per_request_in_process": round(elapsed * 1000 / args.requests, 2),
        "cpu_ms_per_request_in_process": cpu_ms,
        "queries": queries,
        "profile_file": "profile_withdrawal.txt",
        "profile_read_file": "profile_balance_read.txt",
    }
    (out / "profile_summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
