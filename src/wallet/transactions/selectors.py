"""Reads of deposits and withdrawals. A user only ever sees their own."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet

from wallet.core import crypto
from wallet.transactions.models import Transaction, TransactionStatus, TransactionType


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


def bank_account_used_before(*, user_id: uuid.UUID, account_number: str, bank_code: str) -> bool:
    """Whether this user has a completed withdrawal to this account number and bank code (issue 17 F10:
    a new destination needs step-up). Numbers are stored encrypted: the masked last four digits and the
    bank code narrow the candidates in SQL, and only those few are decrypted and compared."""
    candidates = Transaction.objects.filter(
        user_id=user_id,
        type=TransactionType.WITHDRAWAL,
        status=TransactionStatus.COMPLETED,
        bank_code=bank_code,
        bank_account_masked=crypto.mask_account_number(account_number),
    ).values_list("bank_account_encrypted", flat=True)
    return any(
        crypto.decrypt_json(encrypted).get("account_number") == account_number
        for encrypted in candidates.iterator()
        if encrypted
    )


OPEN_STATUSES = (TransactionStatus.PENDING, TransactionStatus.PROCESSING)


@dataclass(frozen=True)
class OpenTransactionFigures:
    """Open deposits and withdrawals by (type, status), and those of them unchanged since `stuck_before`.
    Every (type, open status) pair is present, 0 when none."""

    open: dict[tuple[str, str], int]
    stuck: dict[tuple[str, str], int]


def transaction_open_figures(*, stuck_before: datetime) -> OpenTransactionFigures:
    """For /metrics: counts of the open transactions only. Both are range scans of transaction_status_idx
    (status, type, updated_at) over the open rows, never the whole table: finished transactions grow
    without bound, and their totals are the rate of the transitions, not a scrape-time count."""
    empty = {(kind.value, status.value): 0 for kind in TransactionType for status in OPEN_STATUSES}
    rows = Transaction.objects.filter(status__in=OPEN_STATUSES)
    counted = [
        {
            (row["type"], row["status"]): row["n"]
            for row in query.values("type", "status").annotate(n=Count("*"))
        }
        for query in (rows, rows.filter(updated_at__lt=stuck_before))
    ]
    return OpenTransactionFigures(open={**empty, **counted[0]}, stuck={**empty, **counted[1]})
