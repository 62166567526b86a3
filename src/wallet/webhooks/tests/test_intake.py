"""Webhook intake and processing with real RSA signatures: what is refused, stored, deduplicated, applied."""

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core import metrics
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import apply_deposit
from wallet.webhooks import services as webhook_services
from wallet.webhooks.models import WebhookLog, WebhookRejection
from wallet.webhooks.services import webhook_process, webhooks_sweep
from wallet.webhooks.tests.conftest import Signer

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/revio"
EventBody = Callable[..., bytes]


def deliver(api: APIClient, body: bytes, signature: str | None) -> Any:
    headers = {"HTTP_X_SIGNATURE": signature} if signature is not None else {}
    return api.post(URL, data=body, content_type="application/json", **headers)


SIGNED = "signed"  # Delivery.deliver's default: signed with the pinned company key


@dataclass(frozen=True)
class Delivered:
    response: Any
    log: WebhookLog | None  # the event's row, if one was stored


@dataclass
class Delivery:
    """One delivery to the webhook endpoint, as Revio makes it, with the processing it wakes run at once."""

    api: APIClient
    signer: Signer
    event_body: EventBody
    capture_on_commit: Any

    def body(self, **fields: Any) -> bytes:
        return self.event_body(**fields)

    def deliver(self, body: bytes, *, signature: str | None = SIGNED, process: bool = True) -> Delivered:
        """Post the body; with `process`, the enqueue on commit runs (eager Celery: processing happens)."""
        signature = self.signer.sign(body) if signature == SIGNED else signature
        if process:
            with self.capture_on_commit(execute=True):
                response = deliver(self.api, body, signature)
        else:
            response = deliver(self.api, body, signature)
        return Delivered(response=response, log=self._log_of(body))

    @staticmethod
    def _log_of(body: bytes) -> WebhookLog | None:
        try:
            data = json.loads(body)
            dedup_key = f"{data['id']}:{data['event_type']}:{data['updated_on']}"
        except (ValueError, KeyError, TypeError):
            return None
        return WebhookLog.objects.filter(dedup_key=dedup_key).first()


@pytest.fixture
def delivery(
    api: APIClient, signer: Signer, event_body: EventBody, django_capture_on_commit_callbacks: Any
) -> Delivery:
    return Delivery(api, signer, event_body, django_capture_on_commit_callbacks)


def paid_deposit(user: User, revio: SandboxProcess) -> Transaction:
    deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=7_000, currency="ZAR")
    assert deposit.provider_object_id
    revio.control.purchase_pay(deposit.provider_object_id)
    return deposit


