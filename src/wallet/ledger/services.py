"""Ledger writes. Every movement is a journal whose entries sum to zero, posted with the balance row locked.

Other apps move money through one entry point, balance_movement: it makes sure the balance exists (for a
credit), queues on the balance's advisory lock, starts the retrying transaction, locks the balance row and
hands it to the caller's function, which passes it to the movements below (deposit_credit, ...).

Every movement takes an optional `effective_at`: when it took effect, if earlier than now (a deposit Revio
reports paid before its webhook reached us). It defaults to now, the time the journal is recorded.

Debt: a debit larger than the available balance (a clawback, a chargeback, a refund the operator allows to
overdraw) puts the rest on the user's receivable account instead of making available negative. Every
credit to a user (deposit, released reservation, bank return, positive correction) settles debt first.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from wallet.core import cache as shared_cache
from wallet.core.db import READ_COMMITTED, run_in_retrying_transaction
from wallet.core.faults import crash_point
from wallet.ledger.errors import InsufficientFundsError, UnbalancedJournalError
from wallet.ledger.models import AccountKind, Balance, Entry, Journal, JournalKind, LedgerAccount
from wallet.ledger.selectors import balance_cache_generation_key

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LockedBalance(Protocol):
    """What another app sees of a balance it holds locked inside balance_movement: its figures, read-only.
    It is passed back to the movements (withdrawal_reserve, ...), which alone change and save it."""

    @property
    def user_id(self) -> UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def available(self) -> int: ...
    @property
    def reserved(self) -> int: ...
    @property
    def debt(self) -> int: ...


@dataclass(frozen=True)
class Line:
    account_id: int
    amount: int


def balance_ensure(*, user_id: UUID, currency: str) -> None:
    """Create the user's balance row and ledger accounts for the currency if missing (idempotent)."""
    if Balance.objects.filter(user_id=user_id, currency=currency).exists():
        return
    try:
        with transaction.atomic():
            available = LedgerAccount.objects.create(
                kind=AccountKind.USER_AVAILABLE, user_id=user_id, currency=currency
            )
            reserved = LedgerAccount.objects.create(
                kind=AccountKind.USER_RESERVED, user_id=user_id, currency=currency
            )
            Balance.objects.create(
                user_id=user_id, currency=currency, available_account=available, reserved_account=reserved
            )
    except IntegrityError:
        pass  # created concurrently by another request: fine, it exists now
    platform_account_ensure(kind=AccountKind.REVIO_CLEARING, currency=currency)


def platform_account_ensure(*, kind: str, currency: str) -> int:
    account = LedgerAccount.objects.filter(kind=kind, user__isnull=True, currency=currency).first()
    if account is not None:
        return account.id
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(kind=kind, currency=currency).id
    except IntegrityError:
        return LedgerAccount.objects.get(kind=kind, user__isnull=True, currency=currency).id


def balance_lock_key(*, user_id: UUID, currency: str) -> str:
    """The advisory lock name balance_movement queues on for this balance (wallet.core.db)."""
    return f"balance:{user_id}:{currency}"


def balance_lock(*, user_id: UUID, currency: str) -> Balance:
    """Lock the user's balance row (SELECT ... FOR UPDATE) for the rest of the transaction."""
    return Balance.objects.select_for_update().get(user_id=user_id, currency=currency)


def balance_movement(
    *,
    user_id: UUID,
    currency: str,
    fn: Callable[[LockedBalance], T],
    create: bool = True,
    requested: int | None = None,
    isolation: str = READ_COMMITTED,
) -> T:
    """Run `fn(balance)` in one transaction with the user's balance locked, and return what it returns.

    The one way to move money: contenders queue on the balance's advisory lock before the transaction
    starts, the transaction is retried as a whole on a serialization failure or deadlock (so `fn` may run
    more than once and must enqueue side effects with transaction.on_commit), and the balance row is locked
    (SELECT ... FOR UPDATE) before `fn` sees it. READ COMMITTED suffices when every row `fn` reads is
    written only under this balance's locks; pass SERIALIZABLE otherwise (docs/adr/0003).

    `create` makes the balance first if it is missing (a credit may be a user's first movement). Without it
    a balance never funded holds nothing: InsufficientFundsError, `requested` named in its details.

    :raises InsufficientFundsError: `create` is False and the user has no balance in the currency.
    :raises TransactionConflictError: still conflicting after the retries.
    """
    if create:
        balance_ensure(user_id=user_id, currency=currency)

    def locked() -> T:
        try:
            balance = balance_lock(user_id=user_id, currency=currency)
        except Balance.DoesNotExist:
            details: dict[str, object] = {"available": 0, "currency": currency}
            if requested is not None:
                details["requested"] = requested
            raise InsufficientFundsError(details=details) from None
        return fn(balance)

    return run_in_retrying_transaction(
        locked, lock_keys=[balance_lock_key(user_id=user_id, currency=currency)], isolation=isolation
    )


