"""Ledger reads, and the verification that the books balance."""

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, router
from django.db.models import QuerySet, Sum

from wallet.core.cache import read_through
from wallet.ledger.models import AccountKind, Balance, Entry, JournalKind


@dataclass(frozen=True)
class BalanceFigures:
    currency: str
    available: int
    reserved: int
    debt: int = 0


# Each figure of a user's balance is the sum of one ledger account's entries: a new account (a hold) is
# one line here, plus its field on BalanceFigures. As-of balances and statements read this map.
BALANCE_FIGURE_ACCOUNTS: dict[str, str] = {
    "available": AccountKind.USER_AVAILABLE,
    "reserved": AccountKind.USER_RESERVED,
    "debt": AccountKind.USER_RECEIVABLE,
}
# A figure shown the other way round from its account's sum: debt is what the user owes, positive, while
# the receivable account's entries are negative when they owe (models.py's sign convention).
_FIGURE_SIGN: dict[str, int] = {"debt": -1}
BALANCE_FIGURES: tuple[str, ...] = tuple(BALANCE_FIGURE_ACCOUNTS)
_FIGURE_OF_KIND = {kind: figure for figure, kind in BALANCE_FIGURE_ACCOUNTS.items()}


@dataclass(frozen=True)
class StatementEntry:
    """One ledger entry on a user's account, as a statement shows it."""

    entry_id: int
    journal_id: UUID
    transaction_id: UUID | None
    type: str
    description: str
    figure: str  # which figure of the balance it moves: "available", "reserved", ...
    amount: int
    currency: str
    effective_at: datetime
    recorded_at: datetime


logger = logging.getLogger(__name__)


def balance_cache_generation_key(*, user_id: UUID, currency: str) -> str:
    return f"balance-gen:{user_id}:{currency}"


def _balance_cache_key(*, user_id: UUID, currency: str) -> str:
    return f"balance:{user_id}:{currency}"


def _balance_get_cached(*, user_id: UUID, currency: str) -> BalanceFigures:
    return read_through(
        key=_balance_cache_key(user_id=user_id, currency=currency),
        generation_key=balance_cache_generation_key(user_id=user_id, currency=currency),
        timeout=settings.BALANCE_CACHE_SECONDS,
        fill=lambda: balance_get(user_id=user_id, currency=currency),
    )


def balance_get(*, user_id: UUID, currency: str, cached: bool = False) -> BalanceFigures:
    """The user's balance. `cached=True` is for display only (GET /api/v1/balance): it may come from the
    Redis cache, invalidated when a change commits. Money decisions lock the row instead (balance_lock).
    """
    if cached:
        return _balance_get_cached(user_id=user_id, currency=currency)
    row = (
        Balance.objects.filter(user_id=user_id, currency=currency)
        .values("available", "reserved", "debt")
        .first()
    )
    if row is None:
        return BalanceFigures(currency=currency, available=0, reserved=0)
    return BalanceFigures(currency=currency, **row)


