"""Read-only views of the books: nothing in the ledger is ever edited by hand."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from wallet.ledger.models import Balance, Entry, Journal, LedgerAccount


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EntryInline(admin.TabularInline[Entry, Journal]):
    model = Entry
    extra = 0
    can_delete = False
    fields = ("account", "amount", "currency", "effective_at", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Journal)
class JournalAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "transaction_id", "effective_at", "created_at")
    list_filter = ("kind",)
    search_fields = ("=id", "=transaction_id")
    inlines = (EntryInline,)


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ("user", "currency", "available", "reserved", "updated_at")
    search_fields = ("user__email",)
    list_select_related = ("user",)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "user", "currency", "created_at")
    list_filter = ("kind", "currency")
