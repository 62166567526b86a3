"""Refunds and chargebacks of credited deposits: money that went back to the card moves out of the wallet.

A DepositReversal row is one movement: a Revio refund or chargeback Payment (from its signed `payment.*`
event or found by reconciliation), or an admin's refund request. Its id is the ledger transaction id of the
debit (`ledger.user_debit`, DEPOSIT_REFUND or DEPOSIT_CHARGEBACK), so one deposit can have several, and its
`provider_payment_id` (Revio's Payment id) is unique: however often and however concurrently a payment is
delivered or found, it is debited once. Every write runs under the user's balance lock, which also
serialises the tally of what was already taken back against the deposit's amount.

A Revio-side reversal is applied only if Revio's own purchase, re-read, accounts for it (total -
refundable_amount covers everything we hold plus this one): the event is a trigger, the purchase is the
truth. A refund or chargeback may leave the user owing money (`allow_debt`): the debt is settled first by
their next credit (ledger) and blocks withdrawals meanwhile.

See docs/wallet.md "Refunds and chargebacks".
"""

import enum
import logging
import uuid
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from wallet.events import public as events
from wallet.ledger import public as ledger
from wallet.notifications import public as notifications
from wallet.transactions.models import (
    DepositReversal,
    ReversalKind,
    ReversalOrigin,
    ReversalStatus,
    Transaction,
    TransactionEvent,
    TransactionType,
)
from wallet.transactions.models import TransactionStatus as S

logger = logging.getLogger(__name__)

Source = TransactionEvent.Source

JOURNAL_KINDS = {
    ReversalKind.REFUND: ledger.JournalKind.DEPOSIT_REFUND,
    ReversalKind.CHARGEBACK: ledger.JournalKind.DEPOSIT_CHARGEBACK,
}
# Outgoing events (wallet.events.catalogue) and emails (notifications.events), per kind.
_EVENT = {ReversalKind.REFUND: ("refund", "completed"), ReversalKind.CHARGEBACK: ("chargeback", "received")}
# Reversals whose debit stands (a proposed one moved nothing yet, a failed one was restored).
_MONEY_MOVED = (ReversalStatus.PENDING, ReversalStatus.COMPLETED)
_EMAIL = {ReversalKind.REFUND: "deposit.refunded", ReversalKind.CHARGEBACK: "deposit.charged_back"}


class ReversalApplied(enum.StrEnum):
    DEBITED = "debited"  # a new reversal: the user was debited
    ALREADY = "already"  # this Revio payment was applied before: nothing moved
    MATCHED = "matched"  # it is a reversal we already debited without its payment id (admin, reconciliation)
    FLAGGED = "flagged"  # it does not add up (never credited, more than the deposit, Revio disagrees)


@dataclass(frozen=True)
class RevioReversal:
    """A refund or chargeback Payment at Revio, and what Revio's purchase (re-read) says was taken back."""

    kind: str
    payment_id: str | None  # None: reconciliation found an amount taken back without a Payment id
    amount: int
    currency: str
    purchase_taken_back: int


def reversal_tally(*, deposit_id: uuid.UUID) -> int:
    """What we hold as taken back from a deposit: completed reversals and pending ones (their debit stands
    until Revio's answer is known); not proposals, not refusals."""
    total = DepositReversal.objects.filter(deposit_id=deposit_id, status__in=_MONEY_MOVED).aggregate(
        total=Sum("amount")
    )["total"]
    return int(total or 0)


def reversal_totals(*, deposit_id: uuid.UUID) -> dict[str, int]:
    """reversal_tally by kind: {"refund": ..., "chargeback": ...} (kinds with none are absent)."""
    rows = (
        DepositReversal.objects.filter(deposit_id=deposit_id, status__in=_MONEY_MOVED)
        .values("kind")
        .annotate(total=Sum("amount"))
    )
    return {row["kind"]: int(row["total"]) for row in rows}


def reversal_apply_from_revio(
    *, deposit_id: uuid.UUID, reversal: RevioReversal, origin: str, source: str
) -> ReversalApplied:
    """Apply a refund or chargeback Revio made (its signed event, or reconciliation): debit the user once.

    The order of checks: a payment already applied changes nothing; one matching a reversal we debited
    without its payment id (an admin refund whose answer was lost, a reconciliation find) is linked to it;
    otherwise it is debited (debt allowed) only if the deposit was credited and both the deposit's amount
    and Revio's purchase account for it; else the deposit is flagged and nothing moves.
    """
    deposit = Transaction.objects.get(id=deposit_id, type=TransactionType.DEPOSIT)

    def apply(balance: ledger.LockedBalance) -> ReversalApplied:
        locked = Transaction.objects.select_for_update().get(id=deposit_id)
        if (
            reversal.payment_id
            and DepositReversal.objects.filter(provider_payment_id=reversal.payment_id).exists()
        ):
            return ReversalApplied.ALREADY
        unlinked = (
            DepositReversal.objects.select_for_update()
            .filter(
                deposit_id=deposit_id,
                kind=reversal.kind,
                amount=reversal.amount,
                provider_payment_id__isnull=True,
                status__in=_MONEY_MOVED,
            )
            .order_by("created_at")
            .first()
        )
        if unlinked is not None:
            if reversal.payment_id is None:
                return ReversalApplied.ALREADY  # reconciliation: this amount is already ours
            reversal_link(unlinked, payment_id=reversal.payment_id, source=source)
            return ReversalApplied.MATCHED
        problem = _does_not_add_up(locked, reversal)
        if problem:
            deposit_flag_reversal(locked, problem, source=source)
            return ReversalApplied.FLAGGED
        row = DepositReversal.objects.create(
            deposit=locked,
            kind=reversal.kind,
            status=ReversalStatus.COMPLETED,
            origin=origin,
            amount=reversal.amount,
            currency=reversal.currency,
            provider_payment_id=reversal.payment_id,
            allow_debt=True,
            completed_at=timezone.now(),
        )
        reversal_debit(
            row, balance=balance, deposit=locked, source=source, memo=f"Revio payment {reversal.payment_id}"
        )
        reversal_announce_completed(row, deposit=locked)
        return ReversalApplied.DEBITED

    return ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=apply)


