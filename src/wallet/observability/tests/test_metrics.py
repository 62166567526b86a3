"""/metrics: scraped over HTTP from a live server on real PostgreSQL and Redis, only for the token or the
network; counters and the Revio latency histogram add up across processes, and so do django-prometheus's
series across gunicorn workers (config/gunicorn.py)."""

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from config.celery import app as celery_app
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core import metrics as counters
from wallet.core.testing import unused_port
from wallet.observability.metrics import queue_depths
from wallet.reconciliation.models import ReconciliationRun, RunStatus
from wallet.revio.errors import RevioRejectedError
from wallet.revio.payouts import get_payouts
from wallet.transactions import services
from wallet.transactions.errors import DepositProviderUnavailableError
from wallet.transactions.models import Transaction
from wallet.webhooks.models import WebhookLog

TOKEN = "metrics-test-token"
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return TOKEN


def scrape(base_url: str) -> str:
    response = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def _line(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{prefix} not in:\n{text}")


@pytest.mark.django_db
class TestAccess:
    def test_hidden_without_token_or_network(self, settings: Any) -> None:
        settings.METRICS_TOKEN = TOKEN
        response = Client().get("/metrics")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_a_wrong_token_is_401_in_the_error_shape(self, settings: Any) -> None:
        settings.METRICS_TOKEN = TOKEN
        response = Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"

    def test_no_token_configured_means_no_token_works(self, settings: Any) -> None:
        settings.METRICS_TOKEN = ""
        assert Client(HTTP_AUTHORIZATION="Bearer ").get("/metrics").status_code == 401

    def test_an_allow_listed_network_gets_in(self, settings: Any) -> None:
        settings.METRICS_TOKEN = ""
        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8"]
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="192.0.2.1").get("/metrics").status_code == 404


def _webhook_row(status: str, received_at: Any) -> None:
    WebhookLog.objects.create(
        dedup_key=str(uuid.uuid4()),
        event_type="purchase.paid",
        object_type="purchase",
        object_id=str(uuid.uuid4()),
        updated_on=0,
        body="{}",
        verified_with="company",
        status=status,
        received_at=received_at,
    )


@pytest.mark.django_db(transaction=True)
def test_database_series_count_only_the_rows_being_worked(
    live_server: Any, token: str, make_user: Any
) -> None:
    user: User = make_user()
    old = timezone.now() - timedelta(hours=2)
    Transaction.objects.create(user_id=user.id, type="deposit", status="pending", amount=1000, currency="ZAR")
    for status in ("completed", "completed", "failed"):  # finished: not counted at scrape time
        Transaction.objects.create(
            user_id=user.id, type="deposit", status=status, amount=1000, currency="ZAR"
        )
    Transaction.objects.create(
        user_id=user.id, type="withdrawal", status="processing", amount=1000, currency="ZAR", updated_at=old
    )
    for status, received_at in (("received", old), ("dead_lettered", timezone.now()), ("processed", old)):
        _webhook_row(status, received_at)
    ReconciliationRun.objects.create(
        status=RunStatus.COMPLETED, period_start=old.date(), period_end=old.date(), discrepancies_found=2
    )
    ReconciliationRun.objects.create(  # a newer run still running does not replace the last finished one
        status=RunStatus.RUNNING, period_start=old.date(), period_end=old.date(), discrepancies_found=9
    )
    counters.increment("webhooks_duplicate", 3)

    text = scrape(live_server.url)

    assert _line(text, 'wallet_transactions{status="pending",type="deposit"}') == 1
    assert _line(text, 'wallet_transactions{status="processing",type="withdrawal"}') == 1
    assert 'status="completed"' not in text
    assert 'wallet_transactions{status="failed"' not in text
    assert _line(text, 'wallet_transactions_stuck{status="processing",type="withdrawal"}') == 1
    assert _line(text, 'wallet_transactions_stuck{status="pending",type="deposit"}') == 0
    assert _line(text, 'wallet_webhook_events{status="received"}') == 1
    assert 'wallet_webhook_events{status="processed"}' not in text
    assert _line(text, "wallet_webhook_dead_letters") == 1
    assert _line(text, "wallet_webhook_processing_lag_seconds") >= 7000
    assert _line(text, "wallet_reconciliation_discrepancies") == 2
    assert _line(text, 'wallet_webhook_intake_total{outcome="duplicate"}') == 3
    assert _line(text, 'wallet_events_total{event="webhooks_duplicate"}') == 3
    assert "django_http_requests_total_by_method_total" in text  # django-prometheus's own series


def _plan(sql: str, params: list[Any]) -> str:
    with connection.cursor() as cursor:
        # What the planner can use, not what it prefers on a table of a few rows.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
