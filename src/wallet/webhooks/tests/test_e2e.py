"""End to end: the sandbox delivers real signed events to a live server, with Revio's faults.

Processing runs in the web process here (Celery eager); test_worker.py runs a real Celery worker.
"""

from typing import Any

import pytest
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver
from wallet.webhooks.models import WebhookLog, WebhookRejection
from wallet.webhooks.tests.conftest import RevioWebhook, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def available(user: User) -> int:
    return balance_get(user_id=user.id, currency="ZAR").available


def start_deposit(user: User, amount: int = 6_000) -> Transaction:
    deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=amount, currency="ZAR")
    assert deposit.provider_object_id
    return deposit


def settled(txn: Transaction, status: str) -> bool:
    txn.refresh_from_db()
    return txn.status == status


def funded_withdrawal(user: User, revio_webhook: RevioWebhook, amount: int, **bank: str) -> Transaction:
    deposit = start_deposit(user, 20_000)
    revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
    wait_for(lambda: settled(deposit, "completed"), what="the deposit to be credited")
    withdrawal = wallet.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=amount,
        currency="ZAR",
        bank_account=wallet.BankAccount(**{**BANK, **bank}),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    return withdrawal


class TestDeposits:
    def test_paid_at_checkout_is_credited_once_though_delivered_twice(
        self, make_user: Any, revio_webhook: RevioWebhook
    ) -> None:
        user = make_user()
        deposit = start_deposit(user)
        revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
        wait_for(lambda: settled(deposit, "completed"), what="the deposit to be credited")
        # Revio sends purchase.paid to the success_callback and to the webhook object: one event, one credit.
        control = revio_webhook.sandbox.control
        control.wait_for_deliveries(
            lambda ds: len([d for d in ds if d["status"] == "delivered"]) >= 2,
            object_id=deposit.provider_object_id,
            event_type="purchase.paid",
        )
        paid = WebhookLog.objects.get(object_id=deposit.provider_object_id, event_type="purchase.paid")
        wait_for(lambda: WebhookLog.objects.get(id=paid.id).duplicates >= 1, what="the second delivery")
        assert {paid.verified_with} <= {"company", "webhook"}
        assert available(user) == 6_000

    def test_a_duplicated_delivery_credits_once(self, make_user: Any, revio_webhook: RevioWebhook) -> None:
        user = make_user()
        deposit = start_deposit(user)
        revio_webhook.sandbox.control.duplicate_next_event(event_type="purchase.paid", copies=3)
        revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
        wait_for(lambda: settled(deposit, "completed"), what="the deposit to be credited")
        wait_for(
            lambda: (
                WebhookLog.objects.filter(event_type="purchase.paid").first() is not None
                and WebhookLog.objects.get(event_type="purchase.paid").duplicates >= 3
            ),
            what="the copies",
        )
        assert available(user) == 6_000

    @pytest.mark.parametrize("fault", ["bad_signature", "reserialize_original"])
    def test_a_forged_or_reserialised_delivery_is_refused_and_the_honest_retry_credits(
        self, make_user: Any, revio_webhook: RevioWebhook, fault: str
    ) -> None:
        user = make_user()
        deposit = start_deposit(user)
        control = revio_webhook.sandbox.control
        if fault == "bad_signature":
            control.bad_signature_next_event(event_type="purchase.paid", target="webhook")
        else:
            control.reserialize_next_event(
                signed_over="original", event_type="purchase.paid", target="webhook"
            )
        control.purchase_pay(deposit.provider_object_id or "")
        wait_for(
            lambda: WebhookRejection.objects.filter(reason="signature_invalid").exists(),
            what="the refused delivery",
        )
        wait_for(lambda: settled(deposit, "completed"), what="the honest delivery to credit")
        assert available(user) == 6_000

    def test_a_replayed_past_event_changes_nothing(self, make_user: Any, revio_webhook: RevioWebhook) -> None:
        user = make_user()
        deposit = start_deposit(user)
        control = revio_webhook.sandbox.control
        control.purchase_pay(deposit.provider_object_id or "")
        delivery = control.wait_for_delivery(object_id=deposit.provider_object_id, event_type="purchase.paid")
        wait_for(lambda: settled(deposit, "completed"), what="the deposit to be credited")
        before = WebhookLog.objects.get(event_type="purchase.paid").duplicates
        control.replay_delivery(delivery["id"])
        wait_for(
            lambda: WebhookLog.objects.get(event_type="purchase.paid").duplicates > before, what="the replay"
        )
        assert available(user) == 6_000

    def test_a_rotated_signing_key_heals_without_a_restart(
        self, make_user: Any, revio_webhook: RevioWebhook
    ) -> None:
        user = make_user()
        first = start_deposit(user)
        control = revio_webhook.sandbox.control
        control.purchase_pay(first.provider_object_id or "")
        wait_for(lambda: settled(first, "completed"), what="the first deposit")  # old keys now cached
        control.rotate_company_key()
        control.rotate_webhook_key(revio_webhook.webhook_id)
        second = start_deposit(user)
        control.purchase_pay(second.provider_object_id or "")
        wait_for(lambda: settled(second, "completed"), what="the deposit signed with the new keys")
        assert available(user) == 12_000


