"""Operators resolving a withdrawal whose outcome Revio cannot tell us (issue 16, part 2).

A withdrawal stays `pending` (payout request sent, outcome unknown) or `processing` and flagged (a
DISPUTED or otherwise unclear EFT payment) until Revio says what happened. When Revio cannot, a person
decides, with four eyes:

- "paid": Revio's EFT payment id is the evidence. It is checked against Revio (`GET`) when Revio answers:
  our withdrawal id as its contractReference, our amount, not failed. Approval settles the reservation
  (reserved → Revio clearing), exactly as Revio's own COMPLETED would.
- "not paid": approval fails the withdrawal and releases the reservation (reserved → available).

Neither touches `available` by a correction, so nothing is counted twice. If a payout appears later for a
withdrawal resolved "not paid", Revio's COMPLETED goes through the clawback (withdrawal_apply_locked).

One finance admin proposes, another approves (accounts.public.four_eyes_check); proposal, approval and
rejection are in the audit log, written in the same transaction as what they change.
"""

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from wallet.accounts import public as accounts
from wallet.accounts.public import User  # the type only
from wallet.audit import public as audit
from wallet.core.errors import NotFoundError, ValidationFailedError
from wallet.core.faults import crash_point
from wallet.ledger import public as ledger
from wallet.revio.public import Payout, PayoutOutcome, RevioError, RevioRejectedError
from wallet.revio.public import payouts as revio_payouts
from wallet.transactions import services
from wallet.transactions.errors import ResolutionNotApplicableError, ResolutionNotPendingError
from wallet.transactions.models import Transaction, TransactionType, WithdrawalResolution
from wallet.transactions.models import TransactionStatus as S

logger = logging.getLogger(__name__)

Outcome = WithdrawalResolution.Outcome
OPERATOR = services.Source.OPERATOR


def withdrawal_resolution_validate(
    *, withdrawal_id: uuid.UUID, proposed_by: User, outcome: str, note: str, payout_id: str = ""
) -> str:
    """Check a proposal before it is written (the admin form shows these as errors); returns what Revio's
    record said ("paid" is checked there when Revio answers).

    :raises NotAnAdminError: the proposer is not an active finance admin.
    :raises FourEyesError: it is the proposer's own withdrawal.
    :raises NotFoundError: no such withdrawal.
    :raises ValidationFailedError: a field is missing or invalid.
    :raises ResolutionNotApplicableError: the withdrawal's outcome is not open, or Revio's record of the
        payment contradicts "paid".
    """
    accounts.admin_duty_check(actor=proposed_by, duty=accounts.Duty.FINANCE)
    payout_id = payout_id.strip()
    fields: dict[str, list[str]] = {}
    if outcome not in Outcome.values:
        fields["outcome"] = ["Choose paid or not paid."]
    if outcome == Outcome.PAID and not payout_id:
        fields["payout_id"] = ["Give Revio's EFT payment id as evidence that it was paid."]
    if outcome == Outcome.NOT_PAID and payout_id:
        fields["payout_id"] = ["A payout that was not paid has no payment id; leave it empty."]
    if not note.strip():
        fields["note"] = ["Say how you know (who at Revio, which dashboard, which statement)."]
    if fields:
        raise ValidationFailedError.for_fields(fields)
    withdrawal = Transaction.objects.filter(id=withdrawal_id, type=TransactionType.WITHDRAWAL).first()
    if withdrawal is None:
        raise NotFoundError()
    if withdrawal.user_id == proposed_by.id:
        raise accounts.FourEyesError("This is your own withdrawal: a different admin must propose it.")
    _check_open(withdrawal)
    return _verify(withdrawal, outcome=outcome, payout_id=payout_id)


def withdrawal_resolution_propose(
    *,
    withdrawal_id: uuid.UUID,
    proposed_by: User,
    outcome: str,
    note: str,
    payout_id: str = "",
    now: datetime,
    ip: str | None = None,
) -> WithdrawalResolution:
    """Propose how an unknown or disputed withdrawal ended, for a second finance admin to approve.

    :raises NotAnAdminError, FourEyesError, NotFoundError, ValidationFailedError: see the validation.
    :raises ResolutionNotApplicableError: as for the validation, or a proposal is already pending for it.
    """
    verification = withdrawal_resolution_validate(
        withdrawal_id=withdrawal_id, proposed_by=proposed_by, outcome=outcome, note=note, payout_id=payout_id
    )
    try:
        with transaction.atomic():
            resolution = WithdrawalResolution.objects.create(
                withdrawal_id=withdrawal_id,
                outcome=outcome,
                payout_id=payout_id.strip(),
                verification=verification[:255],
                note=note.strip(),
                proposed_by=proposed_by,
                proposed_at=now,
            )
            audit.audit_record(
                action=audit.AuditAction.WITHDRAWAL_RESOLUTION_PROPOSED,
                actor=proposed_by,
                subject=resolution,
                ip=ip,
                now=now,
                details=_audit_details(resolution),
            )
    except IntegrityError:
        raise ResolutionNotApplicableError(
            "A resolution for this withdrawal is already waiting for approval."
        ) from None
    return resolution


