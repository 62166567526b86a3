"""The ledger's guarantees, on real PostgreSQL: balanced journals, append-only rows, locked balances."""

import threading
import uuid
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from wallet.accounts.models import User
from wallet.core.db import run_in_retrying_transaction
from wallet.ledger import services
from wallet.ledger.errors import InsufficientFundsError, UnbalancedJournalError
from wallet.ledger.models import AccountKind, Balance, Entry, Journal, JournalKind, LedgerAccount
from wallet.ledger.selectors import balance_get, ledger_problems


def funded(user: User, amount: int, currency: str = "ZAR") -> Balance:
    services.balance_ensure(user_id=user.id, currency=currency)

    def credit() -> Balance:
        balance = services.balance_lock(user_id=user.id, currency=currency)
        services.deposit_credit(balance=balance, amount=amount, transaction_id=uuid.uuid4())
        return balance

    return run_in_retrying_transaction(
        credit, lock_keys=[services.balance_lock_key(user_id=user.id, currency=currency)]
    )


@pytest.mark.django_db
class TestBalanceMovement:
    """The one way other apps move money: ensure, queue on the advisory lock, lock the row, run."""

    def test_a_credit_makes_the_balance_first_and_returns_what_the_function_returns(self, user: User) -> None:
        def credit(balance: services.LockedBalance) -> int:
            services.deposit_credit(balance=balance, amount=2_500, transaction_id=uuid.uuid4())
            return balance.available

        assert services.balance_movement(user_id=user.id, currency="ZAR", fn=credit) == 2_500
        assert balance_get(user_id=user.id, currency="ZAR").available == 2_500
        assert ledger_problems() == []

    def test_a_balance_never_funded_is_refused_without_creating_it(self, user: User) -> None:
        ran: list[bool] = []
        with pytest.raises(InsufficientFundsError) as raised:
            services.balance_movement(
                user_id=user.id,
                currency="ZAR",
                fn=lambda balance: ran.append(True),
                create=False,
                requested=700,
            )
        assert raised.value.details == {"available": 0, "requested": 700, "currency": "ZAR"}
        assert ran == []
        assert not Balance.objects.filter(user_id=user.id).exists()

    def test_an_error_in_the_function_rolls_the_movement_back(self, user: User) -> None:
        funded(user, 1_000)

        def reserve_then_fail(balance: services.LockedBalance) -> None:
            services.withdrawal_reserve(balance=balance, amount=400, transaction_id=uuid.uuid4())
            raise RuntimeError("after the journal")

        with pytest.raises(RuntimeError):
            services.balance_movement(user_id=user.id, currency="ZAR", fn=reserve_then_fail, create=False)
        figures = balance_get(user_id=user.id, currency="ZAR")
        assert (figures.available, figures.reserved) == (1_000, 0)
        assert Journal.objects.filter(kind=JournalKind.WITHDRAWAL_RESERVE).count() == 0

    def test_a_movement_takes_only_the_balance_it_locked(self, user: User) -> None:
        class Lookalike:
            user_id, currency, available, reserved, debt = user.id, "ZAR", 10**9, 0, 0

        with pytest.raises(TypeError):
            services.withdrawal_reserve(balance=Lookalike(), amount=1, transaction_id=uuid.uuid4())


