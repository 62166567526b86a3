"""Outgoing events in the console: endpoints (read-only here; the admin API changes them, so every change
goes through the SSRF check), deliveries with their attempts, and a replay action (admins only)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from wallet.core.console import console_client_ip
from wallet.events import services
from wallet.events.models import Delivery, DeliveryAttempt, Event, EventEndpoint


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EventEndpoint)
class EventEndpointAdmin(_ReadOnly):
    list_display = (
        "url",
        "description",
        "enabled",
        "event_types",
        "secret_rotated_at",
        "created_at",
        "deleted_at",
    )
    list_filter = ("enabled",)
    search_fields = ("url", "description", "=id")
    ordering = ("-created_at",)
    # The encrypted secrets are never shown.
    fields = (
        "id",
        "url",
        "description",
        "event_types",
        "enabled",
        "secret_rotated_at",
        "created_at",
        "updated_at",
        "deleted_at",
    )
    readonly_fields = fields


@admin.register(Event)
class EventAdmin(_ReadOnly):
    list_display = ("id", "type", "user_id", "transaction_id", "created_at")
    list_filter = ("type",)
    search_fields = ("=id", "=transaction_id", "=user_id")
    ordering = ("-created_at",)
    readonly_fields = [f.name for f in Event._meta.fields]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "status_code", "latency_ms", "error", "response_excerpt", "succeeded")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly):
    list_display = (
        "id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event__type")
    search_fields = ("=event__id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    ordering = ("-created_at",)
    readonly_fields = [f.name for f in Delivery._meta.fields if f.name != "lease_token"]
    exclude = ("lease_token",)
    inlines = (DeliveryAttemptInline,)
    actions = ("replay",)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_admin", False) and request.user.is_active)

    @admin.action(
        description="Replay the selected deliveries (same event id and body)", permissions=["replay"]
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        queued = services.event_replay_deliveries(
            delivery_ids=ids, now=timezone.now(), actor=request.user, ip=console_client_ip(request)
        )
        self.message_user(
            request,
            f"Queued {queued} of {len(ids)} delivery(ies) again; one being sent right now is left to finish.",
            messages.SUCCESS if queued else messages.WARNING,
        )
