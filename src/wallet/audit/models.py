"""The audit log: one append-only row per sensitive action, each chained to the one before by hash.

Row n stores `prev_hash` (row n-1's hash) and `hash` = SHA-256 over a canonical serialisation of its own
fields and `prev_hash` (wallet.audit.chain). Editing or deleting a row in the middle breaks the chain at that
row or the next one; deleting rows at the end is caught by the chain head, the single row that records the
last id and hash and that every writer locks. The database refuses UPDATE and DELETE on the events table
(migration 0002).
"""

from django.db import models
from django.utils import timezone


class AuditAction(models.TextChoices):
    LOGIN_SUCCEEDED = "login_succeeded", "Login succeeded"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOGOUT = "logout", "Logout"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
    PASSWORD_RESET_COMPLETED = "password_reset_completed", "Password reset completed"
    LOGIN_LOCKED_OUT = "login_locked_out", "Login locked out"
    USER_CREATED = "user_created", "User created in the console"
    USER_REGISTRATION_REFUSED = "user_registration_refused", "Registration for an email that has an account"
    USER_EMAIL_CHANGED = "user_email_changed", "User email changed"
    USER_ROLE_CHANGED = "user_role_changed", "User role changed"
    ADMIN_GRANT_PROPOSED = "admin_grant_proposed", "Admin role grant proposed"
    ADMIN_GRANT_APPROVED = "admin_grant_approved", "Admin role grant approved"
    ADMIN_GRANT_REJECTED = "admin_grant_rejected", "Admin role grant rejected"
    USER_ACTIVE_CHANGED = "user_active_changed", "User activated or deactivated"
    ADJUSTMENT_PROPOSED = "adjustment_proposed", "Balance correction proposed"
    ADJUSTMENT_APPROVED = "adjustment_approved", "Balance correction approved and posted"
    ADJUSTMENT_REJECTED = "adjustment_rejected", "Balance correction rejected"
    ADJUSTMENT_EXPIRED = "adjustment_expired", "Balance correction expired"
    WEBHOOK_REPLAYED = "webhook_replayed", "Webhook event replayed"
    NOTIFICATION_RESENT = "notification_resent", "Notification resent"
    KEY_ROTATED = "key_rotated", "Key rotated"
    EVENT_ENDPOINT_CHANGED = (
        "event_endpoint_changed",
        "Outgoing event endpoint registered, changed or deleted",
    )
    STATEMENT_PRODUCED = "statement_produced", "Statement produced for a user by an admin"
    WITHDRAWAL_RESOLUTION_PROPOSED = "withdrawal_resolution_proposed", "Withdrawal resolution proposed"
    WITHDRAWAL_RESOLUTION_APPROVED = "withdrawal_resolution_approved", "Withdrawal resolution applied"
    WITHDRAWAL_RESOLUTION_REJECTED = "withdrawal_resolution_rejected", "Withdrawal resolution rejected"
    REFUND_REQUESTED = "refund_requested", "Deposit refund requested (debited, sent to Revio)"
    REFUND_PROPOSED = "refund_proposed", "Deposit refund proposed (awaiting a second admin)"
    REFUND_APPROVED = "refund_approved", "Deposit refund approved by a second admin"
    REFUND_REJECTED = "refund_rejected", "Deposit refund proposal rejected by a second admin"


class AuditEvent(models.Model):
    # Assigned by the writer under the chain lock: contiguous, so a missing row shows as a gap.
    id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    # A snapshot of who did it, not a foreign key: the log outlives and never constrains the users table.
    actor_id = models.UUIDField(null=True, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    subject_type = models.CharField(max_length=64, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "audit_events"
        indexes = [
            models.Index(fields=["action", "-id"], name="audit_event_action_idx"),
            models.Index(fields=["actor_id", "-id"], name="audit_event_actor_idx"),
            models.Index(fields=["subject_type", "subject_id"], name="audit_event_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} by {self.actor_email or 'system'}"


class AuditChainHead(models.Model):
    """The single row (id 1) naming the last event; writers lock it, so the chain cannot fork."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        db_table = "audit_chain_head"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_single_row")]

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_id}"
