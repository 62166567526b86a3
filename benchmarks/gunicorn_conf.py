"""gunicorn hooks for the wallet under benchmark: time how long a balance row stays locked.

Method (a wrapper, not a database statistic): in each worker, after the app is loaded, wrap
`wallet.ledger.services.balance_lock` (what `ledger.balance_movement` calls) to note when `SELECT ... FOR
UPDATE` on the balance row returned, and `wallet.core.db._run_with_retries` to note when the transaction's
COMMIT (or rollback) returned. The
difference is the time the row stayed locked as seen from Python: it includes the rest of the
transaction's statements, the Python between them and the commit's WAL flush, so it is an upper bound on
the database-side hold time by one round trip. Samples (ms) are pushed to the Redis list
`bench:lockhold` of BENCH_REDIS_URL. Nothing in the product changes; only this server process is wrapped.
"""

import contextlib
import os
import threading
import time
from typing import Any

_local = threading.local()


def post_worker_init(worker: Any) -> None:
    url = os.environ.get("BENCH_REDIS_URL")
    if not url:
        return
    import redis

    import wallet.core.db as db
    import wallet.ledger.services as ledger_services

    client = redis.Redis.from_url(url)
    original_lock = ledger_services.balance_lock
    original_run = db._run_with_retries

    def balance_lock(**kwargs: Any) -> Any:
        balance = original_lock(**kwargs)
        _local.locked_at = time.perf_counter()
        return balance

    def run_with_retries(fn: Any, **kwargs: Any) -> Any:
        _local.locked_at = None
        try:
            return original_run(fn, **kwargs)
        finally:
            locked_at = getattr(_local, "locked_at", None)
            if locked_at is not None:
                held_ms = (time.perf_counter() - locked_at) * 1000.0
                # A lost sample must not fail the request.
                with contextlib.suppress(Exception):
                    client.rpush("bench:lockhold", f"{held_ms:.3f}")

    ledger_services.balance_lock = balance_lock
    db._run_with_retries = run_with_retries
