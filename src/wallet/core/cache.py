"""The Redis cache backend with one connection pool per process instead of one per thread.

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
from django.core.cache.backends.redis import RedisCache

_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
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
