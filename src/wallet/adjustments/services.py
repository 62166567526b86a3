"""Corrections writes: propose, approve (posts the journal), reject, expire. Each is recorded in the audit log
in the same transaction.

Four eyes: proposer and decider are active admins with the finance duty; the decider is not the proposer, did
not make the proposer an admin and was not made one by them (accounts.public.four_eyes_check, the rule every
four-eyes decision shares); neither may be the user whose balance moves. A database constraint refuses a
decider equal to the proposer whatever code writes the row.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction

from wallet.accounts import public as accounts
from wallet.accounts.public import User  # the type only
from wallet.adjustments.errors import (
    FourEyesError,
    ProposalExpiredError,
    ProposalNotPendingError,
)
from wallet.adjustments.models import AdjustmentProposal, ProposalStatus, ReasonCode
from wallet.audit import public as audit
from wallet.core.db import SERIALIZABLE
from wallet.core.errors import NotFoundError, ValidationFailedError
from wallet.ledger import public as ledger

MAX_ABS_AMOUNT = 10**12  # minor units; far above any real correction, well inside a bigint


def proposal_ttl() -> timedelta:
    """How long a proposal may wait for a decision (ADJUSTMENT_PROPOSAL_TTL_HOURS, 72 by default)."""
    return timedelta(hours=settings.ADJUSTMENT_PROPOSAL_TTL_HOURS)


@dataclass(frozen=True)
class ProposalInput:
    user_id: UUID
    amount: int
    currency: str
    reason_code: str
    reason: str
    discrepancy_id: int | None = None


def _require_admin(actor: User) -> None:
    accounts.admin_duty_check(actor=actor, duty=accounts.Duty.FINANCE)


def adjustment_validate(*, proposed_by: User, data: ProposalInput) -> None:
    """Check a proposal before it is written (the admin form shows these as field errors).

    :raises NotAnAdminError: the proposer is not an active admin.
    :raises FourEyesError: the proposer would correct their own balance.
    :raises ValidationFailedError: a field is invalid.
    """
    _require_admin(proposed_by)
    fields: dict[str, list[str]] = {}
    if data.amount == 0:
        fields["amount"] = ["A correction moves a non-zero amount."]
    elif abs(data.amount) > MAX_ABS_AMOUNT:
        fields["amount"] = ["This amount is implausibly large."]
    if data.currency != settings.WALLET_CURRENCY:
        fields["currency"] = [f"Only {settings.WALLET_CURRENCY} is supported."]
    if data.reason_code not in ReasonCode.values:
        fields["reason_code"] = ["Choose a reason code from the list."]
    if not data.reason.strip():
        fields["reason"] = ["Explain why this correction is needed."]
    if accounts.user_get(user_id=data.user_id) is None:
        fields["user"] = ["No such user."]
    if fields:
        raise ValidationFailedError.for_fields(fields)
    if data.user_id == proposed_by.id:
        raise FourEyesError("An admin may not propose a correction to their own balance.")


def adjustment_propose(
    *, proposed_by: User, data: ProposalInput, now: datetime, ip: str | None = None
) -> AdjustmentProposal:
    """Record a pending correction proposal, to be decided by another admin before it expires.

    :raises NotAnAdminError, FourEyesError, ValidationFailedError: see adjustment_validate.
    """
    adjustment_validate(proposed_by=proposed_by, data=data)
    with transaction.atomic():
        proposal = AdjustmentProposal.objects.create(
            user_id=data.user_id,
            amount=data.amount,
            currency=data.currency,
            reason_code=data.reason_code,
            reason=data.reason.strip(),
            discrepancy_id=data.discrepancy_id,
            proposed_by=proposed_by,
            proposed_at=now,
            expires_at=now + proposal_ttl(),
        )
        audit.audit_record(
            action=audit.AuditAction.ADJUSTMENT_PROPOSED,
            actor=proposed_by,
            subject=proposal,
            ip=ip,
            now=now,
            details=_audit_details(proposal),
        )
    return proposal


def _audit_details(proposal: AdjustmentProposal, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": str(proposal.user_id),
        "amount": proposal.amount,
        "currency": proposal.currency,
        "reason_code": proposal.reason_code,
        "discrepancy_id": proposal.discrepancy_id,
        **extra,
    }


def _decidable(proposal: AdjustmentProposal, *, decider: User, now: datetime) -> None:
    if proposal.status != ProposalStatus.PENDING:
        raise ProposalNotPendingError(details={"status": proposal.status})
    accounts.four_eyes_check(
        decider=decider,
        proposer_id=proposal.proposed_by_id,
        subject_user_id=proposal.user_id,
        duty=accounts.Duty.FINANCE,
    )
    if now >= proposal.expires_at:
        raise ProposalExpiredError(details={"expired_at": proposal.expires_at.isoformat()})


def _locked(proposal_id: UUID) -> AdjustmentProposal:
    proposal = AdjustmentProposal.objects.select_for_update().filter(pk=proposal_id).first()
    if proposal is None:
        raise NotFoundError()
    return proposal


def adjustment_approve(
    *, proposal_id: UUID, approver: User, now: datetime, ip: str | None = None
) -> AdjustmentProposal:
    """Approve a pending proposal: post its journal (user available ± amount against the corrections account).

    Runs under the balance's lock with the proposal row locked, so approving twice or concurrently posts once.

    :raises NotFoundError: no such proposal.
    :raises FourEyesError: the approver proposed it, or it moves their own balance.
    :raises ProposalNotPendingError: it was already approved, rejected or expired.
    :raises ProposalExpiredError: it is past its expiry time.
    :raises InsufficientFundsError: a negative correction would take available below zero.
    """
    target = AdjustmentProposal.objects.filter(pk=proposal_id).values("user_id", "currency").first()
    if target is None:
        raise NotFoundError()

    def approve(balance: ledger.LockedBalance) -> AdjustmentProposal:
        proposal = _locked(proposal_id)
        _decidable(proposal, decider=approver, now=now)
        before = balance.available
        journal = ledger.correction_post(
            balance=balance,
            amount=proposal.amount,
            correction_id=proposal.id,
            memo=f"correction {proposal.id} ({proposal.reason_code})",
        )
        proposal.status = ProposalStatus.APPROVED
        proposal.decided_by = approver
        proposal.decided_at = now
        proposal.journal_id = journal.id
        proposal.save(update_fields=["status", "decided_by", "decided_at", "journal_id"])
        audit.audit_record(
            action=audit.AuditAction.ADJUSTMENT_APPROVED,
            actor=approver,
            subject=proposal,
            ip=ip,
            now=now,
            details=_audit_details(
                proposal,
                journal_id=str(journal.id),
                proposed_by=str(proposal.proposed_by_id),
                available_before=before,
                available_after=balance.available,
            ),
        )
        return proposal

    # SERIALIZABLE: approval reads rows the balance's locks do not cover (docs/adr/0003).
    return ledger.balance_movement(
        user_id=target["user_id"], currency=target["currency"], fn=approve, isolation=SERIALIZABLE
    )


def adjustment_reject(
    *, proposal_id: UUID, rejecter: User, note: str, now: datetime, ip: str | None = None
) -> AdjustmentProposal:
    """Reject a pending proposal; nothing is posted.

    :raises NotFoundError, FourEyesError, ProposalNotPendingError, ProposalExpiredError: as for approval.
    """
    with transaction.atomic():
        proposal = _locked(proposal_id)
        _decidable(proposal, decider=rejecter, now=now)
        proposal.status = ProposalStatus.REJECTED
        proposal.decided_by = rejecter
        proposal.decided_at = now
        proposal.decision_note = note.strip()
        proposal.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit.audit_record(
            action=audit.AuditAction.ADJUSTMENT_REJECTED,
            actor=rejecter,
            subject=proposal,
            ip=ip,
            now=now,
            details=_audit_details(proposal, note=proposal.decision_note),
        )
    return proposal


def adjustments_expire(*, now: datetime) -> int:
    """Mark pending proposals past their expiry as expired (recorded in the audit log); returns how many."""
    expired = 0
    due = AdjustmentProposal.objects.filter(status=ProposalStatus.PENDING, expires_at__lte=now)
    for proposal_id in due.values_list("id", flat=True):
        with transaction.atomic():
            proposal = _locked(proposal_id)
            if proposal.status != ProposalStatus.PENDING or proposal.expires_at > now:
                continue
            proposal.status = ProposalStatus.EXPIRED
            proposal.save(update_fields=["status"])
            audit.audit_record(
                action=audit.AuditAction.ADJUSTMENT_EXPIRED,
                subject=proposal,
                now=now,
                details=_audit_details(proposal),
            )
            expired += 1
    return expired
