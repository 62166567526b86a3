"""Reads of deposits and withdrawals. A user only ever sees their own."""

import uuid
from datetime import datetime

from django.db.models import QuerySet

from wallet.transactions.models import Transaction


def transaction_list(
    *,
    user_id: uuid.UUID,
    type: str | None = None,
    status: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Transaction]:
    rows = Transaction.objects.filter(user_id=user_id)
    if type:
        rows = rows.filter(type=type)
    if status:
        rows = rows.filter(status=status)
    if created_after:
        rows = rows.filter(created_at__gte=created_after)
    if created_before:
        rows = rows.filter(created_at__lt=created_before)
    return rows


def transaction_get(
    *, user_id: uuid.UUID, transaction_id: uuid.UUID, type: str | None = None
) -> Transaction | None:
    """The user's own transaction, or None, also when it belongs to someone else (the API answers 404)."""
    rows = Transaction.objects.filter(user_id=user_id, id=transaction_id)
    if type:
        rows = rows.filter(type=type)
    return rows.first()


def transaction_find(*, transaction_id: uuid.UUID) -> Transaction | None:
    """Any user's transaction: for webhooks, reconciliation and operators, never for user-facing reads."""
    return Transaction.objects.filter(id=transaction_id).first()


def transaction_find_by_provider_object(
    *, transaction_type: str, provider_object_id: str
) -> Transaction | None:
    """The deposit or withdrawal Revio's purchase or payout id belongs to."""
    if not provider_object_id:
        return None
    return Transaction.objects.filter(type=transaction_type, provider_object_id=provider_object_id).first()