def balance_as_of(*, user_id: UUID, currency: str, as_of: datetime) -> BalanceFigures:
    """The user's balance as the books now say it stood at `as_of`: every entry that took effect before
    it (half-open: an entry effective exactly at `as_of` is not yet in). Summed from the entries in one
    statement, so it is one snapshot even while money moves; never from the cached figures.
    """
    rows = (
        Entry.objects.filter(
            account__user_id=user_id,
            account__currency=currency,
            account__kind__in=BALANCE_FIGURE_ACCOUNTS.values(),
            effective_at__lt=as_of,
        )
        .values("account__kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    totals = {row["account__kind"]: row["total"] for row in rows}
    figures = {
        figure: _FIGURE_SIGN.get(figure, 1) * int(totals.get(kind) or 0)
        for figure, kind in BALANCE_FIGURE_ACCOUNTS.items()
    }
    return BalanceFigures(currency=currency, **figures)


def entry_list_effective_between(
    *, user_id: UUID, currency: str, start: datetime, end: datetime
) -> list[StatementEntry]:
    """The user's entries that took effect in [start, end), in the order they took effect."""
    labels = {kind: str(label) for kind, label in JournalKind.choices}
    rows = (
        Entry.objects.filter(
            account__user_id=user_id,
            account__currency=currency,
            account__kind__in=BALANCE_FIGURE_ACCOUNTS.values(),
            effective_at__gte=start,
            effective_at__lt=end,
        )
        .order_by("effective_at", "id")
        .values_list(
            "id",
            "journal_id",
            "journal__transaction_id",
            "journal__kind",
            "journal__memo",
            "account__kind",
            "amount",
            "currency",
            "effective_at",
            "created_at",
        )
    )
    return [
        StatementEntry(
            entry_id=entry_id,
            journal_id=journal_id,
            transaction_id=transaction_id,
            type=kind,
            description=f"{labels.get(kind, kind)}: {memo}" if memo else labels.get(kind, kind),
            figure=_FIGURE_OF_KIND[account_kind],
            amount=_FIGURE_SIGN.get(_FIGURE_OF_KIND[account_kind], 1) * amount,
            currency=entry_currency,
            effective_at=effective_at,
            recorded_at=recorded_at,
        )
        for (
            entry_id,
            journal_id,
            transaction_id,
            kind,
            memo,
            account_kind,
            amount,
            entry_currency,
            effective_at,
            recorded_at,
        ) in rows
    ]


def entry_list_for_user(*, user_id: UUID, currency: str | None = None) -> QuerySet[Entry]:
    """The entries behind a user's balance, newest first, with their journal (kind, transaction)."""
    entries = Entry.objects.filter(account__user_id=user_id).select_related("journal", "account")
    if currency:
        entries = entries.filter(currency=currency)
    return entries.order_by("-id")


def ledger_problems() -> list[str]:
    """Every way the books fail to balance, one sentence each; empty when all is well."""
    problems: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT j.id, j.kind, e.currency, SUM(e.amount), COUNT(*)
            FROM ledger_journals j JOIN ledger_entries e ON e.journal_id = j.id
            GROUP BY j.id, j.kind, e.currency
            HAVING SUM(e.amount) <> 0 OR COUNT(*) < 2
            """
        )
        for journal_id, kind, currency, total, count in cursor.fetchall():
            problems.append(
                f"journal {journal_id} ({kind}) does not balance in {currency}: "
                f"sum {total} over {count} entries"
            )
        cursor.execute(
            """
            SELECT j.id, j.kind FROM ledger_journals j
            WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.journal_id = j.id)
            """
        )
        for journal_id, kind in cursor.fetchall():
            problems.append(f"journal {journal_id} ({kind}) has no entries")
        cursor.execute(
            """
            SELECT e.id, e.effective_at, j.effective_at FROM ledger_entries e
            JOIN ledger_journals j ON j.id = e.journal_id WHERE e.effective_at <> j.effective_at
            """
        )
        for entry_id, entry_effective, journal_effective in cursor.fetchall():
            problems.append(
                f"entry {entry_id} took effect at {entry_effective}, its journal at {journal_effective}"
            )
        cursor.execute(
            """
            SELECT e.id, e.currency, a.currency FROM ledger_entries e
            JOIN ledger_accounts a ON a.id = e.account_id WHERE e.currency <> a.currency
            """
        )
        for entry_id, entry_currency, account_currency in cursor.fetchall():
            problems.append(f"entry {entry_id} is in {entry_currency} on a {account_currency} account")
        cursor.execute(
            """
            SELECT b.id, b.user_id, b.currency, b.available, b.reserved, b.debt,
                   COALESCE((SELECT SUM(amount) FROM ledger_entries e
                             WHERE e.account_id = b.available_account_id), 0),
                   COALESCE((SELECT SUM(amount) FROM ledger_entries e
                             WHERE e.account_id = b.reserved_account_id), 0),
                   COALESCE((SELECT -SUM(amount) FROM ledger_entries e
                             WHERE e.account_id = b.receivable_account_id), 0)
            FROM balances b
            """
        )
        for (
            balance_id,
            user_id,
            currency,
            available,
            reserved,
            debt,
            available_sum,
            reserved_sum,
            debt_sum,
        ) in cursor.fetchall():
            if debt != debt_sum:
                problems.append(
                    f"balance {balance_id} (user {user_id}, {currency}) says debt {debt} "
                    f"but its receivable entries sum to {-debt_sum}"
                )
            if available != available_sum:
                problems.append(
                    f"balance {balance_id} (user {user_id}, {currency}) says available {available} "
                    f"but its entries sum to {available_sum}"
                )
            if reserved != reserved_sum:
                problems.append(
                    f"balance {balance_id} (user {user_id}, {currency}) says reserved {reserved} "
                    f"but its entries sum to {reserved_sum}"
                )
        cursor.execute(
            "SELECT currency, SUM(amount) FROM ledger_entries GROUP BY currency HAVING SUM(amount) <> 0"
        )
        for currency, total in cursor.fetchall():
            problems.append(f"all entries in {currency} sum to {total}, not zero")
    return problems


def ledger_read_alias() -> str:
    """The database the ledger's reads go to (a replica, if the router sends them there)."""
    return router.db_for_read(Balance) or "default"
