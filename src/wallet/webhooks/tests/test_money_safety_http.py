"""Issue 16's "done when", end to end: the user calls the API over HTTP, the sandbox makes the payment
happen and delivers its own EFT callbacks and signed payment.* webhooks to a live server, operators use the
admin console. Real PostgreSQL, Redis and sandbox; nothing of the wallet is replaced (Sentry at its library
seam only)."""

import contextlib
from datetime import timedelta
from typing import Any

import pytest
import sentry_sdk
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.core import metrics
from wallet.ledger.models import Journal
from wallet.notifications.models import Notification
from wallet.transactions.models import Transaction, WithdrawalResolution
from wallet.transactions.services import withdrawals_send_queued
from wallet.transactions.tests.conftest import BANK
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.tests.conftest import RevioWebhook, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def balance(api: APIClient, expected: tuple[int, int, int] | None = None) -> tuple[int, int, int]:
    """GET /balance: (available, reserved, debt). With `expected`, read again for a moment until it says so:
    the balance cache is invalidated just after a webhook's commit, in the live server's thread."""

    def read() -> tuple[int, int, int]:
        body = api.get("/api/v1/balance").json()
        return body["available"], body["reserved"], body["debt"]

    if expected is not None:
        with contextlib.suppress(AssertionError):  # the caller's assertion shows what it is
            wait_for(lambda: read() == expected, timeout=5, what=f"the balance to be {expected}")
    return read()


def deposit_paid(api: APIClient, hook: RevioWebhook, amount: int) -> str:
    """POST /deposits, the customer pays at Revio, Revio's signed purchase.paid credits it."""
    created = api.post("/api/v1/deposits", {"amount": amount}, format="json")
    assert created.status_code == 201, created.content
    deposit = Transaction.objects.get(id=created.json()["id"])
    hook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
    wait_for(
        lambda: Transaction.objects.filter(id=deposit.id, status="completed").exists(),
        what="the deposit to be credited",
    )
    return str(deposit.id)


def withdraw(api: APIClient, amount: int) -> Any:
    return api.post("/api/v1/withdrawals", {"amount": amount, "bank_account": BANK}, format="json")


def journals(withdrawal_id: str) -> list[str]:
    return sorted(Journal.objects.filter(transaction_id=withdrawal_id).values_list("kind", flat=True))


def status_of(withdrawal_id: str, status: str) -> bool:
    return Transaction.objects.filter(id=withdrawal_id, status=status).exists()


def callbacks_settled(payout_id: str) -> bool:
    return not WebhookLog.objects.filter(object_id=payout_id, status__in=["received", "processing"]).exists()


@pytest.fixture
def sentry_messages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(sentry_sdk, "capture_message", lambda message, level=None: sent.append(message))
    return sent


def test_a_503_after_the_payout_was_made_is_neither_refunded_nor_sent_again_and_its_callback_settles_it(
    user: User, user_api: APIClient, revio_webhook: RevioWebhook
) -> None:
    control = revio_webhook.sandbox.control
    deposit_paid(user_api, revio_webhook, 10_000)
    control.error_after_next("eft.payments.create", status=503)  # made at Revio, then a 503
    response = withdraw(user_api, 4_000)
    assert response.status_code == 201, response.content
    withdrawal_id = response.json()["id"]
    assert response.json()["status"] == "pending"  # unknown: never failed, never refunded
    assert balance(user_api, (6_000, 4_000, 0)) == (6_000, 4_000, 0)
    (payment,) = control.eft_payments_by_reference(withdrawal_id)
    # The jobs that send queued payouts and check stuck ones do not send it again.
    withdrawals_send_queued(now=timezone.now() + timedelta(hours=1))
    assert len(control.eft_payments_by_reference(withdrawal_id)) == 1
    assert balance(user_api, (6_000, 4_000, 0)) == (6_000, 4_000, 0)
    # Revio pays it; its own callback names the payment and completes the withdrawal.
    control.eft_payment_succeed(payment["id"])
    wait_for(lambda: status_of(withdrawal_id, "completed"), what="the callback to complete the withdrawal")
    assert balance(user_api, (6_000, 0, 0)) == (6_000, 0, 0)
    assert journals(withdrawal_id) == ["withdrawal_reserve", "withdrawal_settle"]
    assert len(control.eft_payments_by_reference(withdrawal_id)) == 1


