"""When a movement took effect (effective_at) beside when it was recorded, and as-of balances from entries."""

import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from wallet.accounts.models import User
from wallet.ledger import services
from wallet.ledger.models import AccountKind, Balance, Entry, Journal, JournalKind, LedgerAccount
from wallet.ledger.selectors import (
    BALANCE_FIGURE_ACCOUNTS,
    BalanceFigures,
    balance_as_of,
    entry_list_effective_between,
    ledger_problems,
)
from wallet.ledger.tests.test_ledger import funded

pytestmark = pytest.mark.django_db


class TestEffectiveAt:
    def test_defaults_to_when_it_is_recorded_on_the_journal_and_its_entries(self, user: User) -> None:
        funded(user, 5_000)
        journal = Journal.objects.get()
        assert journal.effective_at == journal.created_at
        assert {(e.effective_at, e.created_at) for e in journal.entries.all()} == {
            (journal.created_at, journal.created_at)
        }

    def test_an_earlier_time_is_kept_and_a_later_one_is_clamped_to_now(self, user: User) -> None:
        balance = funded(user, 5_000)
        paid_at = timezone.now() - timedelta(hours=5)
        late = services.deposit_credit(
            balance=balance, amount=100, transaction_id=uuid.uuid4(), effective_at=paid_at
        )
        assert late.effective_at == paid_at < late.created_at
        assert set(late.entries.values_list("effective_at", flat=True)) == {paid_at}
        ahead = services.deposit_credit(
            balance=balance,
            amount=100,
            transaction_id=uuid.uuid4(),
            effective_at=timezone.now() + timedelta(minutes=3),  # a provider clock ahead of ours
        )
        assert ahead.effective_at == ahead.created_at

    def test_a_naive_time_is_refused_before_anything_is_written(self, user: User) -> None:
        balance = funded(user, 5_000)
        journals = Journal.objects.count()
        with pytest.raises(ValueError, match="timezone-aware"):
            services.deposit_credit(
                balance=balance,
                amount=100,
                transaction_id=uuid.uuid4(),
                effective_at=timezone.now().replace(tzinfo=None),
            )
        assert Journal.objects.count() == journals

    def test_the_database_refuses_an_effect_after_the_recording(self, user: User) -> None:
        now = timezone.now()
        with pytest.raises(IntegrityError, match="effective_not_after_recorded"), transaction.atomic():
            Journal.objects.create(
                kind=JournalKind.CORRECTION, created_at=now, effective_at=now + timedelta(seconds=1)
            )

    def test_effective_at_is_append_only_too(self, user: User) -> None:
        funded(user, 5_000)
        for statement in (
            "UPDATE ledger_entries SET effective_at = effective_at - interval '1 day'",
            "UPDATE ledger_journals SET effective_at = effective_at - interval '1 day'",
        ):
            with (
                pytest.raises(IntegrityError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement)

    def test_ledger_problems_names_an_entry_whose_time_differs_from_its_journal(self, user: User) -> None:
        funded(user, 5_000)
        journal = Journal.objects.get()
        entry = journal.entries.first()
        assert entry is not None
        for amount in (1, -1):  # balanced, so only the time is wrong
            Entry.objects.create(
                journal=journal,
                account_id=entry.account_id,
                amount=amount,
                currency="ZAR",
                effective_at=journal.effective_at - timedelta(seconds=1),
            )
        problems = ledger_problems()
        assert any("took effect at" in p and "its journal at" in p for p in problems), problems


class TestBalanceAsOf:
    def test_sums_entries_effective_strictly_before_the_instant(self, user: User) -> None:
        balance = funded(user, 10_000)
        first = Journal.objects.get()
        withdrawal = uuid.uuid4()
        reserve = services.withdrawal_reserve(balance=balance, amount=4_000, transaction_id=withdrawal)

        def at(instant: Any) -> BalanceFigures:
            return balance_as_of(user_id=user.id, currency="ZAR", as_of=instant)

        assert at(first.effective_at) == BalanceFigures(currency="ZAR", available=0, reserved=0)
        assert at(first.effective_at + timedelta(microseconds=1)).available == 10_000
        assert at(reserve.effective_at + timedelta(microseconds=1)) == BalanceFigures(
            currency="ZAR", available=6_000, reserved=4_000
        )
        assert at(timezone.now() - timedelta(days=30)) == BalanceFigures(
            currency="ZAR", available=0, reserved=0
        )

    def test_a_user_without_a_wallet_has_zero(self, user: User) -> None:
        assert balance_as_of(user_id=user.id, currency="ZAR", as_of=timezone.now()) == BalanceFigures(
            currency="ZAR", available=0, reserved=0
        )

    def test_every_figure_of_the_balance_has_an_account(self) -> None:
        # A new figure on BalanceFigures (hold, debt) needs its line in BALANCE_FIGURE_ACCOUNTS.
        assert set(BALANCE_FIGURE_ACCOUNTS) == set(BalanceFigures.__dataclass_fields__) - {"currency"}
        assert set(BALANCE_FIGURE_ACCOUNTS.values()) <= set(AccountKind.values)


def bulk_history(user: User, *, entries: int, others: list[User], per_other: int) -> None:
    """`entries` deposit credits for the user spread over a year, and noise on other users' accounts."""
    services.balance_ensure(user_id=user.id, currency="ZAR")  # also creates the clearing account
    clearing = LedgerAccount.objects.get(kind=AccountKind.REVIO_CLEARING, user__isnull=True, currency="ZAR")
    now = timezone.now()
    journals: list[Journal] = []
    rows: list[Entry] = []
    for owner, count in ((user, entries), *((other, per_other) for other in others)):
        services.balance_ensure(user_id=owner.id, currency="ZAR")
        account = Balance.objects.get(user=owner).available_account_id
        for i in range(count):
            at = now - timedelta(minutes=105 * (count - i))  # ~a year for 5,000
            journal = Journal(kind=JournalKind.DEPOSIT_CREDIT, created_at=at, effective_at=at)
            journals.append(journal)
            for account_id, amount in ((account, 100), (clearing.id, -100)):
                rows.append(
                    Entry(
                        journal=journal,
                        account_id=account_id,
                        amount=amount,
                        currency="ZAR",
                        created_at=at,
                        effective_at=at,
                    )
                )
        Balance.objects.filter(user=owner).update(available=100 * count)
    Journal.objects.bulk_create(journals, batch_size=5_000)
    Entry.objects.bulk_create(rows, batch_size=5_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_entries")


def test_measure_an_as_of_read_and_a_statement_for_5000_entries(
    user: User, make_user: Any, report_figure: Any
) -> None:
    others = [make_user() for _ in range(10)]
    bulk_history(user, entries=5_000, others=others, per_other=2_000)  # 5,000 + 20,000 user entries
    mid = timezone.now() - timedelta(days=180)

    def timed(fn: Any, runs: int) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    as_of_ms = timed(lambda: balance_as_of(user_id=user.id, currency="ZAR", as_of=timezone.now()), 30)
    figures = balance_as_of(user_id=user.id, currency="ZAR", as_of=timezone.now())
    assert figures.available == 5_000 * 100
    mid_figures = balance_as_of(user_id=user.id, currency="ZAR", as_of=mid)
    assert 0 < mid_figures.available < 5_000 * 100
    year = timezone.now() - timedelta(days=366)
    listing_ms = timed(
        lambda: entry_list_effective_between(user_id=user.id, currency="ZAR", start=year, end=timezone.now()),
        5,
    )
    assert (
        len(entry_list_effective_between(user_id=user.id, currency="ZAR", start=year, end=timezone.now()))
        == 5_000
    )
    plan = Entry.objects.filter(
        account__user_id=user.id,
        account__currency="ZAR",
        account__kind__in=BALANCE_FIGURE_ACCOUNTS.values(),
        effective_at__lt=mid,
    ).explain()
    assert "ledger_entries" in plan  # one statement over the entries: the snapshot is the statement's
    report_figure(
        f"as-of balance over 5,000 entries (of 25,000): median {as_of_ms:.1f} ms; "
        f"listing a year's 5,000 entries for a statement: median {listing_ms:.0f} ms; "
        f"plan: {plan.splitlines()[-1].strip()[:80]}"
    )
    assert as_of_ms < 250  # generous for a shared CI machine; measured ~2-5 ms


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_existing_rows_and_keeps_the_ledger_append_only(user: User) -> None:
    services.balance_ensure(user_id=user.id, currency="ZAR")
    account = Balance.objects.get(user=user).available_account_id
    clearing = LedgerAccount.objects.get(kind=AccountKind.REVIO_CLEARING, user__isnull=True).id
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("ledger")
    executor.migrate([("ledger", "0002_append_only_and_balanced")])
    try:
        with transaction.atomic(), connection.cursor() as cursor:  # rows as they were before 0003
            cursor.execute(
                "INSERT INTO ledger_journals (id, kind, memo, created_at) "
                "VALUES (%s, 'deposit_credit', '', now() - interval '3 days')",
                [uuid.uuid4()],
            )
            cursor.execute("SELECT id FROM ledger_journals")
            (journal_id,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO ledger_entries (journal_id, account_id, amount, currency, created_at) "
                "VALUES (%s, %s, 700, 'ZAR', now() - interval '3 days'), "
                "(%s, %s, -700, 'ZAR', now() - interval '3 days')",
                [journal_id, account, journal_id, clearing],
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    journal = Journal.objects.get()
    assert journal.effective_at == journal.created_at
    assert all(e.effective_at == e.created_at for e in Entry.objects.all())
    assert Entry.objects.count() == 2
    assert balance_as_of(user_id=user.id, currency="ZAR", as_of=timezone.now()).available == 700
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE ledger_entries SET effective_at = effective_at - interval '1 day'")
    Balance.objects.filter(user=user).update(available=700)  # the cache the raw rows bypassed
    assert ledger_problems() == []
