"""Ledger reads, and the verification that the books balance."""

import logging
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet

from wallet.ledger.models import Balance, Entry


@dataclass(frozen=True)
class BalanceFigures:
    currency: str
    available: int
    reserved: int


logger = logging.getLogger(__name__)


def balance_cache_generation_key(*, user_id: UUID, currency: str) -> str:
    return f"balance-gen:{user_id}:{currency}"


def _balance_cache_key(*, user_id: UUID, currency: str) -> str:
    return f"balance:{user_id}:{currency}"


def _balance_get_cached(*, user_id: UUID, currency: str) -> BalanceFigures:
    # One round trip (MGET) reads the generation and the cached figures, which carry the generation they
    # were filled under; they are served only if it is still current. The fill reads the generation before
    # the database, so a fill that raced a commit carries the old generation, which the commit's
    # invalidation already moved past: it is never served.
    generation_key = balance_cache_generation_key(user_id=user_id, currency=currency)
    key = _balance_cache_key(user_id=user_id, currency=currency)
    try:
        found = cache.get_many([generation_key, key])
    except Exception:  # the cache is an optimisation: without Redis, read the database
        logger.warning("balance cache unavailable", exc_info=True)
        return balance_get(user_id=user_id, currency=currency)
    generation = int(found.get(generation_key) or 0)
    cached = found.get(key)
    if cached is not None and cached[0] == generation:
        return BalanceFigures(currency=currency, available=cached[1], reserved=cached[2])
    figures = balance_get(user_id=user_id, currency=currency)
    try:
        cache.set(
            key, (generation, figures.available, figures.reserved), timeout=settings.BALANCE_CACHE_SECONDS
        )
    except Exception:
        logger.warning("balance cache not filled", exc_info=True)
    return figures


def balance_get(*, user_id: UUID, currency: str, cached: bool = False) -> BalanceFigures:
    """The user's balance. `cached=True` is for display only (GET /api/v1/balance): it may come from the
    Redis cache, invalidated when a change commits. Money decisions lock the row instead (balance_lock).
    """
    # Inside a transaction the figure may be uncommitted: never cache it (nor serve it from the cache).
    if cached and settings.BALANCE_CACHE_SECONDS > 0 and not connection.in_atomic_block:
        return _balance_get_cached(user_id=user_id, currency=currency)
    row = Balance.objects.filter(user_id=user_id, currency=currency).values("available", "reserved").first()
    if row is None:
        return BalanceFigures(currency=currency, available=0, reserved=0)
    return BalanceFigures(currency=currency, available=row["available"], reserved=row["reserved"])


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
            SELECT e.id, e.currency, a.currency FROM ledger_entries e
            JOIN ledger_accounts a ON a.id = e.account_id WHERE e.currency <> a.currency
            """
        )
        for entry_id, entry_currency, account_currency in cursor.fetchall():
            problems.append(f"entry {entry_id} is in {entry_currency} on a {account_currency} account")
        cursor.execute(
            """
            SELECT b.id, b.user_id, b.currency, b.available, b.reserved,
                   COALESCE((SELECT SUM(amount) FROM ledger_entries e
                             WHERE e.account_id = b.available_account_id), 0),
                   COALESCE((SELECT SUM(amount) FROM ledger_entries e
                             WHERE e.account_id = b.reserved_account_id), 0)
            FROM balances b
            """
        )
        for (
            balance_id,
            user_id,
            currency,
            available,
            reserved,
            available_sum,
            reserved_sum,
        ) in cursor.fetchall():
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