def test_a_503_after_the_payout_was_made_is_settled_paid_by_two_operators_in_the_console(
    user: User, user_api: APIClient, revio_webhook: RevioWebhook, make_user: Any
) -> None:
    control = revio_webhook.sandbox.control
    deposit_paid(user_api, revio_webhook, 10_000)
    control.error_after_next("eft.payments.create", status=503)
    # The payment's callbacks never reach us (Revio's delivery is down): only people can settle it.
    control.eft_delete_callbacks(url_prefix=revio_webhook.url)
    withdrawal_id = withdraw(user_api, 4_000).json()["id"]
    (payment,) = control.eft_payments_by_reference(withdrawal_id)
    control.eft_payment_succeed(payment["id"])
    proposer, approver = (
        make_user(email=f"fin{n}@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)
        for n in (1, 2)
    )
    url = "/admin/transactions/withdrawalresolution/"
    first, second = Client(), Client()
    first.force_login(proposer)
    second.force_login(approver)
    added = first.post(
        url + "add/",
        {
            "withdrawal": withdrawal_id,
            "outcome": "paid",
            "payout_id": payment["id"],
            "note": "Revio dashboard",
        },
    )
    assert added.status_code == 302, added.content.decode()[:500]
    resolution = WithdrawalResolution.objects.get(withdrawal_id=withdrawal_id)
    own = first.post(
        url, {"action": "approve_selected", "_selected_action": [str(resolution.id)]}, follow=True
    )
    assert "a different admin must decide it" in own.content.decode()
    assert balance(user_api, (6_000, 4_000, 0)) == (6_000, 4_000, 0)
    second.post(url, {"action": "approve_selected", "_selected_action": [str(resolution.id)]}, follow=True)
    assert status_of(withdrawal_id, "completed")
    assert balance(user_api, (6_000, 0, 0)) == (6_000, 0, 0)
    assert journals(withdrawal_id) == ["withdrawal_reserve", "withdrawal_settle"]
    assert len(control.eft_payments_by_reference(withdrawal_id)) == 1


def test_fail_then_success_is_one_clawback_an_alert_and_debt_the_next_deposit_settles(
    user: User, user_api: APIClient, revio_webhook: RevioWebhook, sentry_messages: list[str]
) -> None:
    control = revio_webhook.sandbox.control
    metrics.reset("withdrawal_clawbacks")
    deposit_paid(user_api, revio_webhook, 10_000)
    first = withdraw(user_api, 6_000).json()
    assert first["status"] == "pending"  # the payouts worker sends it after the 201 (issue 18)
    wait_for(lambda: status_of(first["id"], "processing"), what="the payouts worker to send the payout")
    payout_id = Transaction.objects.get(id=first["id"]).provider_object_id or ""
    # Revio fails the payout; its callback, delivered twice, refunds it once.
    control.eft_payment_fail(payout_id)
    wait_for(lambda: status_of(first["id"], "failed"), what="the failure callback")
    (failure,) = [d for d in control.deliveries(object_id=payout_id) if "FAILURE" in d["event_type"]]
    control.replay_delivery(failure["id"])
    wait_for(lambda: callbacks_settled(payout_id), what="the repeated failure callback")
    assert balance(user_api, (10_000, 0, 0)) == (10_000, 0, 0)
    assert journals(first["id"]) == ["withdrawal_release", "withdrawal_reserve"]
    # The user withdraws most of it again; then Revio reports the first payout COMPLETED after all.
    second = withdraw(user_api, 8_000)
    assert second.status_code == 201, second.content
    control.eft_payment_set_status(payout_id, "COMPLETED")
    wait_for(lambda: status_of(first["id"], "completed"), what="the late success callback")
    wait_for(lambda: callbacks_settled(payout_id), what="the callbacks to be processed")
    # 2,000 taken from available, the other 4,000 owed; the second payout's reservation is untouched.
    assert balance(user_api, (0, 8_000, 4_000)) == (0, 8_000, 4_000)
    assert journals(first["id"]) == ["withdrawal_clawback", "withdrawal_release", "withdrawal_reserve"]
    assert metrics.read("withdrawal_clawbacks") == 1
    assert len(sentry_messages) == 1
    assert (
        Notification.objects.filter(transaction_id=first["id"], event="withdrawal.clawed_back").count() == 1
    )
    # In debt: no withdrawal, whatever the amount.
    refused = withdraw(user_api, 1_000)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "debt_outstanding"
    # The next deposit settles the debt first.
    deposit_paid(user_api, revio_webhook, 5_000)
    assert balance(user_api, (1_000, 8_000, 0)) == (1_000, 8_000, 0)


def test_a_chargeback_after_the_user_withdrew_is_debt_refuses_withdrawals_and_the_next_deposit_settles_it(
    user: User, user_api: APIClient, revio_webhook: RevioWebhook
) -> None:
    control = revio_webhook.sandbox.control
    deposit_id = deposit_paid(user_api, revio_webhook, 20_000)
    response = withdraw(user_api, 15_000)
    assert response.status_code == 201, response.content
    payout_id = Transaction.objects.get(id=response.json()["id"]).provider_object_id or ""
    control.eft_payment_succeed(payout_id)
    wait_for(lambda: status_of(response.json()["id"], "completed"), what="the payout to complete")
    purchase_id = Transaction.objects.get(id=deposit_id).provider_object_id or ""
    control.purchase_chargeback(purchase_id)  # the whole 20,000, weeks later
    wait_for(
        lambda: WebhookLog.objects.filter(event_type="payment.charged_back", status="processed").exists(),
        what="payment.charged_back to be processed",
    )
    assert balance(user_api, (0, 0, 15_000)) == (0, 0, 15_000)
    refused = withdraw(user_api, 1_000)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "debt_outstanding"
    assert refused.json()["error"]["details"]["debt"] == 15_000
    deposit_paid(user_api, revio_webhook, 20_000)
    assert balance(user_api, (5_000, 0, 0)) == (5_000, 0, 0)
    assert withdraw(user_api, 5_000).status_code == 201
