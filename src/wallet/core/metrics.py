"""Counters shared by every process (web workers, Celery workers), kept in the Django cache (Redis).

Cheap on purpose: they count rare events (retries, dead letters) that operators and the benchmarks read.
"""

import logging

from django.core.cache import cache

from wallet.core import cache as shared_cache

logger = logging.getLogger(__name__)

_PREFIX = "metrics:"


def increment(name: str, by: int = 1) -> None:
    increment_many({name: by})


def increment_many(counts: dict[str, int]) -> None:
    """Add to several counters in one round trip to Redis (INCRBY creates a missing counter at 0)."""
    try:
        client = shared_cache.redis_client()
        if client is None:  # another cache backend: one at a time
            for name, by in counts.items():
                shared_cache.incr(_PREFIX + name, by)
            return
        pipe = client.pipeline(transaction=False)
        for name, by in counts.items():
            pipe.incrby(cache.make_and_validate_key(_PREFIX + name), by)
        pipe.execute()
    except Exception:  # a counter must never break the work it counts
        logger.warning("metrics %s not counted", sorted(counts), exc_info=True)


def read(name: str) -> int:
    return int(cache.get(_PREFIX + name) or 0)


def reset(name: str) -> None:
    cache.delete(_PREFIX + name)


def read_all() -> dict[str, int]:
    """Every counter that has been incremented, by name (for /metrics). Empty without Redis."""
    client = shared_cache.redis_client()
    if client is None:  # not the Redis backend: names cannot be listed
        return {}
    pattern = cache.make_key(_PREFIX + "*")
    stem = pattern[: -len(_PREFIX + "*")]
    names = [
        (raw.decode() if isinstance(raw, bytes) else str(raw))[len(stem) + len(_PREFIX) :]
        for raw in client.scan_iter(match=pattern, count=500)
    ]
    values = cache.get_many([_PREFIX + name for name in names])
    return {name: int(values.get(_PREFIX + name) or 0) for name in sorted(names)}