_NOT_LOCKED = "a ledger movement takes the balance balance_movement locked"


def _effective(effective_at: datetime | None, now: datetime) -> datetime:
    if effective_at is None:
        return now
    if timezone.is_naive(effective_at):
        raise ValueError("effective_at must be timezone-aware")
    # A provider's clock ahead of ours must not put a movement in the future, where as-of balances taken
    # now would miss it: it took effect no later than we recorded it (the database checks this too).
    return min(effective_at, now)


def journal_post(
    *,
    kind: str,
    currency: str,
    lines: list[Line],
    transaction_id: UUID | None = None,
    memo: str = "",
    effective_at: datetime | None = None,
) -> Journal:
    """Append a journal. A (transaction, kind) pair is posted at most once: the database refuses a second.

    :raises UnbalancedJournalError: the lines do not sum to zero, or there are fewer than two.
    """
    if len(lines) < 2 or sum(line.amount for line in lines) != 0 or any(line.amount == 0 for line in lines):
        raise UnbalancedJournalError(f"{kind}: {lines}")
    now = timezone.now()
    effective = _effective(effective_at, now)
    journal = Journal.objects.create(
        kind=kind, transaction_id=transaction_id, memo=memo[:255], created_at=now, effective_at=effective
    )
    Entry.objects.bulk_create(
        Entry(
            journal=journal,
            account_id=line.account_id,
            amount=line.amount,
            currency=currency,
            created_at=now,
            effective_at=effective,
        )
        for line in lines
    )
    crash_point("ledger.journal_written")
    return journal


def _clearing_account_id(currency: str) -> int:
    return (
        LedgerAccount.objects.only("id")
        .get(kind=AccountKind.REVIO_CLEARING, user__isnull=True, currency=currency)
        .id
    )


def balance_cache_invalidate(*, user_id: UUID, currency: str) -> None:
    """Move the balance's cache generation on, so no cached figure from before is served again."""
    shared_cache.generation_bump(balance_cache_generation_key(user_id=user_id, currency=currency))


def _save(balance: Balance) -> None:
    balance.updated_at = timezone.now()
    balance.save(update_fields=["available", "reserved", "debt", "receivable_account", "updated_at"])
    # Only once the change is committed: a rollback leaves the cached figure (still true) in place.
    user_id, currency = balance.user_id, balance.currency
    transaction.on_commit(lambda: balance_cache_invalidate(user_id=user_id, currency=currency))


def deposit_credit(
    *, balance: LockedBalance, amount: int, transaction_id: UUID, effective_at: datetime | None = None
) -> Journal:
    """Money Revio collected for the user becomes available to them (after settling any debt)."""
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    journal = journal_post(
        kind=JournalKind.DEPOSIT_CREDIT,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        lines=[
            *_credit_lines(balance, amount),
            Line(_clearing_account_id(balance.currency), -amount),
        ],
    )
    _save(balance)
    return journal


def withdrawal_reserve(
    *, balance: LockedBalance, amount: int, transaction_id: UUID, effective_at: datetime | None = None
) -> Journal:
    """Move money from available to reserved, so it cannot be spent twice while the payout is in flight.

    :raises InsufficientFundsError: the available balance is lower than the amount.
    """
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    if balance.available < amount:
        raise InsufficientFundsError(
            details={"available": balance.available, "requested": amount, "currency": balance.currency}
        )
    journal = journal_post(
        kind=JournalKind.WITHDRAWAL_RESERVE,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        lines=[Line(balance.available_account_id, -amount), Line(balance.reserved_account_id, amount)],
    )
    balance.available -= amount
    balance.reserved += amount
    _save(balance)
    return journal


def withdrawal_release(
    *, balance: LockedBalance, amount: int, transaction_id: UUID, effective_at: datetime | None = None
) -> Journal:
    """The payout failed: the reservation goes back to available (after settling any debt)."""
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    journal = journal_post(
        kind=JournalKind.WITHDRAWAL_RELEASE,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        lines=[Line(balance.reserved_account_id, -amount), *_credit_lines(balance, amount)],
    )
    balance.reserved -= amount
    _save(balance)
    return journal


def withdrawal_settle(
    *, balance: LockedBalance, amount: int, transaction_id: UUID, effective_at: datetime | None = None
) -> Journal:
    """The payout succeeded: the reserved money leaves the platform through Revio."""
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    journal = journal_post(
        kind=JournalKind.WITHDRAWAL_SETTLE,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        lines=[
            Line(balance.reserved_account_id, -amount),
            Line(_clearing_account_id(balance.currency), amount),
        ],
    )
    balance.reserved -= amount
    _save(balance)
    return journal


