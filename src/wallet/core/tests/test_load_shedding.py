"""Past capacity the API answers a fast 503 with Retry-After instead of queueing without bound."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from wallet.core.context import server_queue_entered
from wallet.core.middleware import LoadSheddingMiddleware
from wallet.core.testing import unused_port

ROOT = Path(__file__).resolve().parents[4]


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


def test_a_request_that_waited_too_long_in_the_server_s_queue_is_shed_unseen_by_the_view(
    settings: Any,
) -> None:
    middleware, release = _middleware(settings, active=4, queued=0, timeout=0.5)
    release.set()
    try:
        server_queue_entered(time.monotonic() - 2.0)  # a thread took it 2 s after it arrived
        shed = middleware(RequestFactory().get("/api/v1/balance"))
        assert shed.status_code == 503
        assert json.loads(shed.content)["error"]["code"] == "overloaded"
        assert middleware(RequestFactory().get("/healthz")).status_code == 200  # probes never
        server_queue_entered(time.monotonic() - 0.1)
        assert middleware(RequestFactory().get("/api/v1/balance")).status_code == 200
        server_queue_entered(None)  # another server: nothing known, nothing shed for it
        assert middleware(RequestFactory().get("/api/v1/balance")).status_code == 200
    finally:
        server_queue_entered(None)


def _burst_through_gunicorn(worker_class: str, tmp_path: Path, *, requests: int) -> list[int]:
    """`requests` simultaneous 250 ms requests to a gunicorn with one worker and one thread."""
    port = unused_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "API_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="wallet.core.tests.settings_with_test_urls",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        API_MAX_ACTIVE_REQUESTS="1",
        API_MAX_QUEUED_REQUESTS="0",
        API_QUEUE_TIMEOUT_SECONDS="0.3",
        LOG_LEVEL="WARNING",
    )
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", "1", "--threads", "1", "--worker-class", worker_class, "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path / f"gunicorn-{worker_class.rsplit('.', 1)[-1]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        start = threading.Barrier(requests)
        statuses: list[int] = []

        def call() -> None:
            start.wait()
            response = httpx.get(f"{base}/api/v1/_test/slow?ms=250", timeout=30)
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1"
            statuses.append(response.status_code)

        threads = [threading.Thread(target=call) for _ in range(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(statuses)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.django_db
def test_through_gunicorn_the_queue_timed_worker_sheds_what_waited_past_the_timeout(
    tmp_path: Path, report_figure: Any
) -> None:
    # One thread, ten requests of 250 ms at once, a 0.3 s queue timeout: the first one or two are served,
    # the rest waited longer than 0.3 s by the time the thread reached them and get a quick 503.
    timed = _burst_through_gunicorn(
        "wallet.core.http.gunicorn_worker.QueueTimedThreadWorker", tmp_path, requests=10
    )
    assert set(timed) <= {200, 503}
    assert 1 <= timed.count(200) <= 3
    assert timed.count(503) >= 7
    # The stock worker hides the same queue from the app: everything waits and is served, however late.
    stock = _burst_through_gunicorn("gthread", tmp_path, requests=10)
    assert stock == [200] * 10
    report_figure(
        f"server-queue shedding (gunicorn, 1 thread, 10 x 250 ms at once, 0.3 s timeout): queue-timed worker "
        f"{timed.count(200)} served + {timed.count(503)} shed; stock gthread {stock.count(200)} served"
    )
