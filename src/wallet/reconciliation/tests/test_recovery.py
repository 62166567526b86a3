"""Stuck-transaction recovery against the Revio sandbox: lost webhooks, late failures, unknown outcomes."""

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core import metrics
from wallet.ledger.models import Journal, JournalKind
from wallet.ledger.selectors import balance_get
from wallet.reconciliation.models import StuckKind, StuckStatus, StuckTransaction
from wallet.reconciliation.recovery import RecoveryReport, recovery_run
from wallet.reconciliation.tests.conftest import later
from wallet.transactions import services
from wallet.transactions.errors import DepositOutcomeUnknownError
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import EftDriver

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]
Withdraw = Callable[..., Transaction]


def figures(user: User) -> tuple[int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved


def journals(txn: Transaction) -> list[str]:
    return sorted(Journal.objects.filter(transaction_id=txn.id).values_list("kind", flat=True))


def status(txn: Transaction) -> str:
    txn.refresh_from_db()
    return txn.status


class TestLostWebhooks:
    def test_a_paid_deposit_whose_webhook_never_came_is_credited_once(
        self, user: User, revio: SandboxProcess
    ) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=4_200, currency="ZAR")
        revio.control.drop_next_event(object_id=deposit.provider_object_id)
        revio.control.purchase_pay(deposit.provider_object_id or "")

        assert recovery_run(now=later(minutes=10)).checked == 0  # not stuck yet: below the threshold
        report = recovery_run(now=later(hours=1))
        again = recovery_run(now=later(days=3))

        assert status(deposit) == "completed"
        assert (report.checked, report.resolved, again.checked) == (1, 1, 0)
        assert journals(deposit) == [JournalKind.DEPOSIT_CREDIT]
        assert figures(user) == (4_200, 0)
        assert deposit.events.filter(source="reconciliation", to_status="completed").count() == 1

    def test_a_paid_out_withdrawal_whose_webhooks_never_came_is_completed(
        self, user: User, fund: Fund, withdraw: Withdraw, eft: EftDriver
    ) -> None:
        fund(user, 10_000)
        withdrawal = withdraw(user, 6_000)
        assert withdrawal.status == "processing"
        eft.succeed(withdrawal.provider_object_id or "")

        assert recovery_run(now=later(hours=2)).checked == 0  # processing for a while is normal
        recovery_run(now=later(days=2))

        assert status(withdrawal) == "completed"
        assert figures(user) == (4_000, 0)
        assert journals(withdrawal) == [JournalKind.WITHDRAWAL_RESERVE, JournalKind.WITHDRAWAL_SETTLE]

    def test_a_pending_deposit_without_a_purchase_expires_after_the_horizon(
        self, user: User, revio: SandboxProcess
    ) -> None:
        revio.control.timeout_after_processing("purchases.create", seconds=4)
        with pytest.raises(DepositOutcomeUnknownError):
            services.deposit_create(user_id=user.id, email=user.email, amount=2_000, currency="ZAR")
        deposit = Transaction.objects.get(type="deposit")
        assert deposit.provider_object_id is None

        recovery_run(now=later(hours=1))
        assert status(deposit) == "pending"  # still inside the purchase's expiry horizon
        recovery_run(now=later(hours=7))
        assert status(deposit) == "expired"
        assert journals(deposit) == []


class TestPayoutFailedHoursLater:
    def test_is_refunded_once_however_often_recovery_runs(
        self, user: User, fund: Fund, withdraw: Withdraw, eft: EftDriver
    ) -> None:
        fund(user, 9_000)
        withdrawal = withdraw(user, 5_000, "62000000002")  # ...0002: accepted, then the bank rejects it
        assert withdrawal.status == "processing"
        assert figures(user) == (4_000, 5_000)
        eft.fail(withdrawal.provider_object_id or "")

        first = recovery_run(now=later(days=2))
        second = recovery_run(now=later(days=2))
        third = recovery_run(now=later(days=5))

        assert status(withdrawal) == "failed"
        assert (first.resolved, second.checked, third.checked) == (1, 0, 0)
        assert figures(user) == (9_000, 0)
        assert journals(withdrawal) == [JournalKind.WITHDRAWAL_RELEASE, JournalKind.WITHDRAWAL_RESERVE]

    def test_a_bank_return_after_success_recredits_once(
        self, user: User, fund: Fund, withdraw: Withdraw, eft: EftDriver
    ) -> None:
        fund(user, 9_000)
        withdrawal = withdraw(user, 5_000, "62000000003")
        payout_id = withdrawal.provider_object_id or ""
        eft.succeed(payout_id)
        recovery_run(now=later(days=2))
        assert status(withdrawal) == "completed"
        eft.bank_return(payout_id)

        # A completed withdrawal is not watched; the provider reconciliation reports the return instead,
        # and applying Revio's state (as the webhook would) returns the money once.
        services.withdrawal_apply_provider_state(
            withdrawal_id=withdrawal.id,
            payout=eft.get(payout_id),
            source="reconciliation",
        )
        services.withdrawal_apply_provider_state(
            withdrawal_id=withdrawal.id,
            payout=eft.get(payout_id),
            source="reconciliation",
        )
        assert status(withdrawal) == "returned"
        assert figures(user) == (9_000, 0)


