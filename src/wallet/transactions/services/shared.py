"""What every deposit and withdrawal service shares: the one guarded status change (transition), its trail,
flags for review, and the amount and risk-limit checks.

The caller of transition and the checks holds the row locks and owns the transaction.
"""

import enum
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from wallet.core.errors import ValidationFailedError
from wallet.events import public as events  # outgoing events (issue 19): the hook in transition
from wallet.notifications import public as notifications
from wallet.transactions import states
from wallet.transactions.errors import (
    IllegalTransitionError,
    WithdrawalLimitError,
)
from wallet.transactions.models import Transaction, TransactionEvent, TransactionType
from wallet.transactions.models import TransactionStatus as S

logger = logging.getLogger(__name__)


Source = TransactionEvent.Source


class Applied(enum.StrEnum):
    """What applying a provider state did."""

    CHANGED = "changed"  # the transaction moved (and money with it, where the move moves money)
    UNCHANGED = "unchanged"  # already in that state, or the state means no change (still pending)
    STALE = "stale"  # older than what we hold: an out-of-order event; nothing changed
    FLAGGED = "flagged"  # Revio's object disagrees with ours (amount, currency, id): flagged for review


def transaction_transition(
    *, transaction_id: uuid.UUID, to_status: str, source: str, detail: str = ""
) -> Applied:
    """Move a transaction to a status without moving money: the guarded primitive, for statuses that do
    not touch the ledger (a deposit expiring, say). Money-moving changes go through the apply_* services.

    :raises IllegalTransitionError: not in the state machine.
    """
    with transaction.atomic():
        locked = Transaction.objects.select_for_update().get(id=transaction_id)
        if locked.status == to_status:
            return Applied.UNCHANGED
        if to_status in {S.COMPLETED, S.RETURNED} or (
            locked.type == TransactionType.WITHDRAWAL and to_status == S.FAILED
        ):
            raise IllegalTransitionError("This status change moves money; use the provider-state services.")
        transition(locked, to_status, source=source, detail=detail)
        return Applied.CHANGED


def transaction_flag_for_review(*, transaction_id: uuid.UUID, reason: str, source: str) -> None:
    """Flag a deposit or withdrawal for an operator (a refund, a chargeback, a disagreeing record)."""
    with transaction.atomic():
        locked = Transaction.objects.select_for_update().get(id=transaction_id)
        flag_for_review(locked, reason, source=source)


def transition(
    txn: Transaction,
    to_status: str,
    *,
    source: str,
    detail: str,
    also_save: Sequence[str] = (),
    notify_event: str | None = None,
) -> None:
    """The one guarded state change. The caller holds the row lock and owns the transaction. `also_save`
    names fields the caller changed on `txn`, written by the same UPDATE; `notify_event` replaces the
    "<type>.<status>" email when the move means something else (a clawback)."""
    if not states.is_allowed(txn.type, txn.status, to_status):
        logger.warning(
            "refused illegal transition of %s %s: %s → %s (%s)",
            txn.type,
            txn.id,
            txn.status,
            to_status,
            detail,
        )
        raise IllegalTransitionError(
            f"A {txn.type} cannot move from {txn.status} to {to_status}.",
            details={"transaction_id": str(txn.id), "from": txn.status, "to": to_status},
        )
    from_status = txn.status
    txn.status = to_status
    txn.updated_at = timezone.now()
    fields = ["status", "updated_at", *also_save]
    if to_status in {S.COMPLETED, S.RETURNED} or to_status in states.TERMINAL[txn.type]:
        txn.completed_at = txn.updated_at
        fields.append("completed_at")
    txn.save(update_fields=fields)
    record_event(txn, from_status=from_status, detail=detail, source=source)
    logger.info("%s %s: %s → %s (%s)", txn.type, txn.id, from_status, to_status, source)
    # The outbox: the email is recorded in this transaction and sent only after it commits.
    notifications.notification_record_for_transaction(
        transaction_id=txn.id,
        user_id=txn.user_id,
        event=notify_event or f"{txn.type}.{to_status}",
        **notifications.email_snapshot_of(txn),
    )
    # Outgoing events (issue 19, wallet.events): the signed event for the client's backend, same transaction.
    events.event_record_for_transaction(
        transaction_id=txn.id,
        user_id=txn.user_id,
        transaction_type=txn.type,
        status=to_status,
        amount=txn.amount,
        currency=txn.currency,
    )


