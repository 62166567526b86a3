"""The invariant monitor: quiet on good books, loud (log, metric, Sentry) on a planted inconsistency."""

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core import metrics
from wallet.ledger.models import Balance
from wallet.reconciliation import invariants
from wallet.reconciliation.models import InvariantCheck
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, apply_payout

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]


@pytest.fixture
def sentry_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(
        invariants.sentry_sdk, "capture_message", lambda message, level=None: events.append((message, level))
    )
    return events


@pytest.fixture
def books(user: User, fund: Fund, revio: SandboxProcess) -> Transaction:
    # The session's sandbox holds every earlier test's payments: its company balance starts from ours.
    revio.control.reset(keep_webhooks=True)
    fund(user, 10_000)
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=3_000,
        currency="ZAR",
        bank_account=services.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    return withdrawal


def test_good_books_pass_with_the_clearing_position_compared(
    books: Transaction, sentry_events: list[Any], revio: SandboxProcess
) -> None:
    """10,000 deposited, 3,000 on its way out by EFT (pending at Revio, reserved with us): both sides say
    Revio holds 10,000."""
    check = invariants.invariants_check(now=books.created_at)
    assert (check.ok, check.problems, check.skipped) == (True, [], [])
    assert invariants.clearing_held() == {"ZAR": 10_000}
    assert revio_gross(revio) == 10_000
    assert sentry_events == []
    assert InvariantCheck.objects.count() == 1


def revio_gross(revio: SandboxProcess) -> int:
    with revio.api_client() as client:
        return int(client.get("account/json/balance/").json()["ZAR"]["gross_balance"])


def test_a_completed_payout_on_both_sides_still_agrees(
    user: User, books: Transaction, revio: SandboxProcess, sentry_events: list[Any]
) -> None:
    revio.control.eft_payment_succeed(books.provider_object_id or "")
    apply_payout(books)
    check = invariants.invariants_check(now=books.created_at)
    assert (check.ok, check.problems) == (True, [])
    assert invariants.clearing_held() == {"ZAR": 7_000}


def test_money_at_revio_our_ledger_does_not_know_is_a_clearing_discrepancy(
    user: User, books: Transaction, revio: SandboxProcess, sentry_events: list[Any]
) -> None:
    lost = services.deposit_create(user_id=user.id, email=user.email, amount=2_500, currency="ZAR")
    revio.control.purchase_pay(lost.provider_object_id or "")  # paid at Revio; its event never applied

    check = invariants.invariants_check(now=books.created_at)

    assert not check.ok
    assert check.problems == [
        "revio_clearing_position (ZAR): our ledger says Revio holds 10000, Revio's gross balance is 12500 "
        "(Revio more by 2500)"
    ]
    assert len(sentry_events) == 1


def test_an_unreadable_revio_balance_is_recorded_as_skipped_not_as_good(
    books: Transaction, revio: SandboxProcess, sentry_events: list[Any]
) -> None:
    revio.control.fail_next("account.balance", status=503, count=10)
    check = invariants.invariants_check(now=books.created_at)
    assert (check.ok, check.problems) == (True, [])
    assert len(check.skipped) == 1
    assert check.skipped[0].startswith("revio_clearing_position: not compared, Revio's balance could not")


def test_a_balance_changed_behind_the_ledgers_back_fires(
    user: User, books: Transaction, sentry_events: list[Any], caplog: Any
) -> None:
    before = metrics.read("invariant_violations")
    Balance.objects.filter(user=user).update(available=F("available") + 100)
    try:
        with caplog.at_level(logging.ERROR):
            check = invariants.invariants_check(now=books.created_at)
        with pytest.raises(CommandError):
            call_command("reconcile", "--invariants", stdout=io.StringIO(), stderr=io.StringIO())
    finally:
        Balance.objects.filter(user=user).update(available=F("available") - 100)

    assert not check.ok
    assert any("says available 7100 but its entries sum to 7000" in p for p in check.problems)
    assert metrics.read("invariant_violations") == before + 2
    assert len(sentry_events) == 2
    assert sentry_events[0][1] == "error"
    assert any("invariant monitor" in r.getMessage() for r in caplog.records)
    assert InvariantCheck.objects.filter(ok=False).count() == 2


def test_reserved_must_equal_the_open_withdrawals(
    user: User, books: Transaction, sentry_events: list[Any]
) -> None:
    Transaction.objects.filter(id=books.id).update(status="completed")  # no settle journal was posted
    try:
        check = invariants.invariants_check(now=books.created_at)
    finally:
        Transaction.objects.filter(id=books.id).update(status="processing")
    assert check.problems == [f"user {user.id} (ZAR): reserved 3000 but open withdrawals sum to 0"]
    assert len(sentry_events) == 1
