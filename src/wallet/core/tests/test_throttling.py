"""The rate limits count atomically: concurrent requests cannot push more than the limit through."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from wallet.core.http.throttling import PerClientIp, limits

pytestmark = pytest.mark.proof


def _throttle(scope: str) -> Any:
    (throttle_class,) = limits((scope, PerClientIp))
    return throttle_class


def test_thirty_two_threads_get_exactly_the_limit_through(
    settings: Any, report_figure: Callable[[str], None]
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "atomic_test": "50/min"}
    throttle_class = _throttle("atomic_test")
    request = Request(APIRequestFactory().get("/api/v1/anything", REMOTE_ADDR="203.0.113.7"))
    cache.delete(throttle_class().get_cache_key(request, None))
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(32)

    def hammer() -> None:
        barrier.wait()
        for _ in range(10):
            verdict = throttle_class().allow_request(request, None)
            with lock:
                allowed.append(verdict)

    threads = [threading.Thread(target=hammer) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(allowed) == 320
    assert allowed.count(True) == 50
    report_figure(
        f"rate limit under concurrency: 32 threads, 320 requests, limit 50/min, allowed {allowed.count(True)}"
    )


def test_over_the_limit_the_wait_is_until_the_oldest_request_leaves_the_window(settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "wait_test": "2/min"}
    throttle_class = _throttle("wait_test")
    request = Request(APIRequestFactory().get("/api/v1/anything", REMOTE_ADDR="203.0.113.8"))
    cache.delete(throttle_class().get_cache_key(request, None))
    assert throttle_class().allow_request(request, None)
    assert throttle_class().allow_request(request, None)
    refused = throttle_class()
    assert not refused.allow_request(request, None)
    wait = refused.wait()
    assert wait is not None
    assert 55 < wait <= 60


def test_other_clients_have_their_own_window(settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "own_test": "1/min"}
    throttle_class = _throttle("own_test")
    first = Request(APIRequestFactory().get("/", REMOTE_ADDR="203.0.113.9"))
    second = Request(APIRequestFactory().get("/", REMOTE_ADDR="203.0.113.10"))
    for request in (first, second):
        cache.delete(throttle_class().get_cache_key(request, None))
    assert throttle_class().allow_request(first, None)
    assert not throttle_class().allow_request(first, None)
    assert throttle_class().allow_request(second, None)


def test_with_redis_unreachable_the_limit_fails_open(settings: Any) -> None:
    from wallet.core.testing import unused_port

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "outage_test": "1/min"}
    settings.CACHES = {
        "default": {
            "BACKEND": "wallet.core.cache.SharedPoolRedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_port()}/0",
        }
    }
    throttle_class = _throttle("outage_test")
    request = Request(APIRequestFactory().get("/", REMOTE_ADDR="203.0.113.11"))
    assert throttle_class().allow_request(request, None)
    assert throttle_class().allow_request(request, None)  # over the limit, but nothing can count it
