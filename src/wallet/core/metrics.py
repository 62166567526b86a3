"""Counters shared by every process (web workers, Celery workers), kept in the Django cache (Redis).

Cheap on purpose: they count rare events (retries, dead letters) that operators and the benchmarks read.
"""

import logging
from typing import Any

from django.core.cache import cache

logger = logging.getLogger(__name__)

_PREFIX = "metrics:"


def increment(name: str, by: int = 1) -> None:
    increment_many({name: by})


def increment_many(counts: dict[str, int]) -> None:
    """Add to several counters in one round trip to Redis (INCRBY creates a missing counter at 0)."""
    try:
        client = redis_client()
        if client is None:  # another cache backend (make run's embedded mode): the generic, slower way
            for name, by in counts.items():
                _increment_generic(_PREFIX + name, by)
            return
        pipe = client.pipeline(transaction=False)
        for name, by in counts.items():
            pipe.incrby(cache.make_and_validate_key(_PREFIX + name), by)
        pipe.execute()
    except Exception:  # a counter must never break the work it counts
        logger.warning("metrics %s not counted", sorted(counts), exc_info=True)


def _increment_generic(key: str, by: int) -> None:
    try:
        cache.incr(key, by)
    except ValueError:  # first increment: the key does not exist yet
        if not cache.add(key, by, timeout=None):
            cache.incr(key, by)


def incr_cache_key(key: str) -> None:
    """Increment an integer in the Django cache in one round trip (creating it at 1), without expiry.

    :raises Exception: whatever the cache raises; callers decide whether an outage matters.
    """
    client = redis_client()
    if client is None:
        _increment_generic(key, 1)
    else:
        client.incr(cache.make_and_validate_key(key))


def redis_client() -> Any:
    """The Redis client behind the Django cache, or None if the cache is not Redis."""
    get_client = getattr(getattr(cache, "_cache", None), "get_client", None)
    return get_client(write=True) if get_client is not None else None


def read(name: str) -> int:
    return int(cache.get(_PREFIX + name) or 0)


def reset(name: str) -> None:
    cache.delete(_PREFIX + name)


def read_all() -> dict[str, int]:
    """Every counter that has been incremented, by name (for /metrics). Empty without Redis."""
    client_holder = getattr(cache, "_cache", None)
    get_client = getattr(client_holder, "get_client", None)
    if get_client is None:  # not the Redis backend: names cannot be listed
        return {}
    pattern = cache.make_key(_PREFIX + "*")
    stem = pattern[: -len(_PREFIX + "*")]
    names = [
        (raw.decode() if isinstance(raw, bytes) else str(raw))[len(stem) + len(_PREFIX) :]
        for raw in get_client().scan_iter(match=pattern, count=500)
    ]
    values = cache.get_many([_PREFIX + name for name in names])
    return {name: int(values.get(_PREFIX + name) or 0) for name in sorted(names)}
