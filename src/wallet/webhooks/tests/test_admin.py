"""Operators' views: the webhook log's replay action and the read-only transaction pages."""

from typing import Any

import pytest
from django.test import Client

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.tests.conftest import Signer

pytestmark = pytest.mark.django_db


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_dead_lettered_event_replayed_from_the_admin_applies_once(
    admin_user: User,
    user: User,
    signer: Signer,
    event_body: Any,
    revio: SandboxProcess,
    django_capture_on_commit_callbacks: Any,
) -> None:
    deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=4_200, currency="ZAR")
    revio.control.purchase_pay(deposit.provider_object_id or "")
    body = event_body(id=deposit.provider_object_id, reference=str(deposit.id))
    log = WebhookLog.objects.create(
        dedup_key="k",
        event_type="purchase.paid",
        object_type="purchase",
        object_id=deposit.provider_object_id or "",
        reference=str(deposit.id),
        updated_on=1,
        body=body.decode(),
        verified_with="company",
        status="dead_lettered",
        attempts=8,
        last_error="Revio was down",
    )
    client = admin_client(admin_user)
    for _ in range(2):  # the second replay finds nothing eligible: the event is processed
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/admin/webhooks/webhooklog/", {"action": "replay", "_selected_action": [log.id]}, follow=True
            )
        assert response.status_code == 200
    log.refresh_from_db()
    assert (log.status, log.replayed_by) == ("processed", admin_user.email)
    assert balance_get(user_id=user.id, currency="ZAR").available == 4_200


def test_users_cannot_replay(user: User) -> None:
    response = admin_client(user).post("/admin/webhooks/webhooklog/", {"action": "replay"})
    assert response.status_code == 302  # to the admin login: not staff


def test_transaction_pages_are_read_only_and_never_show_the_account_number(
    admin_user: User, user: User, fund: Any
) -> None:
    fund(user, 10_000)
    withdrawal = wallet.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=2_000,
        currency="ZAR",
        bank_account=wallet.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    client = admin_client(admin_user)
    page = client.get(f"/admin/transactions/transaction/{withdrawal.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert BANK["account_number"] not in html
    assert withdrawal.bank_account_masked in html
    assert "processing" in html  # the status history inline
    assert (
        client.post(
            f"/admin/transactions/transaction/{withdrawal.id}/change/", {"status": "completed"}
        ).status_code
        == 403
    )
    assert Transaction.objects.get(id=withdrawal.id).status == "processing"
