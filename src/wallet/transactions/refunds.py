"""Admin refunds of credited deposits (POST /api/v1/admin/deposits/{id}/refunds): request, four-eyes
approval or rejection, Revio's refund, and the resolution of answers that did not say what happened.

The refund is a DepositReversal like a chargeback (wallet.transactions.reversals, whose debit, trail and
announcements it shares); this module is the admin's side of it. See docs/wallet.md "Refunds and
chargebacks".
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from wallet.accounts import public as accounts
from wallet.audit import public as audit
from wallet.core import idempotency
from wallet.core.errors import NotFoundError
from wallet.core.faults import crash_point
from wallet.ledger import public as ledger
from wallet.revio.public import RevioError, RevioNotCreatedError
from wallet.revio.public import client as revio_client
from wallet.transactions.errors import (
    RefundExceedsRefundableError,
    RefundNotAllowedError,
    RefundNotProposedError,
)
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
from wallet.transactions.reversals import (
    deposit_flag_reversal,
    deposit_trail,
    reversal_announce_completed,
    reversal_debit,
    reversal_link,
    reversal_tally,
)

logger = logging.getLogger(__name__)

Source = TransactionEvent.Source


# -- admin refunds (POST /api/v1/admin/deposits/{id}/refunds) ---------------------------------------------
#
# The order is what keeps an ambiguous answer safe: (1) debit the user and record the refund as pending in
# one transaction, so the money cannot be withdrawn meanwhile; (2) ask Revio to refund; (3) a Payment →
# completed; a definite refusal (4xx, or never sent) → failed and the debit restored
# (DEPOSIT_REFUND_REVERSED); no answer (5xx, timeout) → stays pending, resolved by the Payment's
# payment.refunded event (linked, never debited again) or by refunds_resolve_pending re-reading the purchase.


@dataclass(frozen=True)
class RefundInput:
    deposit_id: uuid.UUID
    amount: int
    allow_debt: bool = False
    reason: str = ""


def refund_request(
    *,
    actor: Any,
    data: RefundInput,
    claim: idempotency.IdempotencyClaim | None = None,
    ip: str | None = None,
) -> DepositReversal:
    """An admin's refund of (part of) a deposit to the card. Above REFUND_FOUR_EYES_THRESHOLD it is only
    proposed (nothing moves until a second finance admin approves it: refund_approve); otherwise it is
    debited and sent to Revio at once.

    :raises NotAnAdminError: the actor is not an active finance admin.
    :raises FourEyesError: the deposit is the actor's own.
    :raises NotFoundError: no such deposit.
    :raises RefundNotAllowedError: the deposit is not completed.
    :raises RefundExceedsRefundableError: more than is left to refund; nothing changed.
    :raises InsufficientFundsError: the user's available balance is too low and debt is not allowed.
    """
    accounts.admin_duty_check(actor=actor, duty=accounts.Duty.FINANCE)
    deposit = Transaction.objects.filter(id=data.deposit_id, type=TransactionType.DEPOSIT).first()
    if deposit is None:
        raise NotFoundError("No such deposit.")
    if deposit.user_id == actor.id:
        raise accounts.FourEyesError("An admin may not refund their own deposit.")
    proposed = data.amount > settings.REFUND_FOUR_EYES_THRESHOLD
    row = DepositReversal(
        id=uuid.uuid4(),
        deposit=deposit,
        kind=ReversalKind.REFUND,
        status=ReversalStatus.PROPOSED if proposed else ReversalStatus.PENDING,
        origin=ReversalOrigin.ADMIN,
        amount=data.amount,
        currency=deposit.currency,
        allow_debt=data.allow_debt,
        requested_by_id=actor.id,
        reason=data.reason[:255],
    )
    row = _refund_debit(row, actor=actor, claim=claim, ip=ip, proposing=proposed)
    if proposed:
        return row
    return _refund_send(row)


def refund_approve(*, reversal_id: uuid.UUID, actor: Any, ip: str | None = None) -> DepositReversal:
    """A second finance admin approves a proposed refund: it is debited and sent to Revio (once: only a
    proposed refund can be approved, under its row lock).

    :raises NotFoundError, RefundNotProposedError, NotAnAdminError, FourEyesError; and the refusals of
        refund_request (checked again now: the balance may have changed since the proposal).
    """
    row = DepositReversal.objects.select_related("deposit").filter(id=reversal_id).first()
    if row is None:
        raise NotFoundError("No such refund.")
    row = _refund_debit(row, actor=actor, claim=None, ip=ip, proposing=False, approving=True)
    return _refund_send(row)


def refund_reject(
    *, reversal_id: uuid.UUID, actor: Any, note: str = "", ip: str | None = None
) -> DepositReversal:
    """A second finance admin rejects a proposed refund: it is closed as rejected and nothing moves (a
    proposal never debited anything nor reached Revio). Four eyes as for approval: the proposer cannot
    reject their own proposal either (they may simply leave it; a rejection is a decision).

    :raises NotFoundError: no such refund.
    :raises RefundNotProposedError: it is not waiting for approval (decided already, or never needed it).
    :raises NotAnAdminError, FourEyesError: the actor may not decide it (four_eyes_check).
    """
    found = DepositReversal.objects.select_related("deposit").filter(id=reversal_id).first()
    if found is None:
        raise NotFoundError("No such refund.")
    deposit = found.deposit

    def reject(_balance: ledger.LockedBalance) -> DepositReversal:
        # The locks approval takes, in its order (balance, deposit, refund): approving and rejecting at
        # once serialise on the refund's row and cannot deadlock.
        locked_deposit = Transaction.objects.select_for_update().get(id=deposit.id)
        row = DepositReversal.objects.select_for_update().get(id=reversal_id)
        if row.status != ReversalStatus.PROPOSED:
            raise RefundNotProposedError(details={"status": row.status})
        accounts.four_eyes_check(
            decider=actor,
            proposer_id=row.requested_by_id,
            subject_user_id=locked_deposit.user_id,
            duty=accounts.Duty.FINANCE,
        )
        row.status = ReversalStatus.REJECTED
        row.failure_reason = (f"rejected: {note.strip()}" if note.strip() else "rejected")[:255]
        row.updated_at = timezone.now()
        row.save(update_fields=["status", "failure_reason", "updated_at"])
        deposit_trail(
            locked_deposit,
            f"refund {row.id} of {row.amount} rejected by a second admin",
            source=Source.OPERATOR,
        )
        _audit_refund(
            row,
            deposit=locked_deposit,
            action=audit.AuditAction.REFUND_REJECTED,
            actor=actor,
            ip=ip,
            proposed_by=str(row.requested_by_id),
            note=note.strip()[:255],
        )
        return row

    return ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=reject)


def _refund_debit(
    row: DepositReversal,
    *,
    actor: Any,
    claim: idempotency.IdempotencyClaim | None,
    ip: str | None,
    proposing: bool,
    approving: bool = False,
) -> DepositReversal:
    """Step 1, in one transaction under the balance lock: the checks, the row, the debit (unless only
    proposed), the Idempotency-Key record and the audit event."""
    deposit = row.deposit

    def apply(balance: ledger.LockedBalance) -> DepositReversal:
        locked = Transaction.objects.select_for_update().get(id=deposit.id)
        current = row
        if approving:
            current = DepositReversal.objects.select_for_update().get(id=row.id)
            if current.status != ReversalStatus.PROPOSED:
                raise RefundNotProposedError(details={"status": current.status})
            accounts.four_eyes_check(
                decider=actor,
                proposer_id=current.requested_by_id,
                subject_user_id=locked.user_id,
                duty=accounts.Duty.FINANCE,
            )
        if locked.status != S.COMPLETED:
            raise RefundNotAllowedError(details={"status": locked.status})
        refundable = locked.amount - reversal_tally(deposit_id=locked.id)
        if current.amount > refundable:
            raise RefundExceedsRefundableError(
                details={"requested": current.amount, "refundable": refundable, "currency": locked.currency}
            )
        if proposing:
            current.save(force_insert=True)
            action = audit.AuditAction.REFUND_PROPOSED
        else:
            if approving:
                current.status = ReversalStatus.PENDING
                current.approved_by_id = actor.id
                current.updated_at = timezone.now()
                current.save(update_fields=["status", "approved_by_id", "updated_at"])
                action = audit.AuditAction.REFUND_APPROVED
            else:
                current.save(force_insert=True)
                action = audit.AuditAction.REFUND_REQUESTED
            # Raises InsufficientFundsError (rolling all of this back) if short and debt is not allowed.
            reversal_debit(
                current, balance=balance, deposit=locked, source=Source.OPERATOR, memo="admin refund"
            )
        idempotency.record_claim(claim, resource_id=current.id)
        _audit_refund(
            current,
            deposit=locked,
            action=action,
            actor=actor,
            ip=ip,
            allow_debt=current.allow_debt,
            refundable_before=refundable,
        )
        return current

    return ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=apply)


def _refund_send(row: DepositReversal) -> DepositReversal:
    """Steps 2 and 3: ask Revio, then apply its answer (or leave the refund pending if there was none)."""
    purchase_id = row.deposit.provider_object_id or ""
    crash_point("refund.debited")
    try:
        answer = revio_client.purchase_refund(revio_client.get_client(), purchase_id, amount=row.amount)
    except RevioNotCreatedError as exc:  # refused (4xx) or never sent: certainly not refunded
        logger.warning("refund %s of deposit %s refused by Revio: %s", row.id, row.deposit_id, exc)
        return _refund_restore(row.id, reason=f"Revio refused the refund ({exc.status or 'not sent'})")
    except RevioError as exc:  # no proof either way: the debit stands until Revio's state is known
        logger.warning("refund %s of deposit %s: outcome unknown: %s", row.id, row.deposit_id, exc)
        return DepositReversal.objects.get(id=row.id)
    crash_point("refund.answered")
    if answer.payment_id and answer.status == "success":
        return _refund_confirm(row.id, payment_id=answer.payment_id)
    return DepositReversal.objects.get(id=row.id)  # pending_refund: its payment.refunded completes it


def _refund_confirm(reversal_id: uuid.UUID, *, payment_id: str) -> DepositReversal:
    row = DepositReversal.objects.select_related("deposit").get(id=reversal_id)
    deposit = row.deposit

    def apply(_balance: ledger.LockedBalance) -> DepositReversal:
        current = DepositReversal.objects.select_for_update().select_related("deposit").get(id=reversal_id)
        if current.provider_payment_id == payment_id:
            return current  # its payment.refunded event came first and linked it
        if (
            current.provider_payment_id
            or DepositReversal.objects.filter(provider_payment_id=payment_id).exists()
        ):
            deposit_flag_reversal(
                current.deposit,
                f"refund {current.id}: Revio payment {payment_id} is linked elsewhere",
                source=Source.OPERATOR,
            )
            return current
        if current.status == ReversalStatus.FAILED:
            # Restored (a re-read saw nothing) and yet Revio refunded: take it again, once, as a Revio refund.
            deposit_flag_reversal(
                current.deposit,
                f"refund {current.id} restored, but Revio paid it ({payment_id})",
                source=Source.OPERATOR,
            )
            return current
        reversal_link(current, payment_id=payment_id, source=Source.OPERATOR)
        return current

    return ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=apply, create=False)


def _refund_restore(reversal_id: uuid.UUID, *, reason: str) -> DepositReversal:
    """Revio certainly did not refund: the refund fails and its debit is credited back, once."""
    row = DepositReversal.objects.select_related("deposit").get(id=reversal_id)
    deposit = row.deposit

    def apply(balance: ledger.LockedBalance) -> DepositReversal:
        current = DepositReversal.objects.select_for_update().select_related("deposit").get(id=reversal_id)
        if current.status != ReversalStatus.PENDING or current.provider_payment_id:
            return current  # completed meanwhile (its event came), or already restored
        current.status = ReversalStatus.FAILED
        current.failure_reason = reason[:255]
        current.updated_at = timezone.now()
        current.save(update_fields=["status", "failure_reason", "updated_at"])
        ledger.user_credit(
            balance=balance,
            amount=current.amount,
            kind=ledger.JournalKind.DEPOSIT_REFUND_REVERSED,
            transaction_id=current.id,
            memo=reason[:255],
        )
        deposit_trail(
            current.deposit, f"refund {current.id} failed, debit restored: {reason}", source=Source.OPERATOR
        )
        return current

    return ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=apply, create=False)


def refunds_resolve_pending(*, now: datetime, limit: int = 100) -> dict[str, int]:
    """Settle admin refunds whose answer was lost, once REFUND_PENDING_GRACE_SECONDS have passed, by
    re-reading the purchase: if Revio's taken-back total covers what we hold completed plus this refund it
    happened (completed; its payment.refunded links the payment id later); if the purchase is not in
    pending_refund and does not cover it, it did not happen (restored). A read that fails decides nothing.
    """
    cutoff = now - timedelta(seconds=settings.REFUND_PENDING_GRACE_SECONDS)
    counts = {"completed": 0, "restored": 0, "waiting": 0}
    pending = list(
        DepositReversal.objects.select_related("deposit")
        .filter(status=ReversalStatus.PENDING, updated_at__lte=cutoff)
        .order_by("created_at")[:limit]
    )
    for row in pending:
        try:
            state = revio_client.purchase_take_back(
                revio_client.get_client(), row.deposit.provider_object_id or ""
            )
        except RevioError as exc:
            logger.info("refund %s: purchase unreadable (%s); later", row.id, exc)
            counts["waiting"] += 1
            continue
        completed = int(
            DepositReversal.objects.filter(
                deposit_id=row.deposit_id, status=ReversalStatus.COMPLETED
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        if completed + row.amount <= state.taken_back:
            _refund_complete_unlinked(row.id)
            counts["completed"] += 1
        elif state.status == "pending_refund":
            counts["waiting"] += 1
        else:
            _refund_restore(row.id, reason="Revio's purchase shows no such refund")
            counts["restored"] += 1
    return counts


def _refund_complete_unlinked(reversal_id: uuid.UUID) -> None:
    row = DepositReversal.objects.select_related("deposit").get(id=reversal_id)
    deposit = row.deposit

    def apply(_balance: ledger.LockedBalance) -> None:
        current = DepositReversal.objects.select_for_update().select_related("deposit").get(id=reversal_id)
        if current.status != ReversalStatus.PENDING:
            return
        current.status = ReversalStatus.COMPLETED
        current.completed_at = current.updated_at = timezone.now()
        current.save(update_fields=["status", "completed_at", "updated_at"])
        reversal_announce_completed(current, deposit=current.deposit)
        deposit_trail(
            current.deposit,
            f"refund {current.id} confirmed by Revio's purchase",
            source=Source.RECONCILIATION,
        )

    ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=apply, create=False)


def _audit_refund(
    row: DepositReversal, *, deposit: Transaction, action: str, actor: Any, ip: str | None, **extra: Any
) -> None:
    audit.audit_record(
        action=action,
        actor=actor,
        subject_type="transactions.depositreversal",
        subject_id=str(row.id),
        ip=ip,
        details={
            "deposit_id": str(deposit.id),
            "user_id": str(deposit.user_id),
            "amount": row.amount,
            "currency": row.currency,
            **extra,
        },
    )