@pytest.mark.django_db
class TestPostings:
    def test_deposit_credit_is_a_balanced_journal_and_updates_the_cache(self, user: User) -> None:
        funded(user, 15_000)
        journal = Journal.objects.get(kind=JournalKind.DEPOSIT_CREDIT)
        amounts = {e.account.kind: e.amount for e in journal.entries.select_related("account")}
        assert amounts == {AccountKind.USER_AVAILABLE: 15_000, AccountKind.REVIO_CLEARING: -15_000}
        assert balance_get(user_id=user.id, currency="ZAR").available == 15_000
        assert ledger_problems() == []

    def test_reserve_release_settle_return_keep_the_books_balanced(self, user: User) -> None:
        balance = funded(user, 10_000)
        first, second = uuid.uuid4(), uuid.uuid4()
        services.withdrawal_reserve(balance=balance, amount=3_000, transaction_id=first)
        services.withdrawal_reserve(balance=balance, amount=2_000, transaction_id=second)
        assert (balance.available, balance.reserved) == (5_000, 5_000)
        services.withdrawal_release(balance=balance, amount=3_000, transaction_id=first)
        services.withdrawal_settle(balance=balance, amount=2_000, transaction_id=second)
        assert (balance.available, balance.reserved) == (8_000, 0)
        services.withdrawal_return(
            balance=balance, amount=2_000, transaction_id=second, reason="account closed"
        )
        figures = balance_get(user_id=user.id, currency="ZAR")
        assert (figures.available, figures.reserved) == (10_000, 0)
        assert ledger_problems() == []

    def test_reserving_more_than_available_changes_nothing(self, user: User) -> None:
        balance = funded(user, 1_000)
        entries_before = Entry.objects.count()
        with pytest.raises(InsufficientFundsError) as raised:
            services.withdrawal_reserve(balance=balance, amount=1_001, transaction_id=uuid.uuid4())
        assert raised.value.details == {"available": 1_000, "requested": 1_001, "currency": "ZAR"}
        assert Entry.objects.count() == entries_before
        assert balance_get(user_id=user.id, currency="ZAR").available == 1_000

    def test_unbalanced_lines_are_refused_before_touching_the_database(self, user: User) -> None:
        services.balance_ensure(user_id=user.id, currency="ZAR")
        account = LedgerAccount.objects.filter(user=user).first()
        assert account is not None
        with pytest.raises(UnbalancedJournalError):
            services.journal_post(
                kind=JournalKind.CORRECTION,
                currency="ZAR",
                lines=[services.Line(account.id, 5), services.Line(account.id, -4)],
            )
        with pytest.raises(UnbalancedJournalError):
            services.journal_post(
                kind=JournalKind.CORRECTION, currency="ZAR", lines=[services.Line(account.id, 0)]
            )
        assert Journal.objects.count() == 0

    def test_a_transaction_posts_each_kind_of_journal_once(self, user: User) -> None:
        balance = funded(user, 5_000)
        txn = uuid.uuid4()
        services.withdrawal_reserve(balance=balance, amount=100, transaction_id=txn)
        with pytest.raises(IntegrityError), transaction.atomic():
            services.withdrawal_reserve(balance=balance, amount=100, transaction_id=txn)

    def test_balances_cannot_go_negative_even_bypassing_the_service(self, user: User) -> None:
        funded(user, 100)
        with pytest.raises(IntegrityError), transaction.atomic():
            Balance.objects.filter(user=user).update(available=-1)


@pytest.mark.django_db
class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE ledger_entries SET amount = amount + 1",
            "DELETE FROM ledger_entries",
            "UPDATE ledger_journals SET memo = 'edited'",
            "DELETE FROM ledger_journals",
        ],
    )
    def test_the_database_refuses_updates_and_deletes(self, user: User, statement: str) -> None:
        funded(user, 700)
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        assert sorted(Entry.objects.values_list("amount", flat=True)) == [-700, 700]


@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_journal_written_directly_fails_at_commit(user: User) -> None:
    services.balance_ensure(user_id=user.id, currency="ZAR")
    account = LedgerAccount.objects.filter(user=user, kind=AccountKind.USER_AVAILABLE).get()
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        now = timezone.now()
        journal = Journal.objects.create(kind=JournalKind.CORRECTION, created_at=now, effective_at=now)
        Entry.objects.create(
            journal=journal, account=account, amount=500, currency="ZAR", created_at=now, effective_at=now
        )
    assert Entry.objects.count() == 0
    assert Journal.objects.count() == 0


@pytest.mark.django_db
class TestLedgerVerify:
    def test_passes_on_healthy_books(self, user: User) -> None:
        funded(user, 1_234)
        out = StringIO()
        call_command("ledger_verify", stdout=out)
        assert "ok" in out.getvalue()

    def test_names_a_cached_balance_that_drifted_from_its_entries(self, user: User) -> None:
        funded(user, 1_234)
        Balance.objects.filter(user=user).update(available=1_300)  # a corrupted cache row
        err = StringIO()
        with pytest.raises(CommandError, match="1 problem"):
            call_command("ledger_verify", stderr=err)
        assert f"user {user.id}" in err.getvalue()
        assert "says available 1300 but its entries sum to 1234" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_overdraw(make_user: Callable[..., User], report_figure: Any) -> None:
    """30 threads each try to reserve 400 from a balance of 5,000: exactly 12 succeed."""
    user = make_user()
    funded(user, 5_000)
    outcomes: list[str] = []
    barrier = threading.Barrier(30)

    def reserve() -> None:
        try:
            barrier.wait()

            def work() -> None:
                balance = services.balance_lock(user_id=user.id, currency="ZAR")
                services.withdrawal_reserve(balance=balance, amount=400, transaction_id=uuid.uuid4())

            run_in_retrying_transaction(
                work, lock_keys=[services.balance_lock_key(user_id=user.id, currency="ZAR")]
            )
            outcomes.append("ok")
        except InsufficientFundsError:
            outcomes.append("insufficient")
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report_figure(
        f"concurrent reservations on one balance (SERIALIZABLE + row lock): 30 tried, "
        f"{outcomes.count('ok')} reserved, overdrafts 0 by CHECK constraint"
    )
    assert outcomes.count("ok") == 12
    assert outcomes.count("insufficient") == 18
    figures = balance_get(user_id=user.id, currency="ZAR")
    assert (figures.available, figures.reserved) == (200, 4_800)
    assert ledger_problems() == []
