"""Revio down: the circuit breaker answers deposits at once and queues withdrawals until Revio is back."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.reconciliation.tests.conftest import later
from wallet.revio import breaker
from wallet.revio.client import get_client
from wallet.revio.payouts import get_payouts
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK

Fund = Callable[[User, int], Transaction]


def remaining(revio: SandboxProcess, endpoint: str) -> int:
    return sum(f.get("remaining", 0) for f in revio.control.faults() if f.get("endpoint") == endpoint)


def open_breaker(revio: SandboxProcess, user_api: APIClient, settings: Any) -> None:
    settings.REVIO_BREAKER_FAILURE_THRESHOLD = 3
    settings.REVIO_BREAKER_COOLDOWN_SECONDS = 1.0
    revio.control.fail_next("purchases.create", status=503, count=100)
    revio.control.fail_next("eft.payments.create", status=503, count=100)
    for _ in range(3):
        response = user_api.post("/api/v1/deposits", {"amount": 2_000}, format="json")
        assert response.status_code == 503
    assert breaker.breaker_state().state == "open"
    assert remaining(revio, "purchases.create") == 97


def open_eft_breaker(revio: SandboxProcess) -> None:
    """The EFT API's own breaker (issue 17 F1: one per Revio API): opened by failing EFT reads."""
    revio.control.fail_next("eft.payments.get", status=503, count=100)
    for _ in range(3):
        with pytest.raises(breaker.RevioUnavailableError):
            get_payouts().get("00000000-0000-4000-8000-000000000000")
    assert breaker.breaker_state(api=breaker.EFT).state == "open"


@pytest.mark.django_db
def test_deposits_get_503_at_once_while_open_and_nothing_reaches_revio(
    user_api: APIClient, user: User, revio: SandboxProcess, settings: Any
) -> None:
    open_breaker(revio, user_api, settings)

    started = time.monotonic()
    response = user_api.post("/api/v1/deposits", {"amount": 2_000}, format="json")
    assert time.monotonic() - started < 0.5
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "provider_unavailable"
    assert Transaction.objects.get(id=error["details"]["deposit_id"]).status == "failed"
    assert remaining(revio, "purchases.create") == 97  # refused without calling Revio

    revio.control.clear_faults()
    time.sleep(1.1)  # the cool-down: half-open, one trial goes through and closes the breaker
    assert user_api.post("/api/v1/deposits", {"amount": 2_000}, format="json").status_code == 201
    assert breaker.breaker_state().state == "closed"


@pytest.mark.django_db
def test_a_failed_trial_opens_the_breaker_again(revio: SandboxProcess, settings: Any) -> None:
    settings.REVIO_BREAKER_FAILURE_THRESHOLD = 2
    settings.REVIO_BREAKER_COOLDOWN_SECONDS = 0.5
    revio.control.fail_next("purchases.get", status=503, count=100)
    for _ in range(2):
        with pytest.raises(breaker.RevioUnavailableError):
            get_client().purchase_get("00000000-0000-4000-8000-000000000000")
    with pytest.raises(breaker.RevioCircuitOpenError):
        get_client().purchase_get("00000000-0000-4000-8000-000000000000")
    time.sleep(0.6)
    with pytest.raises(breaker.RevioUnavailableError) as trial:
        get_client().purchase_get("00000000-0000-4000-8000-000000000000")
    assert not isinstance(trial.value, breaker.RevioCircuitOpenError)  # the trial reached Revio
    assert breaker.breaker_state().state == "open"  # and failed: open again for a new cool-down


@pytest.mark.django_db(transaction=True)
def test_withdrawals_are_queued_while_open_and_paid_out_once_after_recovery(
    user_api: APIClient, user: User, fund: Fund, revio: SandboxProcess, settings: Any
) -> None:
    fund(user, 20_000)
    open_breaker(revio, user_api, settings)
    open_eft_breaker(revio)

    ids = []
    for amount in (3_000, 4_000):
        response = user_api.post(
            "/api/v1/withdrawals", {"amount": amount, "bank_account": BANK}, format="json"
        )
        assert response.status_code == 201, response.content
        # Still pending after the worker's attempt: the breaker is open, so nothing was sent (queued).
        assert user_api.get(f"/api/v1/withdrawals/{response.json()['id']}").json()["status"] == "pending"
        ids.append(response.json()["id"])
    balance = balance_get(user_id=user.id, currency="ZAR")
    assert (balance.available, balance.reserved) == (13_000, 7_000)  # reserved at once
    assert Transaction.objects.filter(id__in=ids, payout_requested_at__isnull=True).count() == 2
    assert services.withdrawals_send_queued(now=later(minutes=5)) == {}  # still open: nothing sent
    assert remaining(revio, "eft.payments.create") == 100

    revio.control.clear_faults()
    time.sleep(1.1)
    results: list[dict[str, int]] = []

    def sweep() -> None:
        try:
            results.append(services.withdrawals_send_queued(now=later(minutes=5)))
        finally:
            connection.close()

    # Two sweeps at once (two beat ticks, two workers): each payout is still sent exactly once.
    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # A sweep refused during the half-open trial leaves its withdrawal queued for the next sweep.
    results.append(services.withdrawals_send_queued(now=later(minutes=6)))
    assert sum(r.get("sent", 0) for r in results) == 2
    for withdrawal_id in ids:
        assert len(get_payouts().find_by_reference(withdrawal_id)) == 1
        withdrawal = Transaction.objects.get(id=withdrawal_id)
        assert (withdrawal.status, withdrawal.payout_attempts) == ("processing", 1)
    assert services.withdrawals_send_queued(now=later(minutes=10)) == {}
    assert all(len(get_payouts().find_by_reference(i)) == 1 for i in ids)
