"""The drain (docs/adr/0021): batches claimed from the log, never twice, a crash mid-batch recovered after
the lease, re-reads made concurrently, and intake waking it without one message per event."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.webhooks import processing
from wallet.webhooks import services as webhook_services
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.tasks import webhooks_drain_task
from wallet.webhooks.tests.conftest import Signer

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as the worker runs


def _logged(count: int, **fields: Any) -> list[WebhookLog]:
    """Events no handler acts on (ignored without a Revio read), so only the claim is under test."""
    base: dict[str, Any] = {
        "event_type": "billing_template_client.created",
        "object_type": "billing_template_client",
        "object_id": "btc-1",
        "updated_on": 1,
        "body": "{}",
        "verified_with": "company",
    }
    return [
        WebhookLog.objects.create(dedup_key=f"btc-{uuid.uuid4().hex}", **{**base, **fields})
        for _ in range(count)
    ]


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids the drain hands to a handler, in order (from any thread)."""
    seen: list[int] = []
    real = processing.event_dispatch

    def recording(log: WebhookLog) -> Any:
        seen.append(log.id)
        time.sleep(0.002)  # long enough for two drains to interleave
        return real(log)

    monkeypatch.setattr(processing, "event_dispatch", recording)
    return seen


def _at_once(count: int, work: Callable[[], None]) -> list[BaseException]:
    """Run `work` in `count` threads released together (each on its own connection); their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_a_batch_claim_is_one_statement_takes_only_due_events_and_leases_them(settings: Any) -> None:
    now = timezone.now()
    past, future = now - timedelta(seconds=1), now + timedelta(seconds=1)
    due = [
        *_logged(2),
        *_logged(1, status="failed", attempts=1, next_attempt_at=past),
        *_logged(1, status="processing", attempts=1, lease_expires_at=past),
    ]
    not_due = [
        *_logged(1, status="failed", attempts=1, next_attempt_at=future),
        *_logged(1, status="processing", attempts=1, lease_expires_at=future),
        *_logged(1, status="processed", attempts=1),
        *_logged(1, status="dead_lettered", attempts=8),
    ]
    with CaptureQueriesContext(connection) as queries:
        claimed = processing._claim_batch(now=now, limit=3)
    assert len(queries.captured_queries) == 1, queries.captured_queries
    assert [log.id for log in claimed] == [log.id for log in due[:3]]  # id order, up to the limit
    rest = processing._claim_batch(now=now, limit=10)
    assert [log.id for log in rest] == [due[3].id]
    lease = now + timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)
    for log in due:
        after = WebhookLog.objects.get(id=log.id)
        assert (after.status, after.attempts, after.lease_expires_at) == (
            "processing",
            log.attempts + 1,
            lease,
        )
    for log in not_due:
        after = WebhookLog.objects.get(id=log.id)
        assert (after.status, after.attempts) == (log.status, log.attempts)
    assert processing._claim_batch(now=now, limit=10) == []  # all held now


def test_two_concurrent_drains_never_process_an_event_twice(settings: Any, dispatched: list[int]) -> None:
    settings.WEBHOOK_BATCH_SIZE = 7
    logs = _logged(60)
    counts: list[int] = []
    assert _at_once(2, lambda: counts.append(webhook_services.webhooks_drain())) == []
    assert sorted(dispatched) == sorted(log.id for log in logs)  # each event once, none left out
    assert len(set(dispatched)) == len(dispatched) == 60
    assert sum(counts) == 60
    assert min(counts) > 0, counts  # both drains took a share: the claims ran side by side
    assert set(WebhookLog.objects.values_list("status", "attempts")) == {("ignored", 1)}


def test_simultaneous_batch_claims_never_share_an_event() -> None:
    """Claims released at the same instant, so their statements overlap in the database."""
    for _ in range(5):
        logs = _logged(30)
        now = timezone.now()
        claimed: list[int] = []

        def claim(now: Any = now, claimed: list[int] = claimed) -> None:
            claimed.extend(log.id for log in processing._claim_batch(now=now, limit=10))

        assert _at_once(6, claim) == []
        assert len(claimed) == len(set(claimed)) == 30, sorted(claimed)  # 6 x 10 asked, each event once
        ids = [log.id for log in logs]
        assert set(WebhookLog.objects.filter(id__in=ids).values_list("status", "attempts")) == {
            ("processing", 1)
        }


class _Died(BaseException):
    """The process dying mid-batch: nothing after it runs (not even `except Exception`)."""


def test_a_crash_mid_batch_leaves_the_rest_claimable_after_the_lease(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WEBHOOK_BATCH_SIZE = 10
    logs = _logged(5)
    real, calls = processing.event_dispatch, []

    def dies_on_the_second(log: WebhookLog) -> Any:
        calls.append(log.id)
        if len(calls) == 2:
            raise _Died
        return real(log)

    monkeypatch.setattr(processing, "event_dispatch", dies_on_the_second)
    now = timezone.now()
    with pytest.raises(_Died):
        webhook_services.webhooks_drain(now=now)
    statuses = [WebhookLog.objects.get(id=log.id).status for log in logs]
    assert statuses == ["ignored", "processing", "processing", "processing", "processing"]

    monkeypatch.setattr(processing, "event_dispatch", real)  # the process restarted
    assert webhook_services.webhooks_drain(now=now + timedelta(seconds=1)) == 0  # the leases still hold
    after_lease = now + timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS + 1)
    assert webhook_services.webhooks_drain(now=after_lease) == 4
    rows = [WebhookLog.objects.get(id=log.id) for log in logs]
    assert [(row.status, row.attempts) for row in rows] == [("ignored", 1)] + [("ignored", 2)] * 4


@pytest.fixture
def drain_messages(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The drain messages sent to Celery (recorded instead of sent), with the nudge's window reset."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(webhooks_drain_task, "apply_async", lambda **options: sent.append(options))
    cache.delete(processing._NUDGE_KEY)
    yield sent
    cache.delete(processing._NUDGE_KEY)


def test_intake_sends_one_drain_message_per_window_not_one_per_event(
    signer: Signer, event_body: Callable[..., bytes], settings: Any, drain_messages: list[dict[str, Any]]
) -> None:
    settings.WEBHOOK_NUDGE_SECONDS = 2.0
    received = []
    for offset in range(20):
        body = event_body(id=f"purchase-{offset}", updated_on=int(time.time()) - offset)
        received.append(
            webhook_services.webhook_receive(
                body=body, signature=signer.sign(body), source_ip="127.0.0.1", headers={}, now=timezone.now()
            )
        )
    assert [r.duplicate for r in received] == [False] * 20
    assert WebhookLog.objects.filter(status="received").count() == 20
    assert len(drain_messages) == 1, drain_messages  # one message for the window, not twenty
    linger_until = drain_messages[0]["kwargs"]["linger_until"]
    assert time.time() < linger_until <= time.time() + 2.0 + processing._LINGER_MARGIN_SECONDS

    cache.delete(processing._NUDGE_KEY)  # the window has passed
    body = event_body(id="purchase-late")
    webhook_services.webhook_receive(
        body=body, signature=signer.sign(body), source_ip="127.0.0.1", headers={}, now=timezone.now()
    )
    assert len(drain_messages) == 2


def test_a_nudged_drain_lingers_for_an_event_whose_nudge_was_held_back(settings: Any) -> None:
    processed: list[int] = []
    drain = threading.Thread(
        target=lambda: (
            processed.append(webhook_services.webhooks_drain(linger_until=time.time() + 1.0)),
            connection.close(),
        )
    )
    drain.start()
    time.sleep(0.3)  # the drain has found nothing and lingers; an event lands inside the window
    (late,) = _logged(1)
    drain.join(10)
    assert processed == [1]
    assert WebhookLog.objects.get(id=late.id).status == "ignored"


def test_a_batchs_rereads_from_revio_run_concurrently(
    settings: Any,
    make_user: Callable[..., User],
    revio: SandboxProcess,
    signer: Signer,
    event_body: Callable[..., bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.WEBHOOK_REREAD_CONCURRENCY = 8
    monkeypatch.setattr(webhook_services, "_enqueue", lambda log_id: None)  # this test drains by hand
    user = make_user()
    deposits = []
    for _ in range(6):
        deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=1_000, currency="ZAR")
        assert deposit.provider_object_id
        revio.control.purchase_pay(deposit.provider_object_id)
        # Each re-read of this purchase is held for 1.5 s by the sandbox.
        revio.control.slow_next(f"GET /api/v1/purchases/{deposit.provider_object_id}/", delay_ms=1_500)
        body = event_body(id=deposit.provider_object_id, reference=str(deposit.id))
        webhook_services.webhook_receive(
            body=body, signature=signer.sign(body), source_ip="127.0.0.1", headers={}, now=timezone.now()
        )
        deposits.append(deposit)
    started = time.monotonic()
    assert webhook_services.webhooks_drain() == 6
    elapsed = time.monotonic() - started
    # One after another the six reads alone would take 9 s; side by side they take about one delay.
    assert elapsed < 6 * 1.5 / 2, elapsed
    assert set(WebhookLog.objects.values_list("status", flat=True)) == {"processed"}
    assert balance_get(user_id=user.id, currency="ZAR").available == 6_000
