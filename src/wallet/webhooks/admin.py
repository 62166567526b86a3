"""The webhook log for operators: filter, read the raw body and errors, and replay what failed."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from wallet.core.console import console_client_ip
from wallet.webhooks.models import WebhookLog, WebhookRejection, WebhookStatus
from wallet.webhooks.services import webhook_replay


@admin.register(WebhookLog)
class WebhookLogAdmin(admin.ModelAdmin[WebhookLog]):
    list_display = (
        "id",
        "event_type",
        "object_id",
        "status",
        "attempts",
        "duplicates",
        "received_at",
        "result",
    )
    list_filter = ("status", "event_type", "object_type")
    search_fields = ("=object_id", "=reference", "dedup_key")
    ordering = ("-received_at",)
    actions = ("replay",)
    readonly_fields = [f.name for f in WebhookLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Replay the selected failed or dead-lettered events")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookLog]) -> None:
        actor = getattr(request.user, "email", "admin")
        eligible = queryset.filter(status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD_LETTERED])
        ip = console_client_ip(request)
        replayed = sum(webhook_replay(log_id=log.id, actor=actor, ip=ip) for log in eligible)
        skipped = queryset.count() - replayed
        self.message_user(
            request,
            f"Replayed {replayed} event(s); skipped {skipped} not failed or dead-lettered.",
            messages.SUCCESS if replayed else messages.WARNING,
        )


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(admin.ModelAdmin[WebhookRejection]):
    list_display = ("received_at", "reason", "source_ip", "body_length", "detail")
    list_filter = ("reason",)
    ordering = ("-received_at",)
    readonly_fields = [f.name for f in WebhookRejection._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
