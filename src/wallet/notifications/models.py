"""The outbox of emails to send, and each user's email preferences."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (the user opted out)"


class Notification(models.Model):
    """One email to one user, written in the same database transaction as the event it reports."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=64)
    # The deposit or withdrawal reported on, by id only: the outbox does not depend on that app's tables.
    transaction_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    # Facts the email needs that cannot be read back at send time (the password-reset link). Cleared once
    # the email is sent or given up, so a live reset token does not sit in the database.
    context = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweep may try it (again): a grace period after creation, then the retry backoff.
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications"
        constraints = [
            # A duplicate webhook or a re-applied state can never queue a second email for one event.
            models.UniqueConstraint(
                fields=["transaction_id", "event"],
                name="notification_transaction_event_unique",
                condition=models.Q(transaction_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due_idx"),
            models.Index(fields=["user", "-created_at"], name="notification_user_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.user_id} ({self.status})"


class NotificationPreference(models.Model):
    """A user's choice about optional emails. No row means the defaults (everything on)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    transaction_emails = models.BooleanField(
        default=True, help_text="Optional transaction updates; essential and security emails always go."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "notification_preferences"

    def __str__(self) -> str:
        return f"{self.user_id}: transaction_emails={self.transaction_emails}"
