"""The no-op Celery baseline: the round trip enqueue -> executed through the wallet's own Celery app.

    celery -A benchmarks.celery_noop worker -Q ...,bench     # the benchmark's worker (run.py)
    python benchmarks/celery_noop.py OUT.json --clients N --duration S

The module adds one task, `bench.noop`, to the product's app (config.celery: same broker, serializer,
acks_late, prefetch 1, prefork pool), so the worker the wallet phases use also runs it and the baseline
pays exactly what every product task pays for the queue. The task only pushes the time it ran to a Redis
list named by the caller; each client thread enqueues, blocks on that list (BLPOP) and enqueues again
(closed loop), so per second is the worker's round-trip rate and the latency is enqueue -> executed -> seen.
A task not seen within `timeout` seconds counts at the timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import redis  # noqa: E402

from config.celery import app  # noqa: E402

QUEUE = "bench"
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


@app.task(name="bench.noop", ignore_result=True)
def noop(reply_key: str) -> None:
    client = _redis()
    client.rpush(reply_key, f"{time.time():.6f}")
    client.expire(reply_key, 60)


def measure(*, clients: int, duration: float, timeout: float = 10.0) -> dict[str, Any]:
    from benchmarks.loadgen import TIMEOUT, summarize

    outcomes: list[tuple[str, float]] = []
    lock = threading.Lock()
    # One unmeasured round trip first: the first enqueue loads the settings and opens the broker
    # connection (over a second here), which is not the queue's cost.
    warm = f"bench:noop:{uuid.uuid4().hex}"
    noop.apply_async(args=[warm], queue=QUEUE)
    if not _redis().blpop([warm], timeout=60):
        raise RuntimeError("the no-op task did not run within 60 s: is a worker consuming the bench queue?")
    deadline = time.perf_counter() + duration

    def client_loop() -> None:
        conn = _redis()
        while time.perf_counter() < deadline:
            key = f"bench:noop:{uuid.uuid4().hex}"
            started = time.perf_counter()
            noop.apply_async(args=[key], queue=QUEUE)
            got = conn.blpop([key], timeout=timeout)
            latency_ms = (time.perf_counter() - started) * 1000.0
            with lock:
                outcomes.append(("200" if got else TIMEOUT, latency_ms))

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    summary = summarize(outcomes, elapsed)
    return {
        "clients": clients,
        "duration_s": round(elapsed, 3),
        "tasks_per_s": summary["ok_per_s"],
        "executed": summary["ok"],
        "timeouts": summary["timeouts"],
        "latency_ms": summary["latency_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    result = measure(clients=args.clients, duration=args.duration)
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