class TestRefused:
    def test_missing_signature(self, delivery: Delivery) -> None:
        body = delivery.body()
        response = delivery.deliver(body, signature=None).response
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "signature_missing"
        rejection = WebhookRejection.objects.get()
        assert rejection.reason == "signature_missing"
        assert rejection.body_sha256 == hashlib.sha256(body).hexdigest()
        assert rejection.body_length == len(body)
        assert rejection.source_ip == "127.0.0.1"
        assert not WebhookLog.objects.exists()

    @pytest.mark.parametrize(
        "forge",
        [
            "garbage_base64",
            "tampered_body",
            "reserialised_body",
            "wrong_key",
            "pss_padding",
            "sha1_digest",
            "truncated",
            "empty",
        ],
    )
    def test_forged_signatures(self, delivery: Delivery, signer: Signer, forge: str) -> None:
        body = delivery.body()
        signature = signer.sign(body)
        if forge == "garbage_base64":
            signature = "not base64 at all!"
        elif forge == "tampered_body":
            body = body.replace(b'"paid"', b'"PAID"')
        elif forge == "reserialised_body":
            body = json.dumps(json.loads(body), separators=(",", ":")).encode()  # same data, other bytes
        elif forge == "wrong_key":
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            signature = Signer(other).sign(body)
        elif forge == "pss_padding":
            raw = signer.private_key.sign(
                body, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()
            )
            signature = __import__("base64").b64encode(raw).decode()
        elif forge == "sha1_digest":
            raw = signer.private_key.sign(body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
            signature = __import__("base64").b64encode(raw).decode()
        elif forge == "truncated":
            signature = signature[:40]
        elif forge == "empty":
            signature = ""
        delivered = delivery.deliver(body, signature=signature)
        assert delivered.response.status_code == 401, delivered.response.content
        assert delivered.response.json()["error"]["code"] in {"signature_invalid", "signature_missing"}
        assert delivered.log is None
        assert not WebhookLog.objects.exists()
        assert WebhookRejection.objects.count() == 1

    def test_signature_is_checked_before_the_body_is_parsed(self, delivery: Delivery) -> None:
        response = delivery.deliver(b"{not json", signature="aGVsbG8=").response
        assert response.status_code == 401

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"[1, 2]",
            b'{"id": "x"}',
            b'{"id": "x", "type": "purchase", "event_type": "paid", "updated_on": 1767225600}',
            b'{"id": "x", "type": "purchase", "event_type": "purchase.paid", "updated_on": "1767225600"}',
            # Fits the pattern but not the column (64): refused as malformed, never a database error.
            b'{"id": "x", "type": "purchase", "event_type": "purchase.%s", "updated_on": 1767225600}'
            % (b"a" * 60),
        ],
    )
    def test_signed_but_not_a_revio_event(self, delivery: Delivery, body: bytes) -> None:
        response = delivery.deliver(body).response
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_event"
        assert WebhookRejection.objects.get().reason == "malformed_event"

    def test_an_event_past_revios_retry_horizon_is_refused(self, delivery: Delivery) -> None:
        old = delivery.body(updated_on=int(time.time()) - 43 * 3600)
        response = delivery.deliver(old).response
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "event_too_old"
        recent_retry = delivery.body(updated_on=int(time.time()) - 35 * 3600)  # an honest 35-hour-late retry
        assert delivery.deliver(recent_retry).response.status_code == 200

    def test_rejections_keep_no_body_and_only_short_headers(self, delivery: Delivery) -> None:
        body = b'{"secret": "' + b"x" * 5_000 + b'"}'
        delivery.deliver(body, signature="A" * 500)
        rejection = WebhookRejection.objects.get()
        assert all(len(value) <= 64 for value in rejection.headers.values())
        assert "x" * 100 not in json.dumps(rejection.headers)
        assert not hasattr(rejection, "body")

    def test_keys_that_cannot_be_fetched_give_503_so_revio_retries(
        self, api: APIClient, settings: Any, event_body: EventBody
    ) -> None:
        from wallet.core.testing import unused_port

        settings.REVIO_PUBLIC_KEY = ""
        settings.REVIO_BASE_URL = f"http://127.0.0.1:{unused_port()}/api/v1/"
        body = event_body()
        response = deliver(api, body, "aGVsbG8=")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "webhook_keys_unavailable"


class TestStoredOnce:
    def test_a_valid_event_is_stored_verbatim_and_acknowledged(self, delivery: Delivery) -> None:
        body = delivery.body()
        delivered = delivery.deliver(body, process=False)
        assert delivered.response.status_code == 200
        assert delivered.response.json() == {"status": "accepted"}
        log = WebhookLog.objects.get()
        assert delivered.log == log
        assert log.body.encode() == body
        assert (log.event_type, log.object_type, log.verified_with) == (
            "purchase.paid",
            "purchase",
            "company",
        )
        assert log.dedup_key == f"{log.object_id}:purchase.paid:{log.updated_on}"

    def test_the_same_event_twice_is_one_row(self, delivery: Delivery) -> None:
        body = delivery.body()
        delivery.deliver(body, process=False)
        delivered = delivery.deliver(body, process=False)
        assert delivered.response.json() == {"status": "duplicate"}
        log = WebhookLog.objects.get()
        assert log.duplicates == 1

    def test_a_later_event_of_the_same_object_is_a_new_row(self, delivery: Delivery) -> None:
        first, later = delivery.body(), delivery.body(updated_on=int(time.time()) + 5)
        delivery.deliver(first, process=False)
        delivery.deliver(later, process=False)
        assert WebhookLog.objects.count() == 2


