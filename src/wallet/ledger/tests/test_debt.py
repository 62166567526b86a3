"""Debt on the ledger, on real PostgreSQL: a debit larger than the available balance becomes a receivable
(never a negative balance), every credit settles it first, and it is posted once per (transaction, kind)."""

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from wallet.accounts.models import User
from wallet.core.db import READ_COMMITTED, run_in_retrying_transaction
from wallet.ledger import services
from wallet.ledger.errors import InsufficientFundsError
from wallet.ledger.models import AccountKind, Balance, Journal, JournalKind
from wallet.ledger.selectors import balance_as_of, balance_get, ledger_problems
from wallet.ledger.tests.test_ledger import funded


def _locked(user: User) -> Balance:
    return services.balance_lock(user_id=user.id, currency="ZAR")


def _debit(user: User, amount: int, *, allow_debt: bool, txn: uuid.UUID | None = None) -> services.Debit:
    def run() -> services.Debit:
        return services.user_debit(
            balance=_locked(user),
            amount=amount,
            kind=JournalKind.DEPOSIT_CHARGEBACK,
            transaction_id=txn or uuid.uuid4(),
            allow_debt=allow_debt,
        )

    return run_in_retrying_transaction(
        run, lock_keys=[services.balance_lock_key(user_id=user.id, currency="ZAR")], isolation=READ_COMMITTED
    )


@pytest.mark.django_db
class TestDebt:
    def test_a_debit_within_the_balance_takes_available_only(self, user: User) -> None:
        funded(user, 10_000)
        debit = _debit(user, 4_000, allow_debt=True)
        assert (debit.from_available, debit.to_debt) == (4_000, 0)
        figures = balance_get(user_id=user.id, currency="ZAR")
        assert (figures.available, figures.debt) == (6_000, 0)
        amounts = {e.account.kind: e.amount for e in debit.journal.entries.select_related("account")}
        assert amounts == {AccountKind.USER_AVAILABLE: -4_000, AccountKind.REVIO_CLEARING: 4_000}
        assert ledger_problems() == []

    def test_a_debit_past_the_balance_becomes_debt_not_a_negative_balance(self, user: User) -> None:
        funded(user, 3_000)
        debit = _debit(user, 10_000, allow_debt=True)
        assert (debit.from_available, debit.to_debt) == (3_000, 7_000)
        figures = balance_get(user_id=user.id, currency="ZAR")
        assert (figures.available, figures.reserved, figures.debt) == (0, 0, 7_000)
        amounts = {e.account.kind: e.amount for e in debit.journal.entries.select_related("account")}
        assert amounts == {
            AccountKind.USER_AVAILABLE: -3_000,
            AccountKind.USER_RECEIVABLE: -7_000,
            AccountKind.REVIO_CLEARING: 10_000,
        }
        assert ledger_problems() == []
        # The as-of balance (statements) shows the debt as the positive figure owed.
        from django.utils import timezone

        assert balance_as_of(user_id=user.id, currency="ZAR", as_of=timezone.now()).debt == 7_000

    def test_without_permission_to_owe_a_short_debit_is_refused_and_changes_nothing(self, user: User) -> None:
        funded(user, 3_000)
        journals_before = Journal.objects.count()
        with pytest.raises(InsufficientFundsError):
            _debit(user, 3_001, allow_debt=False)
        assert Journal.objects.count() == journals_before
        figures = balance_get(user_id=user.id, currency="ZAR")
        assert (figures.available, figures.debt) == (3_000, 0)

    def test_every_credit_settles_debt_first(self, user: User) -> None:
        funded(user, 1_000)
        _debit(user, 5_000, allow_debt=True)  # owes 4,000
        balance = funded(user, 2_500)  # a deposit: all of it settles debt
        assert (balance.available, balance.debt) == (0, 1_500)
        balance = funded(user, 4_000)  # settles the rest, 2,500 left over
        assert (balance.available, balance.debt) == (2_500, 0)
        assert ledger_problems() == []

    def test_a_released_reservation_and_a_bank_return_settle_debt_too(self, user: User) -> None:
        balance = funded(user, 5_000)
        withdrawal = uuid.uuid4()
        with transaction.atomic():
            services.withdrawal_reserve(balance=_locked(user), amount=5_000, transaction_id=withdrawal)
        _debit(user, 2_000, allow_debt=True)  # available is 0: all of it is debt
        with transaction.atomic():
            services.withdrawal_release(balance=_locked(user), amount=5_000, transaction_id=withdrawal)
        balance = Balance.objects.get(id=balance.id)
        assert (balance.available, balance.reserved, balance.debt) == (3_000, 0, 0)
        assert ledger_problems() == []

    def test_a_debit_is_posted_once_per_transaction_and_kind(self, user: User) -> None:
        funded(user, 10_000)
        txn = uuid.uuid4()
        _debit(user, 1_000, allow_debt=True, txn=txn)
        with pytest.raises(IntegrityError):
            _debit(user, 1_000, allow_debt=True, txn=txn)
        assert balance_get(user_id=user.id, currency="ZAR").available == 9_000
        assert ledger_problems() == []

    def test_a_credit_back_restores_what_the_debit_took(self, user: User) -> None:
        funded(user, 2_000)
        txn = uuid.uuid4()
        _debit(user, 5_000, allow_debt=True, txn=txn)

        def restore() -> None:
            services.user_credit(
                balance=_locked(user),
                amount=5_000,
                kind=JournalKind.DEPOSIT_REFUND_REVERSED,
                transaction_id=txn,
            )

        run_in_retrying_transaction(restore, isolation=READ_COMMITTED)
        figures = balance_get(user_id=user.id, currency="ZAR")
        assert (figures.available, figures.debt) == (2_000, 0)
        assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_and_credits_keep_debt_and_balance_exact(user: User) -> None:
    """12 debits of 1,000 (debt allowed) race 6 credits of 500 on a balance of 4,000: whatever the order,
    the final position is 4,000 - 12,000 + 3,000 = -5,000, shown as available 0 and debt 5,000."""
    funded(user, 4_000)
    errors: list[BaseException] = []
    barrier = threading.Barrier(18)

    def debit() -> None:
        try:
            barrier.wait()
            _debit(user, 1_000, allow_debt=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def credit() -> None:
        try:
            barrier.wait()
            funded(user, 500)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=debit) for _ in range(12)] + [
        threading.Thread(target=credit) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    figures = balance_get(user_id=user.id, currency="ZAR")
    assert figures.available - figures.debt == -5_000
    assert figures.available >= 0
    assert figures.debt >= 0
    assert ledger_problems() == []
