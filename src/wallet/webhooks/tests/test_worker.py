"""With a real Celery worker process and a Redis broker of its own: kill -9 mid-task, Redis restarted.

No event may be lost and none applied twice. The webhook log is the queue of record: what a dead worker
or an emptied broker forgot, the sweep finds again.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery import app as celery_app
from scripts.testenv import redis_binary
from wallet.core.testing import unused_port
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.webhooks import services as webhook_services
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.services import webhooks_sweep
from wallet.webhooks.tests.conftest import RevioWebhook, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[4]
LEASE_SECONDS = 3


class RedisServer:
    """A throwaway Redis that can be stopped and started again on the same port (losing its data)."""

    def __init__(self, folder: Path) -> None:
        self.port = unused_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_binary()  # the project's Valkey, as make test starts (scripts/testenv.py)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        wait_for(lambda: _pings(redis.Redis.from_url(self.url)), timeout=10, what="redis to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False
    finally:
        client.close()


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "default,webhooks",
                    "--pool",
                    "solo",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: b"ready" in self.log.read_bytes(), timeout=30, what="the worker to start")

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    # The web side (this process) publishes to this broker, for real, instead of running tasks eagerly.
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = server.url, False
    celery_app._after_fork()  # drop pooled connections to the previous broker
    yield server
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = previous
    celery_app._after_fork()
    server.stop()


@pytest.fixture
def worker(
    broker: RedisServer, revio_webhook: RevioWebhook, settings: Any, tmp_path: Path
) -> Iterator[Worker]:
    settings.WEBHOOK_PROCESSING_LEASE_SECONDS = LEASE_SECONDS
    db = connection.settings_dict
    sandbox = revio_webhook.sandbox
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "WEBHOOK_PROCESSING_LEASE_SECONDS": str(LEASE_SECONDS),
        "REVIO_BASE_URL": sandbox.api_url,
        "REVIO_API_KEY": sandbox.api_key,
        "REVIO_BRAND_ID": sandbox.brand_id,
        "REVIO_WEBHOOK_ID": revio_webhook.webhook_id,
        "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
    }
    process = Worker(env, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


def start_deposit(user: Any) -> Transaction:
    deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=7_000, currency="ZAR")
    assert deposit.provider_object_id
    return deposit


def credited(deposit: Transaction) -> bool:
    deposit.refresh_from_db()
    return deposit.status == "completed"


def test_a_worker_processes_a_delivered_event(
    make_user: Any, worker: Worker, revio_webhook: RevioWebhook
) -> None:
    user = make_user()
    deposit = start_deposit(user)
    revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
    wait_for(lambda: credited(deposit), timeout=30, what="the worker to credit the deposit")
    assert balance_get(user_id=user.id, currency="ZAR").available == 7_000


def test_a_worker_killed_mid_task_loses_nothing_and_applies_once(
    make_user: Any, worker: Worker, revio_webhook: RevioWebhook
) -> None:
    user = make_user()
    deposit = start_deposit(user)
    control = revio_webhook.sandbox.control
    # The worker's re-read of the purchase hangs, so the kill lands in the middle of the task.
    control.slow_next(f"GET /api/v1/purchases/{deposit.provider_object_id}/", delay_ms=10_000)
    control.purchase_pay(deposit.provider_object_id or "")
    held = wait_for(
        lambda: WebhookLog.objects.filter(object_id=deposit.provider_object_id, status="processing").first(),
        timeout=30,
        what="the worker to claim an event of the purchase",
    )
    worker.kill9()
    assert not credited(deposit)

    worker.start()
    time.sleep(LEASE_SECONDS + 0.5)  # the dead worker's lease runs out
    wait_for(lambda: webhooks_sweep() >= 0 and credited(deposit), timeout=40, what="recovery after the kill")
    # The dead worker's event is taken up again (processed, or ignored as stale once the paid event won).
    wait_for(
        lambda: (
            webhooks_sweep() >= 0 and WebhookLog.objects.get(id=held.id).status in {"processed", "ignored"}
        ),
        timeout=40,
        what="the event held by the dead worker to be processed again",
    )
    assert WebhookLog.objects.get(id=held.id).attempts >= 2
    assert Journal.objects.filter(transaction_id=deposit.id, kind="deposit_credit").count() == 1
    assert balance_get(user_id=user.id, currency="ZAR").available == 7_000


def test_redis_restarted_with_the_message_lost_still_credits_once(
    make_user: Any, worker: Worker, broker: RedisServer, revio_webhook: RevioWebhook
) -> None:
    user = make_user()
    deposit = start_deposit(user)
    broker.stop()  # the broker is down when the event arrives: intake stores it and answers 200 anyway
    revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
    wait_for(
        lambda: WebhookLog.objects.filter(event_type="purchase.paid").exists(),
        timeout=30,
        what="the event to be stored",
    )
    log = WebhookLog.objects.get(event_type="purchase.paid")
    assert log.status == "received"
    broker.start()  # back, and empty: the task message is gone
    celery_app._after_fork()
    WebhookLog.objects.filter(id=log.id).update(received_at=log.received_at.replace(year=2000))
    wait_for(lambda: webhooks_sweep() >= 0 and credited(deposit), timeout=40, what="the sweep to recover it")
    assert Journal.objects.filter(transaction_id=deposit.id, kind="deposit_credit").count() == 1
    assert balance_get(user_id=user.id, currency="ZAR").available == 7_000


# -- the claim: one statement, waits for a held row, never claims twice --------------------------------


def _logged(**fields: Any) -> WebhookLog:
    defaults: dict[str, Any] = {
        "dedup_key": f"p-{time.monotonic_ns()}:purchase.paid:1",
        "event_type": "purchase.paid",
        "object_type": "purchase",
        "object_id": "p-1",
        "updated_on": 1,
        "body": "{}",
        "verified_with": "company",
        "source_ip": "198.51.100.7",
    }
    return WebhookLog.objects.create(**{**defaults, **fields})


def _row(log: WebhookLog) -> list[Any]:
    return [getattr(log, field.attname) for field in WebhookLog._meta.concrete_fields]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _waits_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


class _Claimant(threading.Thread):
    """Claims the event on a connection of its own; its PostgreSQL backend pid is known before it does."""

    def __init__(self, log_id: int, now: Any) -> None:
        super().__init__()
        self.log_id, self.now = log_id, now
        self.pid: int | None = None
        self.ready = threading.Event()
        self.result: WebhookLog | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.pid = _backend_pid()
            self.ready.set()
            self.result = webhook_services._claim(log_id=self.log_id, now=self.now)
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            self.error = exc
        finally:
            self.ready.set()
            connection.close()


def _start_waiting_claimant(log_id: int, now: Any) -> _Claimant:
    claimant = _Claimant(log_id, now)
    claimant.start()
    claimant.ready.wait(10)
    assert claimant.pid is not None, claimant.error
    wait_for(lambda: _waits_for_a_lock(claimant.pid or 0), timeout=10, what="the claim to wait for the row")
    return claimant


def test_a_claim_is_one_statement_and_returns_the_row_as_stored() -> None:
    log = _logged()
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        claimed = webhook_services._claim(log_id=log.id, now=now)
    assert len(queries.captured_queries) == 1, queries.captured_queries
    assert claimed is not None
    assert (claimed.status, claimed.attempts) == ("processing", 1)
    assert claimed.lease_expires_at == now + timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)
    assert (claimed._state.adding, claimed._state.db) == (False, "default")
    assert _row(claimed) == _row(WebhookLog.objects.get(id=log.id))
    with CaptureQueriesContext(connection) as queries:
        assert webhook_services._claim(log_id=log.id, now=now) is None  # held: its lease is valid
    assert len(queries.captured_queries) == 1, queries.captured_queries


def test_only_due_events_are_claimed() -> None:
    now = timezone.now()
    past, future = now - timedelta(seconds=1), now + timedelta(seconds=1)
    cases = {
        "received": (_logged(), True),
        "failed, backoff over": (_logged(status="failed", attempts=1, next_attempt_at=past), True),
        "failed, backing off": (_logged(status="failed", attempts=1, next_attempt_at=future), False),
        "lease expired": (_logged(status="processing", attempts=1, lease_expires_at=past), True),
        "lease valid": (_logged(status="processing", attempts=1, lease_expires_at=future), False),
        "processed": (_logged(status="processed", attempts=1), False),
        "ignored": (_logged(status="ignored", attempts=1), False),
        "dead-lettered": (_logged(status="dead_lettered", attempts=5), False),
    }
    lease = now + timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)
    for case, (log, due) in cases.items():
        claimed = webhook_services._claim(log_id=log.id, now=now)
        after = WebhookLog.objects.get(id=log.id)
        if due:
            assert claimed is not None, case
            assert (after.status, after.attempts, after.lease_expires_at) == (
                "processing",
                log.attempts + 1,
                lease,
            )
            assert _row(claimed) == _row(after), case
        else:
            assert claimed is None, case
            assert _row(after) == _row(log), case
    assert webhook_services._claim(log_id=10**12, now=now) is None  # no such event


def test_a_claim_waits_for_a_row_another_worker_holds_and_then_does_not_claim_it_again() -> None:
    log = _logged()
    now = timezone.now()
    with transaction.atomic():  # another worker's claim, not committed yet: it holds the row
        assert webhook_services._claim(log_id=log.id, now=now) is not None
        claimant = _start_waiting_claimant(log.id, now)
    claimant.join(10)
    assert not claimant.is_alive()
    assert claimant.error is None
    assert claimant.result is None  # re-checked after the wait: processing with a valid lease
    assert WebhookLog.objects.get(id=log.id).attempts == 1


def test_a_claim_waits_out_a_duplicates_counter_update_instead_of_skipping_the_row() -> None:
    log = _logged()
    now = timezone.now()
    with transaction.atomic():  # a duplicate delivery's counter update holds the row for a moment
        WebhookLog.objects.filter(id=log.id).update(duplicates=F("duplicates") + 1)
        claimant = _start_waiting_claimant(log.id, now)
    claimant.join(10)
    assert claimant.error is None
    assert claimant.result is not None  # still due after the wait: claimed, not left to the sweep
    assert (claimant.result.status, claimant.result.attempts, claimant.result.duplicates) == (
        "processing",
        1,
        1,
    )


def test_two_concurrent_claims_one_wins() -> None:
    now = timezone.now()
    for _ in range(10):
        log = _logged()
        barrier = threading.Barrier(2)
        results: list[WebhookLog | None] = []

        def claim(
            log_id: int = log.id, barrier: threading.Barrier = barrier, results: list[Any] = results
        ) -> None:
            try:
                barrier.wait()
                results.append(webhook_services._claim(log_id=log_id, now=now))
            finally:
                connection.close()

        threads = [threading.Thread(target=claim) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 2
        assert sum(result is not None for result in results) == 1, results
        assert WebhookLog.objects.get(id=log.id).attempts == 1
