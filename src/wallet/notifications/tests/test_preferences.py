"""Email preferences: the API, and optional emails skipped while essential ones still go."""

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.notifications.models import Notification, NotificationStatus
from wallet.notifications.services import SendOutcome, notification_send
from wallet.revio.contracts import BankAccount
from wallet.transactions import services
from wallet.transactions.errors import DepositProviderUnavailableError
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, apply_payout

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]


def failed_deposit(user: User, revio: SandboxProcess, amount: int) -> Transaction:
    revio.control.fail_next("purchases.create", status=503, count=5)
    with pytest.raises(DepositProviderUnavailableError) as raised:
        services.deposit_create(user_id=user.id, email=user.email, amount=amount, currency="ZAR")
    return Transaction.objects.get(id=raised.value.details["deposit_id"], status="failed")


class TestApi:
    def test_everything_is_on_until_turned_off(self, user_api: APIClient) -> None:
        assert user_api.get("/api/v1/me/notifications").json() == {"transaction_emails": True}

        response = user_api.patch("/api/v1/me/notifications", {"transaction_emails": False}, format="json")
        assert response.status_code == 200
        assert response.json() == {"transaction_emails": False}
        assert user_api.get("/api/v1/me/notifications").json() == {"transaction_emails": False}
        # An empty PATCH changes nothing.
        assert user_api.patch("/api/v1/me/notifications", {}, format="json").json() == {
            "transaction_emails": False
        }

    def test_a_bad_value_is_a_validation_error(self, user_api: APIClient) -> None:
        response = user_api.patch("/api/v1/me/notifications", {"transaction_emails": "maybe"}, format="json")
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert "transaction_emails" in error["details"]["fields"]

    def test_needs_a_login(self, api: APIClient) -> None:
        response = api.get("/api/v1/me/notifications")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


def test_opted_out_users_still_get_essential_emails(
    user: User, user_api: APIClient, fund: Fund, revio: SandboxProcess, mailoutbox: list[Any]
) -> None:
    user_api.patch("/api/v1/me/notifications", {"transaction_emails": False}, format="json")
    deposit = fund(user, 20_000)
    failed_deposit(user, revio, 1_000)
    withdrawal = services.withdrawal_create(
        user_id=user.id, email=user.email, amount=5_000, currency="ZAR", bank_account=BankAccount(**BANK)
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    revio.control.eft_payment_succeed(withdrawal.provider_object_id or "")
    apply_payout(withdrawal)

    now = timezone.now()
    outcomes = {
        row.event: notification_send(notification_id=row.id, now=now)
        for row in Notification.objects.filter(user=user)
    }

    assert outcomes == {
        "deposit.completed": SendOutcome.SKIPPED,
        "deposit.failed": SendOutcome.SKIPPED,
        "withdrawal.processing": SendOutcome.SKIPPED,
        "withdrawal.completed": SendOutcome.SENT,
    }
    assert [email.subject for email in mailoutbox] == ["Your withdrawal of R 50.00 has been paid"]
    assert Notification.objects.get(transaction_id=deposit.id).status == NotificationStatus.SKIPPED


def test_a_failed_deposit_is_reported_to_users_who_want_updates(
    user: User, revio: SandboxProcess, mailoutbox: list[Any]
) -> None:
    deposit = failed_deposit(user, revio, 2_500)
    row = Notification.objects.get(transaction_id=deposit.id)

    assert notification_send(notification_id=row.id, now=timezone.now()) == SendOutcome.SENT
    [email] = mailoutbox
    assert email.subject == "Your deposit of R 25.00 did not go through"
    assert "nothing was added to your wallet" in email.body
    assert "Reason: The payment provider refused the deposit (503)." in email.body
