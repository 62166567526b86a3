"""The Redis cache backend with one connection pool (and one redis.Redis client) per process.

Django keeps a cache object per thread, and its Redis backend gives each one its own client and pool. A
gunicorn worker with a dozen threads then holds a dozen pools, and every short-lived thread (a Celery
task pool, a test's threads) leaves its sockets to the garbage collector. redis-py's pools are
thread-safe and reset themselves after a fork, so all threads of a process can share one.
"""

import atexit
import threading
from functools import cached_property
from typing import Any

from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

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
    """The Redis client behind the default Django cache, or None if that cache is not Redis."""
    get_client = getattr(getattr(default_cache, "_cache", None), "get_client", None)
    return get_client(write=True) if get_client is not None else None


def incr(key: str, by: int = 1) -> None:
    """Add to an integer in the default cache, creating it (without expiry) if missing: one round trip on
    Redis (INCRBY), the generic get-or-add on other backends (make run's embedded mode).

    :raises Exception: whatever the cache raises; callers decide whether an outage matters.
    """
    client = redis_client()
    if client is not None:
        client.incrby(default_cache.make_and_validate_key(key), by)
        return
    try:
        default_cache.incr(key, by)
    except ValueError:  # the key does not exist yet
        if not default_cache.add(key, by, timeout=None):
            default_cache.incr(key, by)


@atexit.register
def _disconnect_all() -> None:
    """Close the pools' sockets at exit rather than leaving them to the garbage collector."""
    with _clients_lock:
        for client in _clients.values():
            for pool in getattr(client, "_pools", {}).values():
                pool.disconnect()
