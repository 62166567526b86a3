"""EFT payment callbacks: unsigned, so only a trigger. Forged ones change nothing; real ones apply once."""

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver
from wallet.webhooks.models import WebhookLog, WebhookRejection
from wallet.webhooks.services import webhook_process, webhook_receive
from wallet.webhooks.tests.conftest import RevioWebhook, Signer, wait_for

URL = "/api/v1/webhooks/revio/eft"
Fund = Callable[[User, int], Transaction]


def figures(user: User) -> tuple[int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved


def withdraw(user: User, amount: int = 5_000, account_number: str = BANK["account_number"]) -> Transaction:
    withdrawal = wallet.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=amount,
        currency="ZAR",
        bank_account=wallet.BankAccount(**{**BANK, "account_number": account_number}),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    return withdrawal


def callback(payment_id: str, status: str, **extra: Any) -> bytes:
    """A callback body as the sandbox sends it (its shape is inferred; only the id is used)."""
    return json.dumps(
        {
            "id": payment_id,
            "status": status,
            "callbackType": "EFT_PAYMENT",
            "callbackVersion": "V2",
            "updatedAt": "2026-11-23T10:00:00.000Z",
            **extra,
        }
    ).encode()


def post_and_process(api: APIClient, body: bytes) -> WebhookLog:
    response = api.post(URL, data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    # The newest event for the payment (dedup is on the payment id: issue 17 F1, F12).
    log = WebhookLog.objects.filter(object_id=json.loads(body)["id"]).latest("id")
    webhook_process(log_id=log.id)
    log.refresh_from_db()
    return log


def journals(txn: Transaction) -> list[str]:
    return sorted(Journal.objects.filter(transaction_id=txn.id).values_list("kind", flat=True))


@pytest.mark.django_db
class TestForgedCallbacksChangeNothing:
    @pytest.mark.parametrize("claimed", ["COMPLETED", "TRANSACTION_FAILURE", "UNPAID", "MADE_UP"])
    def test_an_invented_status_for_a_real_payment(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver, claimed: str
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user)
        log = post_and_process(api, callback(withdrawal.provider_object_id or "", claimed, amountCents=1))
        withdrawal.refresh_from_db()
        assert withdrawal.status == "processing"  # Revio says QUEUED (or NEW): that is all that counts
        assert figures(user) == (5_000, 5_000)
        assert journals(withdrawal) == ["withdrawal_reserve"]
        assert log.status in {"processed", "ignored"}
        assert log.verified_with == "unsigned"

    def test_another_users_payment_only_moves_to_its_real_state(
        self, api: APIClient, make_user: Any, fund: Fund, eft: EftDriver
    ) -> None:
        victim, attacker = make_user(), make_user()
        fund(victim, 10_000)
        fund(attacker, 10_000)
        theirs = withdraw(victim)
        mine = withdraw(attacker)
        # The attacker claims the victim's payment failed (hoping for a refund somewhere), and names
        # their own withdrawal as its reference: the re-read says QUEUED and names the victim's.
        post_and_process(
            api,
            callback(theirs.provider_object_id or "", "TRANSACTION_FAILURE", contractReference=str(mine.id)),
        )
        for txn in (theirs, mine):
            txn.refresh_from_db()
            assert (txn.status, txn.needs_review) == ("processing", False)
        assert figures(victim) == figures(attacker) == (5_000, 5_000)

    def test_an_unknown_payment_id_is_read_once_and_ignored(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user)
        log = post_and_process(
            api, callback(str(uuid.uuid4()), "COMPLETED", contractReference=str(withdrawal.id))
        )
        assert (log.status, log.attempts) == ("ignored", 1)
        withdrawal.refresh_from_db()
        assert withdrawal.status == "processing"
        assert figures(user) == (5_000, 5_000)

    @pytest.mark.parametrize(
        "body",
        [b"not json", b"[]", b'{"status": "COMPLETED"}', b'{"id": "../../v2/payment/eft", "status": "X"}'],
    )
    def test_malformed_callbacks_are_refused_and_recorded_without_their_body(
        self, api: APIClient, eft: EftDriver, body: bytes
    ) -> None:
        response = api.post(URL, data=body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_event"
        assert not WebhookLog.objects.exists()
        assert WebhookRejection.objects.get().body_length == len(body)


@pytest.mark.django_db
class TestRealCallbacks:
    def test_a_real_callback_moves_the_withdrawal_and_duplicates_apply_once(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user)
        eft.succeed(withdrawal.provider_object_id or "")
        body = callback(
            withdrawal.provider_object_id or "", "COMPLETED", contractReference=str(withdrawal.id)
        )
        first = post_and_process(api, body)
        assert first.status == "processed"
        # Redeliveries after processing are re-read again (dedup is on a payment waiting to be re-read,
        # issue 17 F1/F12), and change nothing; while one waits, the others are duplicates of it.
        again = api.post(URL, data=body, content_type="application/json")
        assert again.json() == {"status": "accepted"}
        assert api.post(URL, data=body, content_type="application/json").json() == {"status": "duplicate"}
        redelivered = WebhookLog.objects.filter(object_id=withdrawal.provider_object_id).latest("id")
        assert redelivered.duplicates == 1
        assert webhook_process(log_id=redelivered.id) == "processed"
        withdrawal.refresh_from_db()
        assert withdrawal.status == "completed"
        assert journals(withdrawal) == ["withdrawal_reserve", "withdrawal_settle"]
        assert figures(user) == (5_000, 0)

    @pytest.mark.parametrize("status", [502, 503, 504])
    def test_a_payment_created_then_answered_5xx_is_resolved_by_its_callback_once(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver, status: int
    ) -> None:
        """The create made the payment and answered a 5xx: unknown, so pending and reserved; Revio's
        callback names the payment and completes the withdrawal with that one payout (ADR 0015)."""
        fund(user, 10_000)
        eft.sandbox.control.error_after_next(eft.create_endpoint, status=status)
        withdrawal = withdraw(user)
        assert withdrawal.status == "pending"
        assert figures(user) == (5_000, 5_000)
        [payout] = eft.find(str(withdrawal.id))
        eft.succeed(payout.id)
        post_and_process(api, callback(payout.id, "COMPLETED", contractReference=str(withdrawal.id)))
        withdrawal.refresh_from_db()
        assert (withdrawal.status, withdrawal.provider_object_id) == ("completed", payout.id)
        assert journals(withdrawal) == ["withdrawal_reserve", "withdrawal_settle"]
        assert figures(user) == (5_000, 0)
        assert len(eft.find(str(withdrawal.id))) == 1

    def test_unpaid_after_completed_is_a_bank_return(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user)
        payment_id = withdrawal.provider_object_id or ""
        eft.succeed(payment_id)
        post_and_process(api, callback(payment_id, "COMPLETED"))
        eft.bank_return(payment_id)
        post_and_process(api, callback(payment_id, "UNPAID"))
        withdrawal.refresh_from_db()
        assert withdrawal.status == "returned"
        assert figures(user) == (10_000, 0)

    @pytest.mark.parametrize("state", ["DISPUTED", "INTERNAL_FAILURE"])
    def test_an_unclear_state_is_flagged_for_review_and_moves_no_money(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver, revio: SandboxProcess, state: str
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user)
        payment_id = withdrawal.provider_object_id or ""
        eft.succeed(payment_id)
        post_and_process(api, callback(payment_id, "COMPLETED"))
        revio.control.eft_payment_set_status(payment_id, state)
        log = post_and_process(api, callback(payment_id, state))
        assert "flagged for review" in log.result
        withdrawal.refresh_from_db()
        assert (withdrawal.status, withdrawal.needs_review) == ("completed", True)
        assert figures(user) == (5_000, 0)

    def test_a_withdrawal_sent_by_the_retired_gateway_route_named_by_an_eft_payment_is_flagged(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user)
        # As migration 0005 leaves one sent through the gateway's /payouts/ before it was retired.
        Transaction.objects.filter(id=withdrawal.id).update(payout_route="gateway", provider_object_id=None)
        stray = eft.create_by_hand(reference=str(withdrawal.id), amount=5_000, account_number="62001234567")
        log = post_and_process(api, callback(stray, "NEW"))
        assert "flagged for review" in log.result
        withdrawal.refresh_from_db()
        assert (withdrawal.status, withdrawal.needs_review) == ("processing", True)
        assert figures(user) == (5_000, 5_000)

    def test_an_unreachable_eft_api_is_retried_then_dead_lettered(
        self, api: APIClient, user: User, fund: Fund, eft: EftDriver, revio: SandboxProcess, settings: Any
    ) -> None:
        settings.WEBHOOK_MAX_ATTEMPTS = 2
        fund(user, 10_000)
        withdrawal = withdraw(user)
        revio.control.fail_next("eft.payments.get", status=503, count=6)  # both attempts, three reads each
        log = post_and_process(api, callback(withdrawal.provider_object_id or "", "COMPLETED"))
        assert (log.status, log.attempts) == ("failed", 1)
        assert webhook_process(log_id=log.id, now=timezone.now() + timedelta(hours=1)) == "dead_lettered"
        withdrawal.refresh_from_db()
        assert withdrawal.status == "processing"
        assert figures(user) == (5_000, 5_000)


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_delivers_unsigned_callbacks_that_complete_a_withdrawal(
    make_user: Any, revio_webhook: RevioWebhook, fund: Fund, revio: SandboxProcess, eft: EftDriver
) -> None:
    """End to end over HTTP: the sandbox posts unsigned callbacks to the live server for each state."""
    user = make_user()
    fund(user, 10_000)
    withdrawal = withdraw(user)
    eft.succeed(withdrawal.provider_object_id or "")

    def completed() -> bool:
        withdrawal.refresh_from_db()
        return withdrawal.status == "completed"

    wait_for(completed, what="the EFT callbacks to complete the withdrawal")
    logs = WebhookLog.objects.filter(object_id=withdrawal.provider_object_id)
    wait_for(
        lambda: logs.filter(event_type="EFT_PAYMENT.COMPLETED").exclude(status="received").exists(),
        what="the COMPLETED callback (the first re-read may already have seen COMPLETED)",
    )
    assert {log.verified_with for log in logs} == {"unsigned"}
    deliveries = revio.control.deliveries(object_id=withdrawal.provider_object_id, status="delivered")
    assert deliveries
    assert all(attempt["signature"] == "" for d in deliveries for attempt in d["attempts"])
    assert figures(user) == (5_000, 0)


@pytest.mark.django_db
def test_a_signed_gateway_payout_event_moves_nothing(
    user: User, fund: Fund, eft: EftDriver, signer: Signer, event_body: Callable[..., bytes]
) -> None:
    """The gateway pays no bank accounts (platform fact 1): a signed payout.* event, even one naming one of
    our withdrawals by its payment id, is logged and ignored; only the EFT API says what a payout did."""
    fund(user, 10_000)
    withdrawal = withdraw(user)
    body = event_body(
        id=withdrawal.provider_object_id,
        type="payout",
        event_type="payout.success",
        status="success",
        reference=str(withdrawal.id),
    )
    received = webhook_receive(
        body=body, signature=signer.sign(body), source_ip="127.0.0.1", headers={}, now=timezone.now()
    )
    assert webhook_process(log_id=received.log_id) == "ignored"
    assert WebhookLog.objects.get(id=received.log_id).result == "no action for payout events"
    withdrawal.refresh_from_db()
    assert withdrawal.status == "processing"
    assert figures(user) == (5_000, 5_000)
