"""Deposits and withdrawals, and the trail of every status change they went through."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TransactionType(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"


class TransactionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    RETURNED = "returned", "Returned by the bank"


DEPOSIT_STATUSES = ["pending", "completed", "failed", "cancelled", "expired"]
WITHDRAWAL_STATUSES = ["pending", "processing", "completed", "failed", "returned"]


class Transaction(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=16, choices=TransactionType.choices)
    status = models.CharField(
        max_length=16, choices=TransactionStatus.choices, default=TransactionStatus.PENDING
    )
    amount = models.BigIntegerField(help_text="Minor units (cents); always positive.")
    currency = models.CharField(max_length=3)
    # Revio's purchase id (deposits) or payout id (withdrawals), once known.
    # NULL (not "") until Revio answers, so the uniqueness constraint below ignores unknown ids.
    provider_object_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    provider_status = models.CharField(max_length=32, blank=True)
    checkout_url = models.URLField(max_length=500, blank=True)
    # Withdrawals only: the full details encrypted (core.crypto), and what may be shown.
    bank_account_encrypted = models.TextField(blank=True)
    bank_account_masked = models.CharField(max_length=32, blank=True)
    bank_account_holder = models.CharField(max_length=100, blank=True)
    bank_code = models.CharField(max_length=6, blank=True)
    bank_account_type = models.CharField(max_length=16, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    # Withdrawals only: when the payout request was sent to Revio (set just before sending). NULL means
    # never sent (queued while Revio was down): only such a withdrawal may be sent, and only once, since
    # one whose request went out with an unknown outcome could be paid twice (docs/adr/0006).
    payout_requested_at = models.DateTimeField(null=True, blank=True)
    payout_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Payout requests sent to Revio (at most one unless Revio refused it)."
    )
    # Withdrawals only: the route the payout request went through, set with payout_requested_at: "eft"
    # (the only route now), or "gateway" for history from before the gateway route was retired (open ones
    # are an operator's: migration 0005, docs/deploy.md); empty until sent.
    payout_route = models.CharField(max_length=16, blank=True, default="")
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "transactions"
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(
                condition=(
                    models.Q(type="deposit", status__in=DEPOSIT_STATUSES)
                    | models.Q(type="withdrawal", status__in=WITHDRAWAL_STATUSES)
                ),
                name="transaction_status_valid_for_type",
            ),
            models.UniqueConstraint(
                fields=["type", "provider_object_id"],
                name="transaction_provider_object_unique",
                condition=models.Q(provider_object_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="transaction_user_created_idx"),
            models.Index(fields=["status", "type", "updated_at"], name="transaction_status_idx"),
            # The risk limits count a user's open withdrawals under the balance lock: with this and the
            # (user, created_at) index they read only open and recent rows, however long the history.
            models.Index(
                fields=["user"],
                name="transaction_user_open_wd_idx",
                condition=models.Q(type="withdrawal", status__in=["pending", "processing"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} {self.status} {self.amount} {self.currency}"


class TransactionEvent(models.Model):
    """An append-only trail: each status change, who caused it and why."""

    class Source(models.TextChoices):
        API = "api", "API request"
        WEBHOOK = "webhook", "Revio webhook"
        RECONCILIATION = "reconciliation", "Reconciliation"
        OPERATOR = "operator", "Operator"

    id = models.BigAutoField(primary_key=True)
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "transaction_events"
        indexes = [models.Index(fields=["transaction", "id"], name="transaction_event_txn_idx")]

    def __str__(self) -> str:
        return f"{self.transaction_id}: {self.from_status or '∅'} → {self.to_status}"


class WithdrawalResolution(models.Model):
    """An operator's decision about a withdrawal whose outcome Revio could not tell us (unknown or
    disputed): "paid" (with Revio's EFT payment id as evidence) settles the reservation, "not paid" returns
    it. One finance admin proposes, another approves (four eyes); both are audited
    (transactions/resolutions.py, docs/operations.md)."""

    class Outcome(models.TextChoices):
        PAID = "paid", "Paid (Revio's payment exists)"
        NOT_PAID = "not_paid", "Not paid (no payment left)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved and applied"
        REJECTED = "rejected", "Rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    withdrawal = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="resolutions")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    payout_id = models.CharField(max_length=64, blank=True, help_text="Revio's EFT payment id (paid only).")
    # What Revio's own record said when it was checked (amount, reference, status), or why it could not be.
    verification = models.CharField(max_length=255, blank=True)
    note = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        db_table = "withdrawal_resolutions"
        constraints = [
            # At most one open proposal per withdrawal: two could settle and release the same reservation.
            models.UniqueConstraint(
                fields=["withdrawal"],
                name="withdrawal_resolution_one_pending",
                condition=models.Q(status="pending"),
            ),
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("proposed_by")),
                name="withdrawal_resolution_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(outcome="not_paid") | ~models.Q(payout_id=""),
                name="withdrawal_resolution_paid_has_payout",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} for {self.withdrawal_id} ({self.status})"


# -- refunds and chargebacks of deposits (issue 16, docs/wallet.md "Refunds and chargebacks") ---------------


class ReversalKind(models.TextChoices):
    REFUND = "refund", "Refund to the card"
    CHARGEBACK = "chargeback", "Chargeback by the card holder's bank"


class ReversalStatus(models.TextChoices):
    # An admin refund above REFUND_FOUR_EYES_THRESHOLD waiting for a second finance admin: nothing moved.
    PROPOSED = "proposed", "Proposed (awaiting a second admin)"
    # Debited from the user; Revio's answer to our refund request is not known yet (5xx, timeout).
    PENDING = "pending", "Pending"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Refused by Revio (the debit was restored)"
    # A proposal the second finance admin turned down: nothing ever moved, nothing was sent to Revio.
    REJECTED = "rejected", "Rejected by a second admin (nothing moved)"


class ReversalOrigin(models.TextChoices):
    REVIO = "revio", "Revio event (dashboard refund, chargeback)"
    ADMIN = "admin", "Admin refund through the wallet"
    RECONCILIATION = "reconciliation", "Found by reconciliation"


class DepositReversal(models.Model):
    """Money of a credited deposit that went back to the card: one row per Revio refund or chargeback
    payment, and per admin refund request. Its id is the ledger transaction id of its debit (one deposit
    can have several), and `provider_payment_id` (Revio's Payment id) is unique: one debit per payment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deposit = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="reversals")
    kind = models.CharField(max_length=16, choices=ReversalKind.choices)
    status = models.CharField(max_length=16, choices=ReversalStatus.choices)
    origin = models.CharField(max_length=16, choices=ReversalOrigin.choices)
    amount = models.BigIntegerField(help_text="Minor units; always positive.")
    currency = models.CharField(max_length=3)
    # NULL until Revio names its Payment (an ambiguous admin refund, or one reconciliation inferred).
    provider_payment_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    allow_debt = models.BooleanField(default=False)
    taken_from_available = models.BigIntegerField(default=0)
    debt_created = models.BigIntegerField(default=0)
    # Admin refunds: who asked and (above the four-eyes threshold) who approved; user ids, not FKs.
    requested_by_id = models.UUIDField(null=True, blank=True)
    approved_by_id = models.UUIDField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "deposit_reversals"
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="deposit_reversal_amount_positive"),
            models.UniqueConstraint(
                fields=["provider_payment_id"],
                name="deposit_reversal_payment_unique",
                condition=models.Q(provider_payment_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=~models.Q(approved_by_id=models.F("requested_by_id")),
                name="deposit_reversal_four_eyes",
            ),
        ]
        indexes = [
            models.Index(fields=["deposit", "status"], name="deposit_reversal_deposit_idx"),
            models.Index(
                fields=["updated_at"],
                name="deposit_reversal_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} of {self.deposit_id} {self.status} {self.amount} {self.currency}"
