"""Switching REVIO_PAYOUT_ROUTE with withdrawals in flight: each is read from the route that sent it."""

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.reconciliation.models import Discrepancy
from wallet.reconciliation.provider import provider_reconciliation_run
from wallet.reconciliation.recovery import recovery_run
from wallet.reconciliation.tests.conftest import later
from wallet.revio import breaker
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import use_payout_route

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]
Withdraw = Callable[..., Transaction]
OTHER = {"gateway": "eft", "eft": "gateway"}


def figures(user: User) -> tuple[int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved


@pytest.mark.parametrize("sent_by", ["gateway", "eft"])
def test_a_payout_in_flight_completes_through_its_own_route_after_a_switch(
    user: User, fund: Fund, withdraw: Withdraw, revio: SandboxProcess, settings: Any, sent_by: str
) -> None:
    fund(user, 10_000)
    driver = use_payout_route(sent_by, revio, settings)
    withdrawal = withdraw(user, 6_000)
    assert (withdrawal.status, withdrawal.payout_route) == ("processing", sent_by)

    settings.REVIO_PAYOUT_ROUTE = OTHER[sent_by]  # the team switches while the payout is on its way
    driver.succeed(withdrawal.provider_object_id or "")
    recovery_run(now=later(days=2))

    withdrawal.refresh_from_db()
    assert withdrawal.status == "completed"
    assert figures(user) == (4_000, 0)
    today = timezone.now().date()
    run = provider_reconciliation_run(date_from=today, date_to=today, triggered_by="test")
    assert not Discrepancy.objects.filter(run=run, transaction_id=withdrawal.id).exists()


@pytest.mark.parametrize("configured", ["gateway", "eft"])
def test_a_payout_queued_before_the_switch_goes_out_through_the_new_route(
    user: User, fund: Fund, withdraw: Withdraw, revio: SandboxProcess, settings: Any, configured: str
) -> None:
    fund(user, 10_000)
    use_payout_route(OTHER[configured], revio, settings)
    cache.set(breaker.OPENED_AT_KEY, time.time(), timeout=None)  # Revio is down: the payout is queued
    withdrawal = withdraw(user, 6_000)
    assert (withdrawal.status, withdrawal.payout_requested_at) == ("pending", None)

    driver = use_payout_route(configured, revio, settings)
    breaker.breaker_reset()
    assert services.withdrawals_send_queued(now=later(minutes=10)) == {"sent": 1}

    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.payout_route) == ("processing", configured)
    assert [p.id for p in driver.find(str(withdrawal.id))] == [withdrawal.provider_object_id]
