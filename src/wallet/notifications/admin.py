"""The outbox in the admin: read-only rows, and a resend action for the failed ones (admins only)."""

import uuid
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from wallet.audit import public as audit
from wallet.core.console import console_client_ip
from wallet.notifications import services
from wallet.notifications.models import Notification, NotificationPreference, NotificationStatus


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    list_display = ("event", "user", "status", "attempts", "created_at", "sent_at", "next_attempt_at")
    list_filter = ("status", "event")
    search_fields = ("=id", "=transaction_id", "user__email")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    # The stored context can hold a password-reset link until it is sent: never shown here.
    fields = (
        "id",
        "event",
        "user",
        "transaction_id",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "provider_message_id",
        "created_at",
        "updated_at",
        "sent_at",
    )
    readonly_fields = fields
    actions = ("resend",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_admin", False) and request.user.is_active)

    @admin.action(description="Resend the selected failed notifications", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        ids: list[uuid.UUID] = list(queryset.values_list("id", flat=True))
        queued = services.notification_resend(notification_ids=ids, now=timezone.now())
        audit.audit_record(
            action=audit.AuditAction.NOTIFICATION_RESENT,
            actor=request.user,
            ip=console_client_ip(request),
            details={"notification_ids": [str(i) for i in ids], "queued": queued},
        )
        skipped = len(ids) - queued
        self.message_user(request, f"Queued {queued} notification(s) to be sent again.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} were not failed ({NotificationStatus.SENT.label.lower()} or still pending); "
                "an email that was sent is never sent twice.",
                messages.WARNING,
            )


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin[NotificationPreference]):
    list_display = ("user", "transaction_emails", "updated_at")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    readonly_fields = ("user", "transaction_emails", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
