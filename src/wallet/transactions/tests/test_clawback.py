"""A payout Revio pays after we failed and refunded the withdrawal is clawed back once, visibly: from
available first, the rest as debt; the withdrawal records both outcomes; an operator is alerted; the user
is emailed; a user in debt cannot withdraw. Against the sandbox over real HTTP."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sentry_sdk
from django.db import connection
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.core import metrics
from wallet.ledger.models import Journal, JournalKind
from wallet.ledger.selectors import balance_get
from wallet.notifications.models import Notification
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver, apply_payout

Fund = Callable[[User, int], Transaction]


def figures(user: User) -> tuple[int, int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved, balance.debt


def kinds(txn: Transaction) -> list[str]:
    return sorted(Journal.objects.filter(transaction_id=txn.id).values_list("kind", flat=True))


def withdraw(user: User, amount: int) -> Transaction:
    """Withdraw, and read the withdrawal again once the payouts worker has sent its payout."""
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=amount,
        currency="ZAR",
        bank_account=services.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()
    return withdrawal


def failed_then_paid(user: User, eft: EftDriver, amount: int) -> Transaction:
    """A withdrawal whose payout failed (the reservation returned), then Revio reports it COMPLETED."""
    withdrawal = withdraw(user, amount)
    eft.fail(withdrawal.provider_object_id or "")
    assert apply_payout(withdrawal) == services.Applied.CHANGED
    withdrawal.refresh_from_db()
    assert withdrawal.status == "failed"
    eft.sandbox.control.eft_payment_set_status(withdrawal.provider_object_id or "", "COMPLETED")
    return withdrawal


@pytest.fixture
def sentry_messages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Sentry at its library seam: what the wallet would have sent."""
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        sentry_sdk, "capture_message", lambda message, level=None: sent.append((message, level))
    )
    return sent


@pytest.mark.django_db
class TestLateSuccessAfterRefund:
    def test_is_clawed_back_once_from_available_and_alerted(
        self,
        user: User,
        fund: Fund,
        eft: EftDriver,
        sentry_messages: list[tuple[str, Any]],
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        fund(user, 10_000)
        metrics.reset("withdrawal_clawbacks")
        withdrawal = failed_then_paid(user, eft, 6_000)
        assert figures(user) == (10_000, 0, 0)  # refunded

        with django_capture_on_commit_callbacks(execute=True):  # the alert goes out after the commit
            assert apply_payout(withdrawal) == services.Applied.CHANGED
            for _ in range(2):
                assert apply_payout(withdrawal) == services.Applied.UNCHANGED

        withdrawal.refresh_from_db()
        assert withdrawal.status == "completed"
        assert figures(user) == (4_000, 0, 0)
        assert kinds(withdrawal) == sorted(
            [JournalKind.WITHDRAWAL_RESERVE, JournalKind.WITHDRAWAL_RELEASE, JournalKind.WITHDRAWAL_CLAWBACK]
        )
        trail = list(withdrawal.events.order_by("id").values_list("to_status", flat=True))
        assert trail == ["pending", "processing", "failed", "completed"]
        last = withdrawal.events.order_by("id").last()
        assert last is not None
        assert "paid after it was refunded" in last.detail
        assert "clawed back 6000, debt 0" in last.detail
        assert withdrawal.needs_review is True
        assert metrics.read("withdrawal_clawbacks") == 1
        assert len(sentry_messages) == 1
        assert sentry_messages[0][1] == "error"
        assert (
            Notification.objects.filter(transaction_id=withdrawal.id, event="withdrawal.clawed_back").count()
            == 1
        )
        assert not Notification.objects.filter(
            transaction_id=withdrawal.id, event="withdrawal.completed"
        ).exists()

    def test_failing_twice_still_refunds_once(self, user: User, fund: Fund, eft: EftDriver) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user, 6_000)
        eft.fail(withdrawal.provider_object_id or "")
        assert apply_payout(withdrawal) == services.Applied.CHANGED
        assert apply_payout(withdrawal) == services.Applied.UNCHANGED
        assert kinds(withdrawal) == [JournalKind.WITHDRAWAL_RELEASE, JournalKind.WITHDRAWAL_RESERVE]
        assert figures(user) == (10_000, 0, 0)

    def test_what_available_cannot_cover_becomes_debt_and_blocks_withdrawals(
        self, user: User, user_api: APIClient, fund: Fund, eft: EftDriver, revio: Any
    ) -> None:
        fund(user, 10_000)
        first = failed_then_paid(user, eft, 6_000)
        spent = withdraw(user, 8_000)  # the user withdraws the refunded money too
        eft.succeed(spent.provider_object_id or "")
        apply_payout(spent)
        assert figures(user) == (2_000, 0, 0)

        assert apply_payout(first) == services.Applied.CHANGED
        assert figures(user) == (0, 0, 4_000)
        last = first.events.order_by("id").last()
        assert last is not None
        assert "clawed back 2000, debt 4000" in last.detail

        response = user_api.post(
            "/api/v1/withdrawals", {"amount": 1_000, "bank_account": BANK}, format="json"
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "debt_outstanding"
        assert response.json()["error"]["details"] == {"debt": 4_000, "currency": "ZAR"}
        assert Transaction.objects.filter(user=user, type="withdrawal").count() == 2

        fund(user, 5_000)  # a deposit settles the debt first
        assert figures(user) == (1_000, 0, 0)
        assert (
            user_api.post(
                "/api/v1/withdrawals", {"amount": 1_000, "bank_account": BANK}, format="json"
            ).status_code
            == 201
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["paid", "failed"])
def test_the_same_late_state_applied_concurrently_moves_money_once(
    make_user: Callable[..., User], fund: Fund, eft: EftDriver, outcome: str, sentry_messages: list[Any]
) -> None:
    user = make_user()
    fund(user, 10_000)
    if outcome == "paid":
        withdrawal = failed_then_paid(user, eft, 6_000)
    else:
        withdrawal = withdraw(user, 6_000)
        eft.fail(withdrawal.provider_object_id or "")
    results: list[str] = []
    barrier = threading.Barrier(4)

    def apply() -> None:
        try:
            barrier.wait()
            results.append(apply_payout(Transaction.objects.get(id=withdrawal.id)))
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["changed", "unchanged", "unchanged", "unchanged"]
    if outcome == "paid":
        assert figures(user) == (4_000, 0, 0)
        assert (
            Journal.objects.filter(transaction_id=withdrawal.id, kind=JournalKind.WITHDRAWAL_CLAWBACK).count()
            == 1
        )
        assert len(sentry_messages) == 1
    else:
        assert figures(user) == (10_000, 0, 0)
        assert (
            Journal.objects.filter(transaction_id=withdrawal.id, kind=JournalKind.WITHDRAWAL_RELEASE).count()
            == 1
        )