def _does_not_add_up(deposit: Transaction, reversal: RevioReversal) -> str:
    if reversal.currency != deposit.currency:
        return f"Revio's {reversal.kind} is in {reversal.currency}; the deposit is in {deposit.currency}"
    if deposit.status != S.COMPLETED:
        # Never credited (paid then reversed before we heard of the payment): nothing to take back.
        return f"Revio reports a {reversal.kind} of a deposit we never credited ({deposit.status})"
    tally = reversal_tally(deposit_id=deposit.id)
    if tally + reversal.amount > deposit.amount:
        return (
            f"a {reversal.kind} of {reversal.amount} would take back more than the deposit "
            f"({tally} already of {deposit.amount})"
        )
    if tally + reversal.amount > reversal.purchase_taken_back:
        return (
            f"Revio's purchase accounts for {reversal.purchase_taken_back} taken back; we would hold "
            f"{tally + reversal.amount}"
        )
    return ""


def reversal_debit(
    row: DepositReversal, *, balance: ledger.LockedBalance, deposit: Transaction, source: str, memo: str
) -> ledger.Debit:
    """Post the reversal's debit (once: the journal is unique per reversal id and kind) and record it."""
    debit = ledger.user_debit(
        balance=balance,
        amount=row.amount,
        kind=JOURNAL_KINDS[ReversalKind(row.kind)],
        transaction_id=row.id,
        allow_debt=row.allow_debt,
        memo=memo[:255],
    )
    row.taken_from_available = debit.from_available
    row.debt_created = debit.to_debt
    row.save(update_fields=["taken_from_available", "debt_created"])
    deposit_trail(deposit, f"{row.kind} of {row.amount} ({row.status}, reversal {row.id})", source=source)
    if debit.to_debt:
        logger.warning("deposit %s: %s leaves the user owing %s", deposit.id, row.kind, debit.to_debt)
        notifications.notification_record_for_transaction(
            transaction_id=deposit.id,
            user_id=deposit.user_id,
            event="debt.created",
            **notifications.email_snapshot_of(deposit),
        )
        events.event_record_for_transaction(
            transaction_id=row.id,
            user_id=deposit.user_id,
            transaction_type="debt",
            status="created",
            amount=debit.to_debt,
            currency=row.currency,
        )
    return debit


def reversal_announce_completed(row: DepositReversal, *, deposit: Transaction) -> None:
    """The email and the outgoing event of a reversal Revio confirmed, in the caller's transaction."""
    kind = ReversalKind(row.kind)
    notifications.notification_record_for_transaction(
        transaction_id=deposit.id,
        user_id=deposit.user_id,
        event=_EMAIL[kind],
        **notifications.email_snapshot_of(deposit),
    )
    transaction_type, status = _EVENT[kind]
    events.event_record_for_transaction(
        transaction_id=row.id,
        user_id=deposit.user_id,
        transaction_type=transaction_type,
        status=status,
        amount=row.amount,
        currency=row.currency,
    )


def reversal_link(row: DepositReversal, *, payment_id: str, source: str) -> None:
    """A reversal we debited before Revio named its Payment: link (and complete) it; no money moves."""
    row.provider_payment_id = payment_id
    fields = ["provider_payment_id", "updated_at"]
    row.updated_at = timezone.now()
    if row.status == ReversalStatus.PENDING:
        row.status = ReversalStatus.COMPLETED
        row.completed_at = row.updated_at
        fields += ["status", "completed_at"]
        reversal_announce_completed(row, deposit=row.deposit)
    row.save(update_fields=fields)
    deposit_trail(row.deposit, f"{row.kind} {row.id} is Revio payment {payment_id}", source=source)


def deposit_trail(deposit: Transaction, detail: str, *, source: str) -> None:
    TransactionEvent.objects.create(
        transaction=deposit,
        from_status=deposit.status,
        to_status=deposit.status,
        source=source,
        detail=detail[:255],
    )


def deposit_flag_reversal(deposit: Transaction, reason: str, *, source: str) -> None:
    logger.error("deposit %s flagged for review: %s", deposit.id, reason)
    deposit.needs_review = True
    deposit.review_reason = reason[:255]
    deposit.save(update_fields=["needs_review", "review_reason"])
    deposit_trail(deposit, f"flagged for review: {reason}", source=source)


def origin_for(source: str) -> str:
    return (
        ReversalOrigin.RECONCILIATION
        if source == TransactionEvent.Source.RECONCILIATION
        else ReversalOrigin.REVIO
    )
