"""Refunds and chargebacks end to end (issue 16): the sandbox delivers real signed payment.* events to a live
server; the wallet re-reads the purchase and debits the user once per Revio payment."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from wallet.accounts.models import User
from wallet.events.models import Event
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get
from wallet.notifications.models import Notification
from wallet.reconciliation import public as reconciliation
from wallet.transactions import reversals
from wallet.transactions import services as wallet
from wallet.transactions.errors import DebtOutstandingError
from wallet.transactions.models import DepositReversal, Transaction
from wallet.transactions.tests.conftest import BANK
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.services import webhook_process
from wallet.webhooks.tests.conftest import RevioWebhook, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def figures(user: User) -> tuple[int, int, int]:
    b = balance_get(user_id=user.id, currency="ZAR")
    return b.available, b.reserved, b.debt


def credited_deposit(user: User, revio_webhook: RevioWebhook, amount: int) -> Transaction:
    deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=amount, currency="ZAR")
    assert deposit.provider_object_id
    revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id)

    def credited() -> bool:
        deposit.refresh_from_db()
        return deposit.status == "completed"

    wait_for(credited, what="the deposit to be credited")
    return deposit


def reversals_processed(deposit: Transaction, event_type: str, count: int = 1) -> None:
    wait_for(
        lambda: (
            WebhookLog.objects.filter(
                event_type=event_type, reference=str(deposit.id), status="processed"
            ).count()
            >= count
        ),
        what=f"{event_type} to be processed",
    )


def test_chargeback_after_the_user_withdrew_leaves_debt_the_next_deposit_settles(
    make_user: Any, revio_webhook: RevioWebhook
) -> None:
    user = make_user()
    deposit = credited_deposit(user, revio_webhook, 20_000)
    wallet.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=15_000,
        currency="ZAR",
        bank_account=wallet.BankAccount(**BANK),
    )
    assert figures(user) == (5_000, 15_000, 0)
    revio_webhook.sandbox.control.purchase_chargeback(deposit.provider_object_id or "")  # all 20,000
    reversals_processed(deposit, "payment.charged_back")
    # 5,000 from available, 15,000 owed; the reserved payout is untouched.
    assert figures(user) == (0, 15_000, 15_000)
    reversal = DepositReversal.objects.get(deposit=deposit)
    assert (reversal.kind, reversal.status, reversal.amount) == ("chargeback", "completed", 20_000)
    assert (reversal.taken_from_available, reversal.debt_created) == (5_000, 15_000)
    assert Journal.objects.filter(kind="deposit_chargeback", transaction_id=reversal.id).count() == 1
    assert set(Notification.objects.filter(user_id=user.id).values_list("event", flat=True)) >= {
        "deposit.charged_back",
        "debt.created",
    }
    assert set(Event.objects.filter(user_id=user.id).values_list("type", flat=True)) >= {
        "chargeback.received",
        "debt.created",
    }
    # A user in debt cannot withdraw, whatever they ask for.
    with pytest.raises(DebtOutstandingError):
        wallet.withdrawal_create(
            user_id=user.id,
            email=user.email,
            amount=1_000,
            currency="ZAR",
            bank_account=wallet.BankAccount(**BANK),
        )
    # The next deposit settles the debt first.
    credited_deposit(user, revio_webhook, 20_000)
    assert figures(user) == (5_000, 15_000, 0)


def test_a_duplicated_chargeback_delivery_debits_once(make_user: Any, revio_webhook: RevioWebhook) -> None:
    user = make_user()
    deposit = credited_deposit(user, revio_webhook, 20_000)
    control = revio_webhook.sandbox.control
    control.duplicate_next_event(event_type="payment.charged_back", copies=3)
    payment = control.purchase_chargeback(deposit.provider_object_id or "", amount=5_000)
    reversals_processed(deposit, "payment.charged_back")
    wait_for(lambda: WebhookLog.objects.get(object_id=payment["id"]).duplicates >= 2, what="the copies")
    # Each copy processed again (a replay) changes nothing either.
    log = WebhookLog.objects.get(object_id=payment["id"])
    WebhookLog.objects.filter(id=log.id).update(status="received")
    webhook_process(log_id=log.id)
    assert DepositReversal.objects.filter(deposit=deposit).count() == 1
    assert figures(user) == (15_000, 0, 0)


def test_a_refund_made_in_revios_dashboard_debits_once(make_user: Any, revio_webhook: RevioWebhook) -> None:
    user = make_user()
    deposit = credited_deposit(user, revio_webhook, 20_000)
    with revio_webhook.sandbox.api_client() as client:
        answer = client.post(f"purchases/{deposit.provider_object_id}/refund/", json={"amount": 4_000})
        answer.raise_for_status()
    reversals_processed(deposit, "payment.refunded")
    reversal = DepositReversal.objects.get(deposit=deposit)
    assert (reversal.kind, reversal.provider_payment_id, reversal.origin) == (
        "refund",
        answer.json()["id"],
        "revio",
    )
    assert figures(user) == (16_000, 0, 0)
    assert Event.objects.filter(user_id=user.id, type="refund.completed").count() == 1


def test_concurrent_deliveries_of_one_chargeback_debit_once(
    make_user: Any, revio_webhook: RevioWebhook
) -> None:
    user = make_user()
    deposit = credited_deposit(user, revio_webhook, 20_000)
    control = revio_webhook.sandbox.control
    control.drop_next_event(event_type="payment.charged_back")  # we process it ourselves, all at once
    control.drop_next_event(event_type="payment.charged_back")
    payment = control.purchase_chargeback(deposit.provider_object_id or "", amount=6_000)
    purchase = control.purchase(deposit.provider_object_id or "")
    reversal = wallet_public_reversal(payment, purchase)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def apply() -> None:
        try:
            barrier.wait()
            results.append(
                str(
                    reversals.reversal_apply_from_revio(
                        deposit_id=deposit.id, reversal=reversal, origin="revio", source="webhook"
                    )
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["already"] * 7 + ["debited"]
    assert figures(user) == (14_000, 0, 0)


def wallet_public_reversal(payment: dict[str, Any], purchase: dict[str, Any]) -> reversals.RevioReversal:
    total = purchase["purchase"]["total"]
    return reversals.RevioReversal(
        kind="chargeback",
        payment_id=payment["id"],
        amount=payment["amount"],
        currency="ZAR",
        purchase_taken_back=total - purchase["refundable_amount"],
    )


def test_a_lost_chargeback_webhook_is_found_and_applied_by_reconciliation(
    make_user: Any, revio_webhook: RevioWebhook
) -> None:
    user = make_user()
    deposit = credited_deposit(user, revio_webhook, 20_000)
    control = revio_webhook.sandbox.control
    control.drop_next_event(event_type="payment.charged_back", target="webhook")
    payment = control.purchase_chargeback(deposit.provider_object_id or "", amount=8_000)
    dropped = control.wait_for_delivery(
        object_id=payment["id"], event_type="payment.charged_back", status="dropped"
    )
    assert not WebhookLog.objects.filter(object_id=payment["id"]).exists()
    assert figures(user) == (20_000, 0, 0)
    # Yesterday's run: the deposit is today's, so only the lookback brings it in.
    yesterday = (timezone.now() - timedelta(days=1)).date()
    run = reconciliation.provider_reconciliation_run(
        date_from=yesterday, date_to=yesterday, triggered_by="test"
    )
    assert run.status == "completed", run.error
    (found,) = run.discrepancies.filter(kind="charged_back")
    assert found.transaction_id == deposit.id
    assert figures(user) == (12_000, 0, 0)
    reversal = DepositReversal.objects.get(deposit=deposit)
    assert (reversal.origin, reversal.provider_payment_id, reversal.amount) == ("reconciliation", None, 8_000)
    # A second run finds nothing more to apply; the event, delivered late after all, only links its id.
    again = reconciliation.provider_reconciliation_run(
        date_from=yesterday, date_to=yesterday, triggered_by="test"
    )
    assert not again.discrepancies.filter(kind="charged_back").exists()
    control.replay_delivery(dropped["id"])
    reversals_processed(deposit, "payment.charged_back")
    reversal.refresh_from_db()
    assert reversal.provider_payment_id == payment["id"]
    assert figures(user) == (12_000, 0, 0)
    assert Journal.objects.filter(kind="deposit_chargeback").count() == 1
