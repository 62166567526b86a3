"""Counters shared by every process (web workers, Celery workers), kept in the Django cache (Redis).

Cheap on purpose: they count rare events (retries, dead letters) that operators and the benchmarks read.
"""

import logging
from dataclasses import dataclass

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


# -- histograms kept as counters: one per bucket, so they add up across processes like the counters do ----

# Upper bounds (seconds) of a call's latency buckets; the last bucket is +Inf.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Histogram:
    """A histogram read back from its counters: cumulative (upper bound, count) pairs ending at "+Inf"."""

    buckets: list[tuple[str, int]]
    sum_seconds: float


def histogram_increments(
    name: str, seconds: float, bounds: tuple[float, ...] = LATENCY_BUCKETS
) -> dict[str, int]:
    """The counters one observation adds to (for increment_many): its own bucket, not the cumulative ones,
    so an observation costs one INCRBY whatever the number of buckets; and the sum in microseconds."""
    bucket = next((f"{bound:g}" for bound in bounds if seconds <= bound), "inf")
    return {f"{name}_le_{bucket}": 1, f"{name}_sum_us": max(0, int(seconds * 1_000_000))}


def histogram_read(
    values: dict[str, int], name: str, bounds: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram | None:
    """The histogram `name` from read_all()'s values, or None if nothing was observed."""
    counts = [values.get(f"{name}_le_{bound:g}", 0) for bound in bounds] + [values.get(f"{name}_le_inf", 0)]
    if not any(counts):
        return None
    cumulative, running = [], 0
    for label, count in zip([f"{bound:g}" for bound in bounds] + ["+Inf"], counts, strict=True):
        running += count
        cumulative.append((label, running))
    return Histogram(buckets=cumulative, sum_seconds=values.get(f"{name}_sum_us", 0) / 1_000_000)