class TestProcessing:
    def test_a_paid_event_credits_once_after_rereading_revio(
        self, delivery: Delivery, user: User, revio: SandboxProcess
    ) -> None:
        deposit = paid_deposit(user, revio)
        body = delivery.body(id=deposit.provider_object_id, reference=str(deposit.id))
        delivery.deliver(body)
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        assert (log.status, log.attempts) == ("processed", 1)
        assert log.result == "applied: Revio says paid"
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000

    def test_the_body_is_a_trigger_not_the_truth(
        self, delivery: Delivery, user: User, revio: SandboxProcess
    ) -> None:
        """A signed "paid" event for a purchase Revio says is unpaid credits nothing."""
        deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=7_000, currency="ZAR")
        body = delivery.body(id=deposit.provider_object_id, reference=str(deposit.id))
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        assert log.status == "ignored"
        assert "Revio now says created" in log.result
        assert balance_get(user_id=user.id, currency="ZAR").available == 0

    def test_an_event_older_than_our_state_is_stored_as_ignored_with_the_reason(
        self, delivery: Delivery, user: User, revio: SandboxProcess
    ) -> None:
        deposit = paid_deposit(user, revio)
        paid = delivery.body(id=deposit.provider_object_id, reference=str(deposit.id))
        delivery.deliver(paid)
        earlier = delivery.body(
            id=deposit.provider_object_id,
            reference=str(deposit.id),
            status="viewed",
            event_type="purchase.viewed",
            updated_on=json.loads(paid)["updated_on"] - 30,
        )
        stale = delivery.deliver(earlier).log
        assert stale is not None
        assert stale == WebhookLog.objects.get(event_type="purchase.viewed")
        assert stale.status == "ignored"
        assert stale.result == "stale: the event says viewed, Revio now says paid; already applied"
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000

    def test_a_refund_revio_does_not_account_for_is_flagged_and_moves_no_money(
        self, delivery: Delivery, user: User, revio: SandboxProcess
    ) -> None:
        # A signed payment.refunded whose purchase, re-read from Revio, shows nothing refunded: not debited.
        deposit = paid_deposit(user, revio)
        apply_deposit(deposit)  # credited (the sandbox's own events are refused: our key is pinned)
        before = balance_get(user_id=user.id, currency="ZAR").available
        body = delivery.body(
            id=str(uuid.uuid4()),
            type="payment",
            event_type="payment.refunded",
            status="success",
            amount=3_000,
            payment={"amount": 3_000, "currency": "ZAR"},
            reference=str(deposit.id),
            related_to={"type": "purchase", "id": deposit.provider_object_id},
        )
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        assert log.result.endswith(": flagged")
        deposit.refresh_from_db()
        assert deposit.needs_review is True
        assert "accounts for 0 taken back" in deposit.review_reason
        assert balance_get(user_id=user.id, currency="ZAR").available == before

    def test_other_object_types_are_ignored_with_a_reason(self, delivery: Delivery) -> None:
        body = delivery.body(
            type="billing_template_client",
            event_type="billing_template_client.subscription_billing_cancelled",
        )
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        assert (log.status, log.result) == ("ignored", "no action for billing_template_client events")

    def test_an_event_before_our_commit_is_retried_later_not_failed_for_good(
        self, delivery: Delivery, user: User, revio: SandboxProcess
    ) -> None:
        # Revio has the purchase (with our reference) and it is paid before our own deposit commit lands.
        deposit_id = uuid.uuid4()
        with revio.api_client() as client:
            purchase = client.post(
                "purchases/",
                json={
                    "brand_id": revio.brand_id,
                    "reference": str(deposit_id),
                    "client": {"email": user.email},
                    "purchase": {"currency": "ZAR", "products": [{"name": "Wallet deposit", "price": 7_000}]},
                },
            ).json()
        revio.control.purchase_pay(purchase["id"])
        body = delivery.body(id=purchase["id"], reference=str(deposit_id))
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        assert log.status == "failed"
        assert f"no deposit {deposit_id} (yet)" in log.last_error
        assert log.next_attempt_at is not None

        # Our commit lands; the retry the sweep schedules then applies the event.
        Transaction.objects.create(
            id=deposit_id,
            user=user,
            type="deposit",
            amount=7_000,
            currency="ZAR",
            provider_object_id=purchase["id"],
        )
        assert webhooks_sweep() == 0  # its backoff has not passed yet
        WebhookLog.objects.filter(id=log.id).update(next_attempt_at=timezone.now())  # time passes
        assert webhooks_sweep() == 1
        log.refresh_from_db()
        assert (log.status, log.attempts) == ("processed", 2)
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000