def withdrawal_return(
    *,
    balance: LockedBalance,
    amount: int,
    transaction_id: UUID,
    reason: str,
    effective_at: datetime | None = None,
) -> Journal:
    """The bank returned a completed payout: the money is credited back to the user (after any debt)."""
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    journal = journal_post(
        kind=JournalKind.WITHDRAWAL_RETURN,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        memo=reason,
        lines=[Line(_clearing_account_id(balance.currency), -amount), *_credit_lines(balance, amount)],
    )
    _save(balance)
    return journal


def correction_post(
    *,
    balance: LockedBalance,
    amount: int,
    correction_id: UUID,
    memo: str = "",
    effective_at: datetime | None = None,
) -> Journal:
    """An approved operator correction: the user's available balance moves by the signed `amount`, against
    the platform's corrections account. Posted at most once per correction id (the journal's unique key).

    :raises InsufficientFundsError: a negative correction would take available below zero.
    """
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    if amount < 0 and balance.available + amount < 0:
        raise InsufficientFundsError(
            "This correction would take the available balance below zero.",
            details={"available": balance.available, "requested": amount, "currency": balance.currency},
        )
    corrections_account_id = platform_account_ensure(kind=AccountKind.CORRECTIONS, currency=balance.currency)
    journal = journal_post(
        kind=JournalKind.CORRECTION,
        currency=balance.currency,
        transaction_id=correction_id,
        effective_at=effective_at,
        memo=memo,
        lines=[
            *(
                _credit_lines(balance, amount)
                if amount > 0
                else _debit_lines(balance, -amount, allow_debt=False)
            ),
            Line(corrections_account_id, -amount),
        ],
    )
    _save(balance)
    return journal


def _receivable_account_id(balance: Balance) -> int:
    """The user's receivable account, made the first time they owe (the caller holds the balance lock)."""
    if balance.receivable_account_id is None:
        account = LedgerAccount.objects.create(
            kind=AccountKind.USER_RECEIVABLE, user_id=balance.user_id, currency=balance.currency
        )
        balance.receivable_account = account
    return int(balance.receivable_account_id)  # type: ignore[arg-type]


def _credit_lines(balance: Balance, amount: int) -> list[Line]:
    """The user side of a credit of `amount`: what they owe is settled first, the rest becomes available.
    Updates the balance's figures (the caller saves them)."""
    settled = min(amount, balance.debt)
    lines: list[Line] = []
    if settled:
        lines.append(Line(_receivable_account_id(balance), settled))
        balance.debt -= settled
    if amount - settled:
        lines.append(Line(balance.available_account_id, amount - settled))
        balance.available += amount - settled
    return lines


def _debit_lines(balance: Balance, amount: int, *, allow_debt: bool) -> list[Line]:
    """The user side of a debit of `amount`: from available first, the rest as debt if allowed.

    :raises InsufficientFundsError: available is short and debt is not allowed.
    """
    from_available = min(amount, balance.available)
    owed = amount - from_available
    if owed and not allow_debt:
        raise InsufficientFundsError(
            details={"available": balance.available, "requested": amount, "currency": balance.currency}
        )
    lines: list[Line] = []
    if from_available:
        lines.append(Line(balance.available_account_id, -from_available))
        balance.available -= from_available
    if owed:
        lines.append(Line(_receivable_account_id(balance), -owed))
        balance.debt += owed
    return lines


@dataclass(frozen=True)
class Debit:
    journal: Journal
    from_available: int
    to_debt: int


def user_debit(
    *,
    balance: LockedBalance,
    amount: int,
    kind: str,
    transaction_id: UUID,
    allow_debt: bool,
    memo: str = "",
    effective_at: datetime | None = None,
) -> Debit:
    """Money that left Revio on the user's account after we had credited it (a payout paid after we
    refunded it, a chargeback, a refund to the card) is taken back: from available first, the rest as
    debt when `allow_debt`. Posted at most once per (transaction, kind).

    :raises InsufficientFundsError: available is short and debt is not allowed; nothing changed.
    """
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    available_before, debt_before = balance.available, balance.debt
    lines = _debit_lines(balance, amount, allow_debt=allow_debt)
    journal = journal_post(
        kind=kind,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        memo=memo,
        lines=[*lines, Line(_clearing_account_id(balance.currency), amount)],
    )
    _save(balance)
    return Debit(journal, available_before - balance.available, balance.debt - debt_before)


def user_credit(
    *,
    balance: LockedBalance,
    amount: int,
    kind: str,
    transaction_id: UUID,
    memo: str = "",
    effective_at: datetime | None = None,
) -> Journal:
    """Money that came back through Revio for the user (a refund Revio refused after we debited it): it
    settles their debt first, the rest becomes available. Posted at most once per (transaction, kind)."""
    if not isinstance(balance, Balance):
        raise TypeError(_NOT_LOCKED)
    journal = journal_post(
        kind=kind,
        currency=balance.currency,
        transaction_id=transaction_id,
        effective_at=effective_at,
        memo=memo,
        lines=[*_credit_lines(balance, amount), Line(_clearing_account_id(balance.currency), -amount)],
    )
    _save(balance)
    return journal
