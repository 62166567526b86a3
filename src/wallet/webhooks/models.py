"""The webhook log (every verified event, and what became of it) and the record of rejected deliveries."""

from django.db import models
from django.utils import timezone

# EFT payment callbacks (unsigned; wallet.revio.eft) are logged under this object type.
EFT_OBJECT_TYPE = "eft_payment"


class WebhookStatus(models.TextChoices):
    RECEIVED = "received", "Received, waiting to be processed"
    PROCESSING = "processing", "Being processed"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (stale or no action needed)"
    FAILED = "failed", "Failed; will be retried"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered after the last attempt"


class WebhookLog(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Revio sends no event id: (object id, event type, updated_on) identifies an event (docs/adr/0005).
    dedup_key = models.CharField(max_length=200, unique=True)
    event_type = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    reference = models.CharField(max_length=128, blank=True)
    updated_on = models.BigIntegerField(help_text="Revio's updated_on of the object (Unix seconds).")
    body = models.TextField(
        help_text="The body as verified, bank account numbers masked; for EFT callbacks only the fields used."
    )
    verified_with = models.CharField(max_length=16, help_text="Which Revio key verified the signature.")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    duplicates = models.PositiveIntegerField(
        default=0, help_text="Deliveries of the same event after the first."
    )
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(
        max_length=255, blank=True, help_text="What processing did, or why it ignored it."
    )
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=254, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_logs"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_log_due_idx"),
            models.Index(fields=["object_id"], name="webhook_log_object_idx"),
            models.Index(fields=["-received_at"], name="webhook_log_received_idx"),
            # The drain's batch claim walks the open events in id order; finished rows (kept 90 days) are
            # not in this index, so the claim never scans past them.
            models.Index(
                fields=["id"],
                name="webhook_log_open_idx",
                condition=models.Q(status__in=["received", "failed", "processing"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_id} ({self.status})"


class WebhookRejection(models.Model):
    """A delivery that was refused before it was trusted. Bounded: no body, only its hash and length."""

    id = models.BigAutoField(primary_key=True)
    received_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=32)
    detail = models.CharField(max_length=255, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, help_text="Only headers of interest, each truncated.")
    body_sha256 = models.CharField(max_length=64)
    body_length = models.PositiveIntegerField()

    class Meta:
        db_table = "webhook_rejections"
        indexes = [models.Index(fields=["-received_at"], name="webhook_rejection_received_idx")]

    def __str__(self) -> str:
        return f"{self.reason} from {self.source_ip} at {self.received_at:%Y-%m-%d %H:%M:%S}"
