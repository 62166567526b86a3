"""The Redis cache backend with one connection pool (and one redis.Redis client) per process.

Django keeps a cache object per thread, and its Redis backend gives each one its own client and pool. A
gunicorn worker with a dozen threads then holds a dozen pools, and every short-lived thread (a Celery
task pool, a test's threads) leaves its sockets to the garbage collector. redis-py's pools are
thread-safe and reset themselves after a fork, so all threads of a process can share one.
"""

import atexit
import logging
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db import connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()


class _OneClientPerPool(RedisCacheClient):
    """Django's Redis client, reusing one redis.Redis object per connection pool.

    Django builds a new redis.Redis for every cache operation. Anything that keeps per-client state then
    grows with traffic: the rate limiter's registered Lua script did, and a web worker grew by ~70 KB per
    throttled request (200 MiB per 3,000 in a profile; src/wallet/core/tests/test_cache.py). A redis.Redis
    is thread-safe (each command takes a connection from the pool), so one per pool does the same work.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis_by_pool: dict[int, Any] = {}
        self._redis_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = getattr(self, "_get_connection_pool")(write)  # noqa: B009  # private, no type stubs
        client = self._redis_by_pool.get(id(pool))
        if client is None:
            with self._redis_lock:
                client = self._redis_by_pool.get(id(pool))
                if client is None:
                    new_client = getattr(self, "_client")  # noqa: B009  # the redis.Redis class
                    client = self._redis_by_pool[id(pool)] = new_client(connection_pool=pool)
        return client


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _OneClientPerPool

    @cached_property
    def _cache(self) -> Any:
        # Django's backend keeps these as private attributes without type stubs.
        servers, options, client_class = (
            getattr(self, "_servers"),  # noqa: B009
            getattr(self, "_options"),  # noqa: B009
            getattr(self, "_class"),  # noqa: B009
        )
        key = (*servers, repr(sorted(options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = client_class(servers, **options)
            return client


def redis_client() -> Any:
    """The redis.Redis client behind the default Django cache (always Redis: docs/adr/0013)."""
    return default_cache._cache.get_client(write=True)  # type: ignore[attr-defined]


def incr(key: str, by: int = 1) -> None:
    """Add to an integer in the default cache, creating it (without expiry) if missing: one round trip
    (INCRBY).

    :raises Exception: whatever the cache raises; callers decide whether an outage matters.
    """
    redis_client().incrby(default_cache.make_and_validate_key(key), by)


def read_through(*, key: str, generation_key: str, timeout: int, fill: Callable[[], T]) -> T:
    """A value from the cache if it was filled under the current generation, else `fill()` (then cached).

    One round trip (MGET) reads the generation and the entry, which carries the generation it was filled
    under. The generation is read before `fill` reads the database, so a fill that raced a committed change
    carries the generation that change's `generation_bump` has already moved past: it is never served.
    Inside a transaction `fill` may see uncommitted rows, so it is neither cached nor served from the cache.
    A cache outage falls back to `fill` (the cache is an optimisation). `timeout` only bounds how long a
    lost bump could serve an old value.
    """
    if timeout <= 0 or connection.in_atomic_block:
        return fill()
    try:
        found = default_cache.get_many([generation_key, key])
    except Exception:
        logger.warning("cache unavailable for %s", key, exc_info=True)
        return fill()
    generation = int(found.get(generation_key) or 0)
    entry = found.get(key)
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
        return entry[1]
    value = fill()
    try:
        default_cache.set(key, (generation, value), timeout=timeout)
    except Exception:
        logger.warning("cache not filled for %s", key, exc_info=True)
    return value


def generation_bump(generation_key: str) -> None:
    """Move a read_through generation on, so no entry filled before is served again. Call it once the
    change is committed; an outage is logged, not raised (a committed change must not fail on the cache)."""
    try:
        incr(generation_key)
    except Exception:
        logger.warning("cache generation %s not moved on", generation_key, exc_info=True)


@atexit.register
def _disconnect_all() -> None:
    """Close the pools' sockets at exit rather than leaving them to the garbage collector."""
    with _clients_lock:
        for client in _clients.values():
            for pool in getattr(client, "_pools", {}).values():
                pool.disconnect()
