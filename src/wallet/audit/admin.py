"""The audit log for operators: read-only, filterable; nothing here can change or delete a row."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from wallet.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = ("id", "created_at", "action", "actor_email", "subject_type", "subject_id", "ip")
    list_filter = ("action", "subject_type")
    search_fields = ("=actor_email", "=subject_id", "=ip")
    ordering = ("-id",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "created_at",
        "action",
        "actor_id",
        "actor_email",
        "subject_type",
        "subject_id",
        "ip",
        "details_pretty",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    @admin.display(description="details")
    def details_pretty(self, obj: AuditEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