def save_fields(txn: Transaction, fields: list[str]) -> None:
    if fields:
        txn.save(update_fields=fields)


def record_event(txn: Transaction, *, from_status: str, detail: str, source: str) -> None:
    TransactionEvent.objects.create(
        transaction=txn, from_status=from_status, to_status=txn.status, source=source, detail=detail[:255]
    )


def provider_mismatch(txn: Transaction, *, provider_object_id: str, amount: int, currency: str) -> str:
    if txn.provider_object_id and txn.provider_object_id != provider_object_id:
        return f"Revio object {provider_object_id} does not match ours ({txn.provider_object_id})"
    if amount != txn.amount or currency != txn.currency:
        return f"Revio says {amount} {currency}; we hold {txn.amount} {txn.currency}"
    return ""


def flag_for_review(txn: Transaction, reason: str, *, source: str) -> Applied:
    """Mark the transaction for an operator; returned (not raised) so the flag commits."""
    logger.error("%s %s flagged for review: %s", txn.type, txn.id, reason)
    txn.needs_review = True
    txn.review_reason = reason[:255]
    txn.save(update_fields=["needs_review", "review_reason"])
    record_event(txn, from_status=txn.status, detail=f"flagged for review: {reason}", source=source)
    return Applied.FLAGGED


def check_amount(*, amount: int, currency: str, low: int, high: int) -> None:
    if currency != settings.WALLET_CURRENCY:
        raise ValidationFailedError.for_fields(
            {"currency": [f"Only {settings.WALLET_CURRENCY} is supported."]}
        )
    if not low <= amount <= high:
        raise ValidationFailedError.for_fields(
            {"amount": [f"Must be between {low} and {high} (minor units)."]}
        )


def check_withdrawal_limits(*, user_id: uuid.UUID, currency: str, amount: int, now: datetime) -> None:
    """Risk limits, read under the balance lock (and its advisory lock, which every writer of this user's
    withdrawals holds), so concurrent requests cannot slip past them together. One statement."""
    since = now - timedelta(hours=24)
    open_statuses = [S.PENDING, S.PROCESSING]
    usage = Transaction.objects.filter(
        # Only rows that can count: open ones, or from the last 24 hours (both indexed), not the history.
        Q(status__in=open_statuses) | Q(created_at__gte=since),
        user_id=user_id,
        type=TransactionType.WITHDRAWAL,
        currency=currency,
    ).aggregate(
        open_count=Count("id", filter=Q(status__in=open_statuses)),
        used=Sum("amount", filter=Q(created_at__gte=since) & ~Q(status=S.FAILED)),
    )
    if usage["open_count"] >= settings.WITHDRAWAL_MAX_OPEN:
        raise WithdrawalLimitError(
            f"At most {settings.WITHDRAWAL_MAX_OPEN} withdrawals can be in progress at once.",
            details={"limit": "max_open", "max_open": settings.WITHDRAWAL_MAX_OPEN},
        )
    used = usage["used"] or 0
    if used + amount > settings.WITHDRAWAL_DAILY_MAX_AMOUNT:
        raise WithdrawalLimitError(
            "This withdrawal would exceed the daily withdrawal limit.",
            details={
                "limit": "daily_amount",
                "daily_max": settings.WITHDRAWAL_DAILY_MAX_AMOUNT,
                "used": used,
            },
        )