class TestPayoutCreationTimedOut:
    def test_the_payout_is_found_by_reference_never_sent_twice_and_converges(
        self, user: User, fund: Fund, withdraw: Withdraw, eft: EftDriver
    ) -> None:
        fund(user, 9_000)
        eft.create_times_out(seconds=4)
        withdrawal = withdraw(user, 4_000)
        assert withdrawal.status == "pending"
        assert withdrawal.payout_requested_at is not None

        # The payouts sweep never re-sends a request whose outcome is unknown.
        assert services.withdrawals_send_queued(now=later(hours=1)) == {}
        recovery_run(now=later(minutes=15))
        assert status(withdrawal) == "processing"
        payouts = eft.find(str(withdrawal.id))
        assert len(payouts) == 1
        assert withdrawal.provider_object_id == payouts[0].id

        eft.succeed(payouts[0].id)
        recovery_run(now=later(days=2))
        assert status(withdrawal) == "completed"
        assert len(eft.find(str(withdrawal.id))) == 1
        assert withdrawal.payout_attempts == 1
        assert figures(user) == (5_000, 0)

    def test_no_payout_at_revio_fails_it_only_when_the_lookup_is_authoritative(
        self, user: User, fund: Fund, withdraw: Withdraw, eft: EftDriver, settings: Any
    ) -> None:
        fund(user, 9_000)
        eft.fail_next_create(status=500)  # outcome unknown; nothing was created
        withdrawal = withdraw(user, 4_000)
        assert withdrawal.status == "pending"

        settings.RECONCILIATION_PAYOUT_LOOKUP_AUTHORITATIVE = False
        recovery_run(now=later(minutes=20))
        assert status(withdrawal) == "pending"
        assert figures(user) == (5_000, 4_000)  # an empty lookup that is not trusted proves nothing

        settings.RECONCILIATION_PAYOUT_LOOKUP_AUTHORITATIVE = True
        recovery_run(now=later(minutes=30))  # the next check, after the 5-minute back-off
        assert status(withdrawal) == "failed"
        assert figures(user) == (9_000, 0)
        assert eft.find(str(withdrawal.id)) == []

    def test_without_a_lookup_it_becomes_an_operator_task_and_no_money_moves(
        self,
        user: User,
        fund: Fund,
        withdraw: Withdraw,
        revio: SandboxProcess,
        eft: EftDriver,
        caplog: Any,
    ) -> None:
        fund(user, 9_000)
        eft.create_times_out(seconds=4)
        withdrawal = withdraw(user, 4_000)
        eft.fail_next_lookup(status=405, count=50)  # like real Revio: no lookup
        before = metrics.read("reconciliation_operator_tasks")

        recovery_run(now=later(minutes=20))
        row = StuckTransaction.objects.get(transaction_id=withdrawal.id)
        assert (row.kind, row.status) == (StuckKind.WITHDRAWAL_UNKNOWN, StuckStatus.WATCHING)
        with caplog.at_level(logging.ERROR):
            recovery_run(now=later(hours=25))

        row.refresh_from_db()
        assert row.status == StuckStatus.OPERATOR
        assert "lookup unavailable" in row.operator_reason
        withdrawal.refresh_from_db()
        assert (withdrawal.status, withdrawal.needs_review) == ("pending", True)
        assert figures(user) == (5_000, 4_000)  # neither refunded nor paid again
        assert metrics.read("reconciliation_operator_tasks") == before + 1
        assert any("needs an operator" in r.getMessage() for r in caplog.records)
        assert recovery_run(now=later(days=3)).checked == 0  # an operator task is not re-checked
        revio.control.clear_faults()
        assert len(eft.find(str(withdrawal.id))) == 1


