"""The deposit hold (issue 16 part 3): recent deposits cannot be withdrawn until their cooling-off ends."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.transactions import reversals
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]


@pytest.fixture
def hold_on(settings: Any) -> None:
    settings.DEPOSIT_HOLD_HOURS = 24
    settings.DEPOSIT_HOLD_NEW_USER_HOURS = 72
    settings.DEPOSIT_HOLD_NEW_USER_DEPOSITS = 3
    settings.DEPOSIT_HOLD_NEW_USER_DAYS = 30


def withdraw(api: APIClient, amount: int) -> Any:
    return api.post("/api/v1/withdrawals", {"amount": amount, "bank_account": BANK}, format="json")


def age(deposit: Transaction, hours: float) -> None:
    Transaction.objects.filter(id=deposit.id).update(completed_at=timezone.now() - timedelta(hours=hours))


def test_a_new_users_deposit_is_held_for_the_new_user_period(
    hold_on: None, user_api: APIClient, user: User, fund: Fund, revio: SandboxProcess
) -> None:
    deposit = fund(user, 20_000)
    assert user_api.get("/api/v1/balance").json()["hold"] == 20_000
    refused = withdraw(user_api, 1_000)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "insufficient_funds"
    assert (error["details"]["held"], error["details"]["withdrawable"]) == (20_000, 0)
    age(deposit, 71)  # a new user's hold is 72 hours, not 24
    assert withdraw(user_api, 1_000).status_code == 409
    age(deposit, 73)
    assert user_api.get("/api/v1/balance").json()["hold"] == 0
    assert withdraw(user_api, 1_000).status_code == 201


def test_with_history_the_hold_is_shorter_and_only_recent_money_is_held(
    hold_on: None, user_api: APIClient, user: User, fund: Fund, revio: SandboxProcess
) -> None:
    User.objects.filter(id=user.id).update(created_at=timezone.now() - timedelta(days=90))
    for _ in range(3):
        age(fund(user, 10_000), 24 * 40)  # three old deposits: 30,000 free to withdraw
    recent = fund(user, 20_000)
    age(recent, 12)
    assert user_api.get("/api/v1/balance").json()["hold"] == 20_000
    assert withdraw(user_api, 30_001).status_code == 409
    assert withdraw(user_api, 25_000).status_code == 201  # from the old money
    age(recent, 25)  # past the regular 24 hours
    assert user_api.get("/api/v1/balance").json()["hold"] == 0
    assert withdraw(user_api, 20_000).status_code == 201


def test_money_already_charged_back_is_not_held_twice(
    hold_on: None, user_api: APIClient, user: User, fund: Fund, revio: SandboxProcess
) -> None:
    age(fund(user, 30_000), 24 * 10)  # older money, out of its hold
    deposit = fund(user, 20_000)
    chargeback = revio.control.purchase_chargeback(deposit.provider_object_id or "", amount=15_000)
    applied = reversals.reversal_apply_from_revio(
        deposit_id=deposit.id,
        reversal=reversals.RevioReversal(
            kind="chargeback",
            payment_id=chargeback["id"],
            amount=15_000,
            currency="ZAR",
            purchase_taken_back=15_000,
        ),
        origin="revio",
        source="webhook",
    )
    assert applied == "debited"
    balance = user_api.get("/api/v1/balance").json()
    assert (balance["available"], balance["hold"]) == (35_000, 5_000)


def test_a_hold_of_zero_turns_it_off(
    user_api: APIClient, user: User, fund: Fund, revio: SandboxProcess
) -> None:
    fund(user, 20_000)
    assert user_api.get("/api/v1/balance").json()["hold"] == 0
    assert withdraw(user_api, 20_000).status_code == 201