def withdrawal_resolution_approve(
    *, resolution_id: uuid.UUID, approver: User, now: datetime, ip: str | None = None
) -> WithdrawalResolution:
    """Approve a pending resolution and apply it: "paid" settles the reservation, "not paid" releases it.

    Runs under the balance's lock with the resolution and the withdrawal locked, so approving twice or
    concurrently applies once. "Paid" is checked against Revio again first (outside any lock).

    :raises NotFoundError: no such resolution.
    :raises NotAnAdminError, FourEyesError: the approver may not decide it (four_eyes_check).
    :raises ResolutionNotPendingError: it was already decided.
    :raises ResolutionNotApplicableError: the withdrawal moved on meanwhile (Revio told us), or Revio's
        record now contradicts "paid"; nothing changed.
    """
    resolution = WithdrawalResolution.objects.select_related("withdrawal").filter(id=resolution_id).first()
    if resolution is None:
        raise NotFoundError()
    if resolution.status != WithdrawalResolution.Status.PENDING:
        raise ResolutionNotPendingError(details={"status": resolution.status})
    withdrawal = resolution.withdrawal
    verification = _verify(withdrawal, outcome=resolution.outcome, payout_id=resolution.payout_id)

    def approve(balance: ledger.LockedBalance) -> WithdrawalResolution:
        locked = WithdrawalResolution.objects.select_for_update().get(id=resolution_id)
        if locked.status != WithdrawalResolution.Status.PENDING:
            raise ResolutionNotPendingError(details={"status": locked.status})
        accounts.four_eyes_check(
            decider=approver,
            proposer_id=locked.proposed_by_id,
            subject_user_id=withdrawal.user_id,
            duty=accounts.Duty.FINANCE,
        )
        txn = Transaction.objects.select_for_update().get(id=withdrawal.id)
        _check_open(txn)
        before = {"status": txn.status, "available": balance.available, "reserved": balance.reserved}
        if locked.outcome == Outcome.PAID:
            _apply_paid(txn, locked, balance=balance, approver=approver)
        else:
            _apply_not_paid(txn, locked, balance=balance, approver=approver)
        locked.status = WithdrawalResolution.Status.APPROVED
        locked.decided_by = approver
        locked.decided_at = now
        locked.verification = verification[:255]
        locked.save(update_fields=["status", "decided_by", "decided_at", "verification"])
        audit.audit_record(
            action=audit.AuditAction.WITHDRAWAL_RESOLUTION_APPROVED,
            actor=approver,
            subject=locked,
            ip=ip,
            now=now,
            details=_audit_details(
                locked,
                proposed_by=str(locked.proposed_by_id),
                before=before,
                after={"status": txn.status, "available": balance.available, "reserved": balance.reserved},
            ),
        )
        return locked

    approved = ledger.balance_movement(user_id=withdrawal.user_id, currency=withdrawal.currency, fn=approve)
    crash_point("resolution.approved")
    return approved


def withdrawal_resolution_reject(
    *, resolution_id: uuid.UUID, rejecter: User, note: str, now: datetime, ip: str | None = None
) -> WithdrawalResolution:
    """Reject a pending resolution; nothing moves.

    :raises NotFoundError, NotAnAdminError, FourEyesError, ResolutionNotPendingError: as for approval.
    """
    with transaction.atomic():
        locked = (
            WithdrawalResolution.objects.select_for_update()
            .select_related("withdrawal")
            .filter(id=resolution_id)
        ).first()
        if locked is None:
            raise NotFoundError()
        if locked.status != WithdrawalResolution.Status.PENDING:
            raise ResolutionNotPendingError(details={"status": locked.status})
        accounts.four_eyes_check(
            decider=rejecter,
            proposer_id=locked.proposed_by_id,
            subject_user_id=locked.withdrawal.user_id,
            duty=accounts.Duty.FINANCE,
        )
        locked.status = WithdrawalResolution.Status.REJECTED
        locked.decided_by = rejecter
        locked.decided_at = now
        locked.decision_note = note.strip()
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit.audit_record(
            action=audit.AuditAction.WITHDRAWAL_RESOLUTION_REJECTED,
            actor=rejecter,
            subject=locked,
            ip=ip,
            now=now,
            details=_audit_details(locked, note=locked.decision_note),
        )
    return locked


# -- internals --------------------------------------------------------------------------------------------