class TestBackoffAndAlerts:
    def test_checks_back_off_and_a_long_stuck_deposit_alerts_once(
        self, user: User, revio: SandboxProcess, caplog: Any
    ) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=2_000, currency="ZAR")
        start = later(hours=1)
        before = metrics.read("reconciliation_stuck_alerts")

        assert recovery_run(now=start).checked == 1
        assert recovery_run(now=start + _minutes(4)).checked == 0  # first back-off: 5 minutes
        assert recovery_run(now=start + _minutes(6)).checked == 1
        assert recovery_run(now=start + _minutes(50)).checked == 0  # second back-off: 1 hour
        assert recovery_run(now=start + _minutes(70)).checked == 1
        assert recovery_run(now=start + _minutes(60 * 20)).checked == 0  # then daily
        with caplog.at_level(logging.ERROR):
            assert recovery_run(now=start + _minutes(60 * 26)).alerts == 1
            assert recovery_run(now=start + _minutes(60 * 51)).alerts == 0  # alerted once

        row = StuckTransaction.objects.get(transaction_id=deposit.id)
        assert (row.checks, row.status) == (5, StuckStatus.WATCHING)
        assert row.alerted_at is not None
        assert metrics.read("reconciliation_stuck_alerts") == before + 1
        assert any("stuck since" in r.getMessage() for r in caplog.records)
        assert status(deposit) == "pending"


def _minutes(n: float) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_recovery_runs_apply_each_transaction_once(
    user: User, fund: Fund, withdraw: Withdraw, revio: SandboxProcess, eft: EftDriver
) -> None:
    fund(user, 20_000)
    deposits = [
        services.deposit_create(user_id=user.id, email=user.email, amount=1_000 + i, currency="ZAR")
        for i in range(6)
    ]
    for deposit in deposits:
        revio.control.purchase_pay(deposit.provider_object_id or "")
    failing = withdraw(user, 5_000, "62000000002")
    eft.fail(failing.provider_object_id or "")
    now = later(days=2)

    reports: list[RecoveryReport] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            reports.append(recovery_run(now=now))
        except Exception as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(report.checked for report in reports) == 7  # each stuck row checked by exactly one run
    assert StuckTransaction.objects.filter(status=StuckStatus.RESOLVED).count() == 7
    for deposit in deposits:
        assert journals(deposit) == [JournalKind.DEPOSIT_CREDIT]
    assert journals(failing) == [JournalKind.WITHDRAWAL_RELEASE, JournalKind.WITHDRAWAL_RESERVE]
    assert figures(user) == (20_000 + sum(1_000 + i for i in range(6)), 0)


class TestRetiredGatewayRoute:
    """Withdrawals sent by the gateway's /payouts/ before it was retired: nothing can read them back."""

    @pytest.mark.parametrize("state", ["processing", "unknown"])
    def test_an_open_one_becomes_an_operator_task_and_no_money_moves(
        self, user: User, fund: Fund, withdraw: Withdraw, eft: EftDriver, state: str, settings: Any
    ) -> None:
        settings.RECONCILIATION_PAYOUT_LOOKUP_AUTHORITATIVE = True  # an empty lookup would refund an EFT one
        fund(user, 9_000)
        if state == "unknown":
            eft.fail_next_create(status=500)
        withdrawal = withdraw(user, 4_000)
        Transaction.objects.filter(id=withdrawal.id).update(payout_route="gateway")

        recovery_run(now=later(days=2))

        row = StuckTransaction.objects.get(transaction_id=withdrawal.id)
        assert row.status == StuckStatus.OPERATOR
        assert "retired gateway payout route" in row.operator_reason
        withdrawal.refresh_from_db()
        assert (withdrawal.status, withdrawal.needs_review) == (
            "processing" if state == "processing" else "pending",
            True,
        )
        assert figures(user) == (5_000, 4_000)  # neither refunded nor paid again
        assert len(eft.find(str(withdrawal.id))) == (1 if state == "processing" else 0)
