"""Stuck transactions under watch, provider reconciliation runs with their discrepancies, invariant checks.

Nothing here holds money: these rows record what the jobs saw and what they propose; money moves only
through the transactions services (and, for corrections, the ledger's four-eyes flow).
"""

from django.db import models
from django.utils import timezone


class StuckKind(models.TextChoices):
    DEPOSIT_PENDING = "deposit_pending", "Deposit pending too long"
    WITHDRAWAL_UNKNOWN = "withdrawal_unknown", "Withdrawal pending: payout outcome unknown"
    WITHDRAWAL_PROCESSING = "withdrawal_processing", "Withdrawal processing too long"


class StuckStatus(models.TextChoices):
    WATCHING = "watching", "Checked again with back-off"
    OPERATOR = "operator", "Operator task: no evidence, needs a person"
    RESOLVED = "resolved", "Resolved"


class StuckTransaction(models.Model):
    """A transaction recovery is watching; its next check time is the per-transaction back-off."""

    id = models.BigAutoField(primary_key=True)
    transaction = models.ForeignKey(
        "transactions.Transaction", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=32, choices=StuckKind.choices)
    status = models.CharField(max_length=16, choices=StuckStatus.choices, default=StuckStatus.WATCHING)
    first_seen_at = models.DateTimeField(default=timezone.now)
    checks = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(default=timezone.now)
    last_result = models.CharField(max_length=255, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    operator_reason = models.CharField(max_length=255, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "reconciliation_stuck_transactions"
        constraints = [
            models.UniqueConstraint(fields=["transaction", "kind"], name="stuck_transaction_once_per_kind")
        ]
        indexes = [models.Index(fields=["status", "next_check_at"], name="stuck_transaction_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.transaction_id} ({self.status})"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class ReconciliationRun(models.Model):
    """One comparison of our deposits and withdrawals in a period with Revio's objects."""

    id = models.BigAutoField(primary_key=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    period_start = models.DateField(help_text="First day compared (UTC).")
    period_end = models.DateField(help_text="Last day compared (UTC), inclusive.")
    triggered_by = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    deposits_checked = models.PositiveIntegerField(default=0)
    withdrawals_checked = models.PositiveIntegerField(default=0)
    events_checked = models.PositiveIntegerField(default=0)
    discrepancies_found = models.PositiveIntegerField(default=0)
    notes = models.TextField(blank=True, help_text="What could not be compared, and why.")
    error = models.TextField(blank=True)

    class Meta:
        db_table = "reconciliation_runs"
        indexes = [models.Index(fields=["-started_at"], name="reconciliation_run_started_idx")]

    def __str__(self) -> str:
        return f"run {self.id} {self.period_start}..{self.period_end} ({self.status})"


class DiscrepancyKind(models.TextChoices):
    MISSING_OURS = "missing_ours", "Missing on our side"
    MISSING_REVIO = "missing_revio", "Missing at Revio"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount, currency or reference mismatch"
    STATUS_MISMATCH = "status_mismatch", "Status mismatch"
    DUPLICATE = "duplicate", "Duplicate"
    # Issue 16: late changes after a deposit was paid, or a payout after we gave the money back.
    REFUNDED = "refunded", "Refunded at Revio, not applied here"
    CHARGED_BACK = "charged_back", "Charged back at Revio, not applied here"
    PAID_AFTER_EXPIRY = "paid_after_expiry", "Paid at Revio after we closed the deposit"
    SUCCESS_AFTER_REFUND = "success_after_refund", "Payout succeeded after we returned the money"


class Discrepancy(models.Model):
    """One disagreement between our records and Revio's, with what an operator should consider doing."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="discrepancies")
    kind = models.CharField(max_length=32, choices=DiscrepancyKind.choices)
    transaction = models.ForeignKey(
        "transactions.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    object_type = models.CharField(max_length=16, blank=True, help_text="purchase or payout")
    object_id = models.CharField(max_length=64, blank=True)
    ours = models.JSONField(default=dict, blank=True)
    theirs = models.JSONField(default=dict, blank=True)
    detail = models.CharField(max_length=500)
    proposal = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "reconciliation_discrepancies"
        verbose_name_plural = "discrepancies"
        indexes = [models.Index(fields=["run", "kind"], name="discrepancy_run_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail[:60]}"


class InvariantCheck(models.Model):
    """One run of the invariant monitor and what it found."""

    id = models.BigAutoField(primary_key=True)
    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    problems = models.JSONField(default=list, blank=True)
    skipped = models.JSONField(default=list, blank=True, help_text="Checks that could not run, and why.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "reconciliation_invariant_checks"
        indexes = [models.Index(fields=["-checked_at"], name="invariant_check_checked_idx")]

    def __str__(self) -> str:
        return f"invariants {'ok' if self.ok else 'VIOLATED'} at {self.checked_at:%Y-%m-%d %H:%M:%S}"
