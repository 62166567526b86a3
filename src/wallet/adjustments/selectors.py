"""Corrections reads."""

from datetime import datetime

from django.db.models import QuerySet

from wallet.adjustments.models import AdjustmentProposal, ProposalStatus


def adjustment_list(*, status: str | None = None) -> QuerySet[AdjustmentProposal]:
    proposals = AdjustmentProposal.objects.select_related("user", "proposed_by", "decided_by")
    if status:
        proposals = proposals.filter(status=status)
    return proposals.order_by("-proposed_at")


def adjustment_get(*, proposal_id: str) -> AdjustmentProposal | None:
    return adjustment_list().filter(pk=proposal_id).first()


def adjustment_effective_status(*, proposal: AdjustmentProposal, now: datetime) -> str:
    """The status an operator should see: a pending proposal past its expiry is expired, swept or not."""
    if proposal.status == ProposalStatus.PENDING and now >= proposal.expires_at:
        return ProposalStatus.EXPIRED
    return proposal.status
