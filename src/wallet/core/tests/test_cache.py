"""The shared Redis cache backend: one pool and one redis.Redis client per process, whatever the traffic."""

import gc
import threading
import tracemalloc

from django.core.cache import cache

from wallet.core import cache as shared_cache
from wallet.core.http import throttling


def test_one_client_per_process_so_per_client_state_stays_bounded() -> None:
    # Django's backend built a new redis.Redis for every operation. The rate limiter keeps its Lua script
    # per client, so each request left a client (and its Script) behind: a web worker grew by ~70 KB per
    # throttled request (200 MiB per 3,000 in a profile). Now every operation reuses the process's client.
    def work(rounds: int) -> None:
        for _ in range(rounds):
            client = shared_cache.redis_client()
            throttling._sliding_window_script(client)(keys=["leak-probe-window"], args=[60_000, 10**9, "x"])
            cache.get_many(["leak-probe", "leak-probe-2"])
            shared_cache.incr("leak-probe-counter")

    work(20)  # warm: the pool's connections, the client, the script
    scripts_before = len(throttling._scripts)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        threads = [threading.Thread(target=work, args=(250,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(throttling._scripts) == scripts_before
    assert grown < 1024 * 1024, f"{grown} bytes still held after 1,000 throttled rounds"
    assert cache.get("leak-probe-counter") == 1_020
    assert shared_cache.redis_client() is shared_cache.redis_client()
