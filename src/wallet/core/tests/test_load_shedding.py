"""Past capacity the API answers a fast 503 with Retry-After instead of queueing without bound."""

import json
import threading
import time
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from wallet.core.middleware import LoadSheddingMiddleware


def _middleware(settings: Any, *, active: int, queued: int, timeout: float) -> tuple[Any, threading.Event]:
    settings.API_MAX_ACTIVE_REQUESTS = active
    settings.API_MAX_QUEUED_REQUESTS = queued
    settings.API_QUEUE_TIMEOUT_SECONDS = timeout
    release = threading.Event()

    def slow_view(request: HttpRequest) -> HttpResponse:
        release.wait(timeout=30)
        return HttpResponse("done")

    return LoadSheddingMiddleware(slow_view), release


def _start(middleware: Any, path: str, count: int) -> tuple[list[threading.Thread], list[HttpResponse]]:
    responses: list[HttpResponse] = []
    lock = threading.Lock()

    def call() -> None:
        response = middleware(RequestFactory().get(path))
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, responses


def _wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.django_db
def test_beyond_active_and_queued_requests_the_rest_are_shed_at_once(settings: Any) -> None:
    middleware, release = _middleware(settings, active=2, queued=3, timeout=30)
    threads, responses = _start(middleware, "/api/v1/balance", 9)
    # 2 working + 3 waiting; the other 4 must be answered while the first ones are still running.
    _wait_until(lambda: len(responses) == 4)
    assert all(r.status_code == 503 for r in responses)
    assert all(r["Retry-After"] == "1" for r in responses)
    assert json.loads(responses[0].content)["error"]["code"] == "overloaded"

    release.set()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [503] * 4


@pytest.mark.django_db
def test_a_queued_request_gives_up_after_the_queue_timeout(settings: Any) -> None:
    middleware, release = _middleware(settings, active=1, queued=5, timeout=0.2)
    threads, responses = _start(middleware, "/api/v1/balance", 3)
    _wait_until(lambda: len(responses) == 2)  # both waiters time out while the first still works
    assert [r.status_code for r in responses] == [503, 503]
    release.set()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in responses) == [200, 503, 503]


def test_health_probes_and_non_api_paths_are_never_shed(settings: Any) -> None:
    middleware, release = _middleware(settings, active=1, queued=0, timeout=0.1)
    release.set()  # views return at once; the point is that these paths never take a slot
    middleware._slots.acquire()  # the only slot is busy
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert middleware(RequestFactory().get(path)).status_code == 200
        assert middleware(RequestFactory().get("/api/v1/balance")).status_code == 503
    finally:
        middleware._slots.release()


def test_zero_disables_it(settings: Any) -> None:
    middleware, release = _middleware(settings, active=0, queued=0, timeout=0.1)
    release.set()
    assert middleware(RequestFactory().get("/api/v1/balance")).status_code == 200