def test_the_scrape_queries_are_index_range_scans_not_table_scans() -> None:
    """Each query /metrics runs is answered from an index over the open rows only (EXPLAIN)."""
    from wallet.reconciliation.selectors import latest_run_discrepancies
    from wallet.transactions.selectors import transaction_open_figures
    from wallet.webhooks.selectors import webhook_log_figures

    statements: list[tuple[str, list[Any]]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql, list(params or [])))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        transaction_open_figures(stuck_before=timezone.now())
        webhook_log_figures()
        latest_run_discrepancies()
    assert len(statements) == 5
    for sql, params in statements:
        plan = _plan(sql, params)
        assert "Seq Scan" not in plan, plan
        assert "Index" in plan, plan
        assert "Index Cond" in plan or "Limit" in plan, plan  # a range or one row, not the whole index


@pytest.mark.django_db(transaction=True)
def test_revio_latency_histogram_breakers_and_queue_depth(
    live_server: Any, token: str, user: User, revio: SandboxProcess, settings: Any
) -> None:
    services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
    with pytest.raises(RevioRejectedError):
        get_payouts().get(str(uuid.uuid4()))  # an EFT read of a payment the API does not know: 404
    revio.control.fail_next("purchases.create", status=503, count=10)
    settings.REVIO_BREAKER_FAILURE_THRESHOLD = 1
    with pytest.raises(DepositProviderUnavailableError):
        services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
    before = queue_depths()
    with celery_app.connection_for_write() as broker:  # three messages in the queue, as kombu keeps them
        queue = broker.SimpleQueue("events")
        for number in range(3):
            queue.put({"n": number})
        queue.close()

    text = scrape(live_server.url)

    assert _line(text, 'wallet_revio_calls_total{api="gateway",operation="create",outcome="ok"}') == 1
    assert (
        _line(text, 'wallet_revio_calls_total{api="gateway",operation="create",outcome="unavailable"}') == 1
    )
    assert _line(text, 'wallet_revio_calls_total{api="eft",operation="read",outcome="rejected"}') == 1
    gateway = 'wallet_revio_call_duration_seconds_{}{{api="gateway",{}operation="create"}}'
    assert _line(text, gateway.format("count", "")) == 2
    assert _line(text, gateway.format("bucket", 'le="+Inf",')) == 2
    assert _line(text, gateway.format("bucket", 'le="30",')) == 2
    assert _line(text, gateway.format("sum", "")) > 0
    assert _line(text, 'wallet_revio_call_duration_seconds_count{api="eft",operation="read"}') >= 1
    assert _line(text, 'wallet_revio_breaker_state{api="gateway",state="open"}') == 1
    assert _line(text, 'wallet_revio_breaker_state{api="eft",state="closed"}') == 1
    assert _line(text, 'wallet_celery_queue_depth{queue="events"}') == before["events"] + 3
    assert _line(text, 'wallet_celery_queue_depth{queue="payouts"}') == before["payouts"]


def _child_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        **extra,
    )
    return env


_OBSERVE = """
import django
django.setup()
from wallet.revio.observed import observed
for _ in range(5):
    with observed("eft", "read"):
        pass
"""


@pytest.mark.django_db
def test_revio_calls_made_in_two_processes_add_up(token: str) -> None:
    for _ in range(2):  # as a web worker and a Celery worker would, each in its own process
        subprocess.run([sys.executable, "-c", _OBSERVE], env=_child_env(), cwd=ROOT, check=True, timeout=60)

    text = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()

    assert _line(text, 'wallet_revio_calls_total{api="eft",operation="read",outcome="ok"}') == 10
    assert _line(text, 'wallet_revio_call_duration_seconds_count{api="eft",operation="read"}') == 10
    assert (
        _line(text, 'wallet_revio_call_duration_seconds_bucket{api="eft",le="0.025",operation="read"}') == 10
    )


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The web process as the image starts it (config/gunicorn.py), two workers of one thread each, on the
    test database; yields its URL and its PROMETHEUS_MULTIPROC_DIR."""
    from urllib.parse import urlsplit, urlunsplit

    database = connection.settings_dict["NAME"]
    port = unused_port()
    env = _child_env(
        DATABASE_URL=urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{database}")),
        METRICS_TOKEN=TOKEN,
        WALLET_RUN_DIR=str(tmp_path),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-c", "python:config.gunicorn",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "1", "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, tmp_path / "prometheus"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_django_prometheus_series_add_up_across_gunicorn_workers(gunicorn: tuple[str, Path]) -> None:
    url, directory = gunicorn
    status_200 = 'django_http_responses_total_by_status_total{status="200"}'
    first = _line(scrape(url), status_200)
    import concurrent.futures

    def pids() -> set[str]:
        return {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}

    def fresh_connection_get(_: int) -> int:
        # A new connection each time: a kept-alive one stays with the worker that accepted it.
        return httpx.get(f"{url}/healthz", headers={"Connection": "close"}, timeout=10).status_code

    # Batches until both workers have served (which worker accepts a connection is the kernel's choice).
    sent, answers = 0, []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while sent < 400 and (sent < 40 or len(pids()) < 2):
            answers += list(pool.map(fresh_connection_get, range(40)))
            sent += 40
    assert answers == [200] * sent

    # Every response since the first scrape, the first scrape's own included, whichever worker served it.
    assert _line(scrape(url), status_200) == first + sent + 1
    assert len(pids()) == 2, sorted(directory.iterdir())
