"""Outgoing events: the client backend's endpoints, the event log, and each event's delivery to each endpoint.

The event log is the outbox: an Event row is written in the database transaction of the change it reports,
with one Delivery per subscribed endpoint. A Delivery is the queue of record for sending that event to that
endpoint (claimed with a lease, retried, dead-lettered, replayed); every HTTP attempt is a DeliveryAttempt.
"""

import uuid

from django.db import models
from django.utils import timezone


class EventEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=255, blank=True)
    # Exact event types or family wildcards ("refund.*"); empty means every type (wallet.events.catalogue).
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    # Fernet-encrypted JSON (wallet.core.crypto): {"secrets": [{"secret", "retires_at"}, ...]}, the newest
    # first. The newest has no retires_at; an older one signs alongside it until its retires_at (rotation).
    secrets_encrypted = models.TextField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # Deleted endpoints are kept (their deliveries are the record of what was sent) but get nothing more.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "event_endpoints"
        indexes = [models.Index(fields=["-created_at"], name="event_endpoint_created_idx")]

    def __str__(self) -> str:
        return self.url


class Event(models.Model):
    """One fact for the client's backend. `id` is the stable event id: the same on every (re)delivery."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=64)
    user_id = models.UUIDField()
    # The deposit or withdrawal reported on, by id only: this app does not depend on that app's tables.
    transaction_id = models.UUIDField(null=True, blank=True)
    # The exact JSON body sent, built once: every delivery and replay sends (and signs) the same bytes.
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "events"
        constraints = [
            # A re-applied state can never emit a second event for one transaction and type.
            models.UniqueConstraint(
                fields=["transaction_id", "type"],
                name="event_transaction_type_unique",
                condition=models.Q(transaction_id__isnull=False),
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="event_created_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (due at next_attempt_at)"
    DELIVERING = "delivering", "Being delivered (leased)"
    DELIVERED = "delivered", "Delivered (2xx)"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered after the last attempt"
    CANCELLED = "cancelled", "Cancelled (endpoint disabled or deleted)"


class Delivery(models.Model):
    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(EventEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # The claim: whoever holds lease_token until lease_expires_at is the only one sending this delivery.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "event_deliveries"
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="event_delivery_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="event_delivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="event_delivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        db_table = "event_delivery_attempts"
        indexes = [models.Index(fields=["delivery", "id"], name="event_attempt_delivery_idx")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"
