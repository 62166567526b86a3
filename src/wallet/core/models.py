"""Records shared by the API: Idempotency-Key bookkeeping."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of one user: what it was used for and the response it produced.

    Created in the same database transaction as the money movement it protects; completed with the exact
    response bytes once the request finishes, so a retry gets the same status and body.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=64, help_text="The operation, e.g. 'withdrawal_create'.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the operation and request body.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    resource_id = models.UUIDField(null=True, blank=True, default=None)
    locked_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
