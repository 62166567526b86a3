"""Issue 17, round 2, webhooks: the attacks on the unsigned EFT callback endpoint (F1, F12) and account
numbers in the webhook log (F8), each performed over real HTTP (a live server, the real sandbox) and
failing on the code before the fix (docs/security.md "Round 2: webhooks")."""

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app as celery_app
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.revio import breaker
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver
from wallet.webhooks import services as webhooks
from wallet.webhooks.models import WebhookLog, WebhookRejection
from wallet.webhooks.services import webhook_process
from wallet.webhooks.tests.conftest import Signer

EFT_PATH = "/api/v1/webhooks/revio/eft"
SIGNED_PATH = "/api/v1/webhooks/revio"
Fund = Callable[[User, int], Transaction]


def callback(payment_id: str, status: str, **extra: Any) -> bytes:
    return json.dumps(
        {"id": payment_id, "status": status, "callbackType": "EFT_PAYMENT", "callbackVersion": "V2", **extra}
    ).encode()


def withdraw(user: User, amount: int = 5_000) -> Transaction:
    withdrawal = wallet.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=amount,
        currency="ZAR",
        bank_account=wallet.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    return withdrawal


@pytest.fixture
def http(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def post(http: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return http.post(path, content=body, headers={"Content-Type": "application/json", **headers})


@pytest.mark.django_db(transaction=True)
class TestF1CallbackSources:
    def test_forged_callbacks_from_outside_the_allow_list_are_refused_and_stored_nowhere(
        self, http: httpx.Client, revio: SandboxProcess, settings: Any
    ) -> None:
        """F1: anyone could post EFT callbacks; each was stored and cost an EFT API read."""
        settings.REVIO_EFT_CALLBACK_ALLOWED_NETWORKS = [
            "203.0.113.0/24"
        ]  # the live server's client is 127.0.0.1
        bodies = [
            callback(str(uuid.uuid4()), "COMPLETED"),
            callback(str(uuid.uuid4()), "UNPAID", creditor={"accountNumber": BANK["account_number"]}),
            b"not json",  # not even a rejection row for a refused source
        ]
        for body in bodies:
            response = post(http, EFT_PATH, body)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"
        # A forged X-Forwarded-For naming an allowed address buys nothing with no trusted proxy.
        forwarded = post(http, EFT_PATH, bodies[0], **{"X-Forwarded-For": "203.0.113.7"})
        assert forwarded.status_code == 404
        assert not WebhookLog.objects.exists()
        assert not WebhookRejection.objects.exists()
        # From an allowed network it is heard.
        settings.REVIO_EFT_CALLBACK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
        assert post(http, EFT_PATH, bodies[0]).status_code == 200

    def test_the_endpoint_answers_404_where_eft_is_not_configured(
        self, http: httpx.Client, settings: Any
    ) -> None:
        """F1: the unsigned endpoint existed even where no EFT credentials were configured."""
        settings.REVIO_EFT_CLIENT_ID = ""
        response = post(http, EFT_PATH, callback(str(uuid.uuid4()), "COMPLETED"))
        assert response.status_code == 404
        assert not WebhookLog.objects.exists()

    def test_each_source_is_limited_below_the_signed_webhooks(
        self, http: httpx.Client, revio: SandboxProcess, settings: Any
    ) -> None:
        """F1: EFT callbacks shared the signed webhooks' 6000/min per source."""
        per_minute = {
            scope: int(rate.split("/")[0])
            for scope, rate in django_settings.RATE_LIMITS.items()
            if scope in {"webhook_source", "eft_callback_source"}
        }
        assert per_minute["eft_callback_source"] < per_minute["webhook_source"]
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "eft_callback_source": "3/min"}
        answers = [post(http, EFT_PATH, callback(str(uuid.uuid4()), "NEW")).status_code for _ in range(5)]
        assert answers == [200, 200, 200, 429, 429]
        assert WebhookLog.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_forged_callbacks_with_the_eft_api_down_leaves_deposits_working(
    http: httpx.Client, revio: SandboxProcess, user_api: APIClient, settings: Any
) -> None:
    """F1: 12 forged callbacks opened the one breaker purchases and payouts shared; deposits were refused.

    From inside the allow-list (Revio's network, or an attacker inside it), with the EFT API failing: every
    forged id's re-read fails and the EFT API's breaker opens, the gateway's stays closed, and a deposit
    is created at Revio over HTTP."""
    settings.REVIO_EFT_CALLBACK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    revio.control.fail_next("eft.payments.get", status=503, count=1_000)
    threshold = settings.REVIO_BREAKER_FAILURE_THRESHOLD
    for _ in range(threshold * 2 + 2):
        assert post(http, EFT_PATH, callback(str(uuid.uuid4()), "COMPLETED")).status_code == 200
    assert breaker.breaker_state(api=breaker.EFT).state == "open"  # the fault was real
    assert breaker.breaker_state(api=breaker.GATEWAY).state == "closed"
    assert set(WebhookLog.objects.values_list("status", flat=True)) == {"failed"}

    deposit = user_api.post("/api/v1/deposits", {"amount": 2_500}, format="json")
    assert deposit.status_code == 201, deposit.content
    assert deposit.json()["status"] == "pending"
    assert deposit.json()["checkout_url"]


@pytest.mark.django_db
def test_unknown_eft_payment_ids_never_count_as_failures(revio: SandboxProcess, settings: Any) -> None:
    """F1: "unknown id" (404 on a lookup) must not open a breaker, however many forged ids are read."""
    for _ in range(settings.REVIO_BREAKER_FAILURE_THRESHOLD * 2):
        log = WebhookLog.objects.create(
            dedup_key=f"eft:{uuid.uuid4()}",
            event_type="EFT_PAYMENT.COMPLETED",
            object_type="eft_payment",
            object_id=str(uuid.uuid4()),
            updated_on=1,
            body="{}",
            verified_with="unsigned",
        )
        assert webhook_process(log_id=log.id) == "ignored"
    for api in breaker.APIS:
        assert breaker.breaker_state(api=api).failures == 0


@pytest.mark.django_db
class TestF1DedupOnThePaymentId:
    def test_invented_statuses_for_one_pending_payment_are_one_event(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver
    ) -> None:
        """F1: each (payment id, claimed status) was a new event and a new EFT API read."""
        fund(user, 10_000)
        withdrawal = withdraw(user)
        payment_id = withdrawal.provider_object_id or ""
        statuses = ["COMPLETED", "TRANSACTION_FAILURE", "UNPAID", "MADE_UP", "DISPUTED"]
        answers = [
            api.post(EFT_PATH, data=callback(payment_id, s), content_type="application/json").json()
            for s in statuses
        ]
        assert answers == [{"status": "accepted"}] + [{"status": "duplicate"}] * 4
        log = WebhookLog.objects.get(object_id=payment_id)
        assert log.duplicates == 4

    def test_stored_bodies_keep_only_the_fields_used_and_are_bounded(self, api: APIClient) -> None:
        """F1: bodies were stored verbatim, up to 64 KB each."""
        body = callback(
            str(uuid.uuid4()),
            "COMPLETED",
            contractReference="r" * 500,
            padding="x" * 60_000,
            creditor={"accountNumber": BANK["account_number"]},
        )
        assert api.post(EFT_PATH, data=body, content_type="application/json").status_code == 200
        stored = json.loads(WebhookLog.objects.get().body)
        assert set(stored) <= {"id", "paymentId", "status", "contractReference", "updatedAt", "callbackType"}
        assert len(WebhookLog.objects.get().body) < 512


@pytest.mark.django_db(transaction=True)
def test_a_forged_callback_cannot_pre_empt_the_real_one(
    http: httpx.Client, user: User, fund: Fund, eft: EftDriver
) -> None:
    """F12: a forged COMPLETED for a real payment took the dedup key (id, COMPLETED) of the real callback;
    the real one was then a duplicate and the withdrawal never completed."""
    fund(user, 10_000)
    withdrawal = withdraw(user)
    payment_id = withdrawal.provider_object_id or ""
    forged = post(http, EFT_PATH, callback(payment_id, "COMPLETED", contractReference=str(withdrawal.id)))
    assert forged.status_code == 200
    withdrawal.refresh_from_db()
    assert withdrawal.status == "processing"  # the re-read said QUEUED: nothing moved
    eft.succeed(payment_id)
    real = post(http, EFT_PATH, callback(payment_id, "COMPLETED", contractReference=str(withdrawal.id)))
    assert real.json() == {"status": "accepted"}
    withdrawal.refresh_from_db()
    assert withdrawal.status == "completed"


@pytest.mark.django_db(transaction=True)
def test_no_full_account_number_in_the_webhook_log_or_the_console(
    http: httpx.Client,
    revio: SandboxProcess,
    signer: Signer,
    event_body: Callable[..., bytes],
    admin_user: User,
    user: User,
    fund: Fund,
    eft: EftDriver,
) -> None:
    """F8: payout and EFT bodies holding bank account numbers were stored as received and shown in the
    console."""
    number = BANK["account_number"]
    fund(user, 10_000)
    withdrawal = withdraw(user)
    signed = event_body(
        id=str(uuid.uuid4()),
        type="payout",
        event_type="payout.success",
        status="success",
        bank_account={"account_number": number, "bank_code": BANK["bank_code"]},
        creditor={"accountNumber": number},
    )
    assert post(http, SIGNED_PATH, signed, **{"X-Signature": signer.sign(signed)}).status_code == 200
    # A forged signature with the number in it: a rejection row.
    assert post(http, SIGNED_PATH, signed + b" ", **{"X-Signature": signer.sign(signed)}).status_code != 200
    eft.succeed(withdrawal.provider_object_id or "")
    eft_body = callback(
        withdrawal.provider_object_id or "",
        "COMPLETED",
        creditor={"accountNumber": number, "branchCode": BANK["bank_code"]},
    )
    assert post(http, EFT_PATH, eft_body).status_code == 200
    withdrawal.refresh_from_db()
    assert withdrawal.status == "completed"  # the callback flowed all the way through

    logs = list(WebhookLog.objects.all())
    assert len(logs) == 2
    rows = [
        json.dumps(list(WebhookLog.objects.values()), default=str),
        json.dumps(list(WebhookRejection.objects.values()), default=str),
    ]
    assert WebhookRejection.objects.exists()
    assert all(number not in row for row in rows)
    assert "4567" in logs[0].body or "4567" in logs[1].body  # masked, not dropped, where it was signed

    console = Client()
    console.force_login(admin_user)
    pages = ["/admin/webhooks/webhooklog/", "/admin/webhooks/webhookrejection/"]
    pages += [f"/admin/webhooks/webhooklog/{log.id}/change/" for log in logs]
    pages += [f"/admin/webhooks/webhookrejection/{r.id}/change/" for r in WebhookRejection.objects.all()]
    for page in pages:
        response = console.get(page)
        assert response.status_code == 200, page
        assert number not in response.content.decode(), page


@pytest.mark.django_db
def test_old_webhook_logs_and_rejections_are_purged(settings: Any) -> None:
    """F1: the log and the rejections were never purged (forged callbacks filled them for ever)."""
    settings.WEBHOOK_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)

    def log(status: str, received_at: Any) -> WebhookLog:
        return WebhookLog.objects.create(
            dedup_key=str(uuid.uuid4()),
            event_type="EFT_PAYMENT.NEW",
            object_type="eft_payment",
            object_id=str(uuid.uuid4()),
            updated_on=1,
            body="{}",
            verified_with="unsigned",
            status=status,
            received_at=received_at,
        )

    purged = [log(s, old) for s in ("processed", "ignored", "dead_lettered")]
    kept = [log(s, old) for s in ("received", "failed", "processing")] + [log("processed", recent)]
    for when in (old, recent):
        WebhookRejection.objects.create(
            reason="signature_invalid", received_at=when, body_sha256="0" * 64, body_length=1
        )
    assert webhooks.webhooks_purge(now=now, batch=2) == (3, 1)
    assert set(WebhookLog.objects.values_list("id", flat=True)) == {k.id for k in kept}
    assert not WebhookLog.objects.filter(id__in=[p.id for p in purged]).exists()
    assert WebhookRejection.objects.get().received_at == recent
    assert any(e["task"] == "webhooks.purge" for e in celery_app.conf.beat_schedule.values())