def _check_open(withdrawal: Transaction) -> None:
    """Only an outcome nobody knows can be resolved by a person: pending with its request sent (unknown), or
    processing and flagged for review (a disputed or unclear payment)."""
    if withdrawal.status == S.PENDING and withdrawal.payout_requested_at is not None:
        return
    if withdrawal.status == S.PROCESSING and withdrawal.needs_review:
        return
    raise ResolutionNotApplicableError(
        f"This withdrawal is {withdrawal.status}"
        + (" and its payout was never sent" if withdrawal.status == S.PENDING else "")
        + ": its outcome is not in doubt.",
        details={"status": withdrawal.status},
    )


def _verify(withdrawal: Transaction, *, outcome: str, payout_id: str) -> str:
    """Check "paid" against Revio's record when Revio answers; returns what was found, for the record.

    :raises ResolutionNotApplicableError: Revio's record contradicts the proposal, or the payment id
        belongs to another withdrawal.
    """
    if outcome != Outcome.PAID:
        return "not paid: nothing to verify at Revio"
    if withdrawal.provider_object_id and withdrawal.provider_object_id != payout_id:
        raise ResolutionNotApplicableError(
            f"This withdrawal's payout at Revio is {withdrawal.provider_object_id}, not {payout_id}."
        )
    other = (
        Transaction.objects.filter(type=TransactionType.WITHDRAWAL, provider_object_id=payout_id)
        .exclude(id=withdrawal.id)
        .values_list("id", flat=True)
        .first()
    )
    if other is not None:
        raise ResolutionNotApplicableError(f"Payment {payout_id} is the payout of withdrawal {other}.")
    try:
        payout = revio_payouts.get_payouts().get(payout_id)
    except RevioRejectedError as exc:
        raise ResolutionNotApplicableError(
            f"Revio does not know payment {payout_id} ({exc.status}).", details={"payout_id": payout_id}
        ) from exc
    except RevioError as exc:
        logger.warning(
            "withdrawal %s: could not verify payment %s at Revio: %s", withdrawal.id, payout_id, exc
        )
        return f"not verified: Revio could not be asked ({type(exc).__name__})"
    problems = []
    if payout.reference != str(withdrawal.id):
        problems.append(f"its contractReference is {payout.reference!r}")
    if payout.amount != withdrawal.amount or payout.currency != withdrawal.currency:
        problems.append(
            f"it is for {payout.amount} {payout.currency}, ours {withdrawal.amount} {withdrawal.currency}"
        )
    if payout.outcome == PayoutOutcome.FAILED:
        problems.append(f"Revio says it {payout.status}")
    if problems:
        raise ResolutionNotApplicableError(
            f"Revio's payment {payout_id} does not support 'paid': " + "; ".join(problems) + ".",
            details={"payout_id": payout_id},
        )
    return f"verified at Revio: {payout.status}, {payout.amount} {payout.currency}, reference matches"


def _apply_paid(
    txn: Transaction, resolution: WithdrawalResolution, *, balance: ledger.LockedBalance, approver: User
) -> None:
    # Revio's payment as the operators verified it (_verify): paid, for our amount, under its id.
    payout = Payout(
        id=resolution.payout_id,
        status=txn.provider_status or "RESOLVED_PAID",
        outcome=PayoutOutcome.SUCCEEDED,
        amount=txn.amount,
        currency=txn.currency,
        reference=str(txn.id),
        updated_on=0,
        is_test=False,
    )
    applied = services.withdrawal_apply_locked(
        txn, payout, balance=balance, source=OPERATOR, reason=f"resolved paid by operators ({resolution.id})"
    )
    if applied != services.Applied.CHANGED:
        raise ResolutionNotApplicableError(f"Applying 'paid' did nothing ({applied}).")
    _clear_review(txn, resolution, approver=approver)


def _apply_not_paid(
    txn: Transaction, resolution: WithdrawalResolution, *, balance: ledger.LockedBalance, approver: User
) -> None:
    reason = "The payout did not leave; the amount is back in your balance."
    txn.failure_reason = reason
    services.transition(
        txn,
        S.FAILED,
        source=OPERATOR,
        detail=f"resolved not paid by operators ({resolution.id}); reservation released",
        also_save=["failure_reason"],
    )
    ledger.withdrawal_release(balance=balance, amount=txn.amount, transaction_id=txn.id)
    _clear_review(txn, resolution, approver=approver)


def _clear_review(txn: Transaction, resolution: WithdrawalResolution, *, approver: User) -> None:
    txn.needs_review = False
    txn.review_reason = f"resolved {resolution.outcome} by {approver.email} ({resolution.id})"[:255]
    txn.save(update_fields=["needs_review", "review_reason"])


def _audit_details(resolution: WithdrawalResolution, **extra: Any) -> dict[str, Any]:
    return {
        "withdrawal_id": str(resolution.withdrawal_id),
        "outcome": resolution.outcome,
        "payout_id": resolution.payout_id,
        "verification": resolution.verification,
        **extra,
    }
