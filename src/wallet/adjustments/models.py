"""Four-eyes balance corrections: one admin proposes, a different admin approves (posting a ledger journal)
or rejects; undecided proposals expire. Money moves only through wallet.ledger's correction_post.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ReasonCode(models.TextChoices):
    RECONCILIATION = "reconciliation", "Reconciliation discrepancy"
    MISSED_CREDIT = "missed_credit", "Deposit paid but never credited"
    DUPLICATE_CREDIT = "duplicate_credit", "Credited twice"
    PAYOUT_NOT_REFUNDED = "payout_not_refunded", "Failed payout not returned"
    FEE_REFUND = "fee_refund", "Fee refund"
    GOODWILL = "goodwill", "Goodwill credit"
    OTHER = "other", "Other (explain in the reason)"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved and posted"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class AdjustmentProposal(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(
        help_text="Minor units, signed: positive credits the user, negative debits."
    )
    currency = models.CharField(max_length=3)
    reason_code = models.CharField(max_length=32, choices=ReasonCode.choices)
    reason = models.TextField()
    # Reconciliation's Discrepancy id; a plain integer so this app does not depend on that one's tables.
    discrepancy_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    # The ledger journal the approval posted (its transaction_id is this proposal's id).
    journal_id = models.UUIDField(null=True, blank=True)

    class Meta:
        db_table = "adjustment_proposals"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="adjustment_amount_not_zero"),
            # Four eyes, enforced by the database too: the decider is never the proposer.
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True) | ~models.Q(decided_by=models.F("proposed_by")),
                name="adjustment_decider_is_not_proposer",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="approved")
                | models.Q(journal_id__isnull=False, decided_by__isnull=False, decided_at__isnull=False),
                name="adjustment_approved_has_journal_and_decider",
            ),
            models.CheckConstraint(
                condition=models.Q(status="approved", journal_id__isnull=False)
                | models.Q(~models.Q(status="approved"), journal_id__isnull=True),
                name="adjustment_journal_only_when_approved",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="adjustment_status_idx")]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} for {self.user_id} ({self.status})"
