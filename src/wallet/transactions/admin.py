"""Deposits and withdrawals for operators: read-only, with their status history. Bank numbers stay masked."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from wallet.transactions.models import Transaction, TransactionEvent


class TransactionEventInline(admin.TabularInline[TransactionEvent, Transaction]):
    model = TransactionEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "source", "detail")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin[Transaction]):
    list_display = ("id", "type", "status", "amount", "currency", "user", "needs_review", "created_at")
    list_filter = ("type", "status", "needs_review", "currency")
    search_fields = ("=id", "=provider_object_id", "user__email")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    inlines = (TransactionEventInline,)
    # The encrypted bank details are never shown; only the masked number and the public parts are.
    fields = (
        "id",
        "user",
        "type",
        "status",
        "amount",
        "currency",
        "provider_object_id",
        "provider_status",
        "checkout_url",
        "bank_account_holder",
        "bank_account_masked",
        "bank_code",
        "bank_account_type",
        "failure_reason",
        "needs_review",
        "review_reason",
        "created_at",
        "updated_at",
        "completed_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Money is never edited by hand: status changes go through the services and their journals.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