class TestWithdrawals:
    """Each runs on both payout routes: signed payout.* webhooks, or unsigned EFT callbacks that only
    trigger a re-read of the payment."""

    def test_accepted_then_paid_out(
        self, make_user: Any, revio_webhook: RevioWebhook, eft: EftDriver
    ) -> None:
        user = make_user()
        withdrawal = funded_withdrawal(user, revio_webhook, 5_000)
        assert withdrawal.status == "processing"
        eft.succeed(withdrawal.provider_object_id or "")
        wait_for(lambda: settled(withdrawal, "completed"), what="the payout to complete")
        assert balance_get(user_id=user.id, currency="ZAR").reserved == 0
        assert available(user) == 15_000

    def test_success_delivered_before_pending_ends_completed_with_the_stale_event_ignored(
        self, make_user: Any, revio_webhook: RevioWebhook, eft: EftDriver
    ) -> None:
        user = make_user()
        withdrawal = funded_withdrawal(user, revio_webhook, 5_000)
        control = revio_webhook.sandbox.control
        pending_event = eft.in_progress_event
        control.reorder_next_event(event_type=pending_event, target=eft.delivery_target)
        eft.succeed(withdrawal.provider_object_id or "")
        wait_for(
            lambda: (
                WebhookLog.objects.filter(object_id=withdrawal.provider_object_id, event_type=pending_event)
                .exclude(status="received")
                .exclude(status="processing")
                .exists()
            ),
            what="the held-back pending event",
        )
        wait_for(lambda: settled(withdrawal, "completed"), what="the payout to complete")
        # Whichever arrives first triggers a re-read of Revio's truth (success); the money moves once.
        pending = WebhookLog.objects.get(object_id=withdrawal.provider_object_id, event_type=pending_event)
        assert pending.status in {"ignored", "processed"}
        settle = Journal.objects.filter(transaction_id=withdrawal.id, kind="withdrawal_settle")
        assert settle.count() == 1
        assert available(user) == 15_000

    def test_failed_after_acceptance_refunds_once(
        self, make_user: Any, revio_webhook: RevioWebhook, eft: EftDriver
    ) -> None:
        user = make_user()
        withdrawal = funded_withdrawal(user, revio_webhook, 5_000)
        eft.fail(withdrawal.provider_object_id or "")
        wait_for(lambda: settled(withdrawal, "failed"), what="the payout to fail")
        assert (available(user), balance_get(user_id=user.id, currency="ZAR").reserved) == (20_000, 0)

    def test_returned_by_the_bank_hours_later_is_recredited(
        self, make_user: Any, revio_webhook: RevioWebhook, eft: EftDriver
    ) -> None:
        user = make_user()
        withdrawal = funded_withdrawal(user, revio_webhook, 5_000)
        eft.succeed(withdrawal.provider_object_id or "")
        wait_for(lambda: settled(withdrawal, "completed"), what="the payout to complete")
        eft.bank_return(withdrawal.provider_object_id or "")
        wait_for(lambda: settled(withdrawal, "returned"), what="the bank return")
        assert available(user) == 20_000

    def test_an_unknown_outcome_is_resolved_by_the_created_event_carrying_our_reference(
        self, make_user: Any, revio_webhook: RevioWebhook, eft: EftDriver
    ) -> None:
        user = make_user()
        eft.create_times_out(seconds=5)
        withdrawal = funded_withdrawal(user, revio_webhook, 5_000)
        # Our request timed out, but Revio created the payout and tells us so with our reference on it
        # (EFT: the callback names the payment, whose re-read carries our contractReference).
        wait_for(
            lambda: settled(withdrawal, "processing"), what="payout.created to resolve the unknown outcome"
        )
        assert withdrawal.provider_object_id
        assert Transaction.objects.filter(type="withdrawal").count() == 1


def test_the_deposit_detail_is_what_the_frontend_polls(make_user: Any, revio_webhook: RevioWebhook) -> None:
    """The redirect after checkout only informs; the credit comes from the webhook, visible on polling."""
    from conftest import login

    user = make_user()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(api, user.email)['access']}")
    body = api.post("/api/v1/deposits", {"amount": 8_000}, format="json").json()
    assert api.get(f"/api/v1/deposits/{body['id']}").json()["status"] == "pending"
    purchase_id = body["checkout_url"].rstrip("/").rsplit("/", 1)[1]
    revio_webhook.sandbox.control.purchase_pay(purchase_id)
    wait_for(
        lambda: api.get(f"/api/v1/deposits/{body['id']}").json()["status"] == "completed",
        what="the deposit to show completed",
    )
    assert api.get("/api/v1/balance").json()["available"] == 8_000