class TestRetriesAndDeadLetters:
    def test_failures_back_off_then_dead_letter_then_replay_applies_once(
        self,
        delivery: Delivery,
        user: User,
        revio: SandboxProcess,
        settings: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        settings.WEBHOOK_MAX_ATTEMPTS = 3
        deposit = paid_deposit(user, revio)
        body = delivery.body(id=deposit.provider_object_id, reference=str(deposit.id))
        revio.control.fail_next(f"GET /api/v1/purchases/{deposit.provider_object_id}/", status=500, count=100)
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        first_retry = log.next_attempt_at
        assert (log.status, log.attempts) == ("failed", 1)
        assert first_retry is not None
        assert webhook_process(log_id=log.id) is None  # not due before its backoff has passed
        log.refresh_from_db()
        assert log.attempts == 1
        while log.status == "failed":
            webhook_process(log_id=log.id, now=log.next_attempt_at)
            log.refresh_from_db()
        assert (log.status, log.attempts) == ("dead_lettered", 3)
        assert balance_get(user_id=user.id, currency="ZAR").available == 0

        revio.control.clear_faults()
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("webhooks_replay", "--status", "dead_lettered", stdout=out)
        assert "replayed 1" in out.getvalue()
        log.refresh_from_db()
        assert (log.status, log.replayed_by) == ("processed", "manage.py webhooks_replay")
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000
        with django_capture_on_commit_callbacks(execute=True):
            call_command("webhooks_replay", "--status", "dead_lettered", stdout=StringIO())
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000

    def test_backoff_grows_exponentially(self, delivery: Delivery, settings: Any) -> None:
        settings.WEBHOOK_RETRY_BASE_SECONDS = 10
        body = delivery.body(reference=str(uuid.uuid4()))  # never found: retried
        log = delivery.deliver(body).log
        assert log is not None
        assert log == WebhookLog.objects.get()
        gaps = []
        for _ in range(3):
            now = log.next_attempt_at
            assert now is not None
            webhook_process(log_id=log.id, now=now)
            log.refresh_from_db()
            assert log.next_attempt_at is not None
            gaps.append((log.next_attempt_at - now).total_seconds())
        assert gaps == [20, 40, 80]

    def test_an_event_whose_worker_died_is_picked_up_after_its_lease(
        self, delivery: Delivery, user: User, revio: SandboxProcess
    ) -> None:
        deposit = paid_deposit(user, revio)
        body = delivery.body(id=deposit.provider_object_id, reference=str(deposit.id))
        log = delivery.deliver(body, process=False).log  # stored, never processed
        assert log is not None
        assert log == WebhookLog.objects.get()
        WebhookLog.objects.filter(id=log.id).update(
            status="processing", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert webhooks_sweep() == 1
        log.refresh_from_db()
        assert log.status == "processed"
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_and_workers_credit_once(
    make_user: Callable[..., User],
    signer: Signer,
    event_body: EventBody,
    revio: SandboxProcess,
    report_figure: Callable[[str], None],
) -> None:
    user = make_user()
    deposit = paid_deposit(user, revio)
    body = event_body(id=deposit.provider_object_id, reference=str(deposit.id))
    signature = signer.sign(body)
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def post() -> None:
        try:
            barrier.wait()
            statuses.append(deliver(APIClient(), body, signature).status_code)  # processes on commit (eager)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    log = WebhookLog.objects.get()
    credits = balance_get(user_id=user.id, currency="ZAR").available // 7_000
    report_figure(
        f"concurrent identical webhook deliveries: 10 sent, {credits} credit, {log.duplicates} duplicates"
    )
    assert log.duplicates == 9
    assert log.status == "processed"
    assert balance_get(user_id=user.id, currency="ZAR").available == 7_000


# -- intake is one statement, and stays exactly-once under concurrency ----------------------------------


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The log ids intake hands to Celery (recorded instead of sent; safe from several threads)."""
    sent: list[int] = []
    monkeypatch.setattr(webhook_services, "_enqueue", sent.append)
    return sent


def receive(body: bytes, signature: str, *, source_ip: str | None = "198.51.100.7") -> Any:
    return webhook_services.webhook_receive(
        body=body, signature=signature, source_ip=source_ip, headers={}, now=timezone.now()
    )


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: no test transaction around intake
class TestIntakeStatements:
    def test_a_new_event_is_one_statement_and_enqueued_once(
        self, signer: Signer, event_body: EventBody, enqueued: list[int]
    ) -> None:
        body = event_body()
        signature = signer.sign(body)
        with CaptureQueriesContext(connection) as queries:
            received = receive(body, signature)
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"], queries.captured_queries
        assert received.duplicate is False
        assert enqueued == [received.log_id]
        assert metrics.read("webhooks_received") == 1
        assert metrics.read("webhooks_duplicate") == 0

    def test_a_duplicate_is_one_statement_counted_and_not_enqueued(
        self, signer: Signer, event_body: EventBody, enqueued: list[int]
    ) -> None:
        body = event_body()
        signature = signer.sign(body)
        first = receive(body, signature)
        for expected in (1, 2):
            with CaptureQueriesContext(connection) as queries:
                again = receive(body, signature)
            assert len(queries.captured_queries) == 1, queries.captured_queries
            assert again == webhook_services.Received(log_id=first.log_id, duplicate=True)
            assert WebhookLog.objects.get().duplicates == expected
        assert enqueued == [first.log_id]
        assert metrics.read("webhooks_received") == 1
        assert metrics.read("webhooks_duplicate") == 2

    def test_the_row_holds_what_the_models_defaults_would(
        self, signer: Signer, event_body: EventBody, enqueued: list[int]
    ) -> None:
        body = event_body(reference="r" * 200)
        before = timezone.now()
        received = receive(body, signer.sign(body), source_ip="2001:db8::1")
        log = WebhookLog.objects.get(id=received.log_id)
        given = {"id", "dedup_key", "event_type", "object_type", "object_id", "reference", "updated_on"}
        given |= {"body", "verified_with", "source_ip", "received_at"}
        for field in WebhookLog._meta.concrete_fields:
            if field.attname not in given:
                assert getattr(log, field.attname) == field.get_default(), field.attname
        assert (log.status, log.attempts, log.duplicates, log.result) == ("received", 0, 0, "")
        assert log.body.encode() == body
        assert log.reference == "r" * 128
        assert log.source_ip == "2001:db8::1"
        assert log.verified_with == "company"
        assert before <= log.received_at <= timezone.now()
        assert log.dedup_key == f"{log.object_id}:purchase.paid:{log.updated_on}"

    def test_inside_a_callers_transaction_the_enqueue_waits_for_its_commit(
        self, signer: Signer, event_body: EventBody, enqueued: list[int]
    ) -> None:
        body = event_body()
        signature = signer.sign(body)
        with pytest.raises(RuntimeError), transaction.atomic():
            receive(body, signature)
            raise RuntimeError("the caller rolls back")
        assert enqueued == []
        assert not WebhookLog.objects.exists()

        with transaction.atomic():
            received = receive(body, signature)
            assert receive(body, signature).duplicate is True  # same transaction: a conflict, not an insert
            assert enqueued == []
        assert enqueued == [received.log_id]
        assert WebhookLog.objects.get().duplicates == 1

    def test_ten_concurrent_identical_deliveries_are_one_row_and_one_enqueue(
        self, signer: Signer, event_body: EventBody, enqueued: list[int]
    ) -> None:
        body = event_body()
        signature = signer.sign(body)
        results: list[Any] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(10)

        def deliver_once() -> None:
            try:
                barrier.wait()
                results.append(receive(body, signature))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=deliver_once) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        log = WebhookLog.objects.get()
        assert log.duplicates == 9
        assert sorted(r.duplicate for r in results) == [False] + [True] * 9
        assert {r.log_id for r in results} == {log.id}
        assert enqueued == [log.id]
        assert metrics.read("webhooks_received") == 1
        assert metrics.read("webhooks_duplicate") == 9
