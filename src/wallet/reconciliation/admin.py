"""Reconciliation for operators: stuck transactions (operator tasks), runs and discrepancies, monitor checks.

Everything is read-only: these rows are what the jobs saw. CSV export of discrepancies for the finance team.
"""

import csv
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from wallet.reconciliation.models import Discrepancy, InvariantCheck, ReconciliationRun, StuckTransaction
from wallet.reconciliation.recovery import stuck_check_again


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StuckTransaction)
class StuckTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "transaction",
        "kind",
        "status",
        "checks",
        "first_seen_at",
        "next_check_at",
        "alerted_at",
        "last_result",
    )
    list_filter = ("status", "kind")
    search_fields = ("=transaction__id",)
    ordering = ("-first_seen_at",)
    readonly_fields = [f.name for f in StuckTransaction._meta.fields]
    actions = ("check_again",)

    @admin.action(description="Check again now (operator tasks go back under watch)")
    def check_again(self, request: HttpRequest, queryset: QuerySet[StuckTransaction]) -> None:
        count = stuck_check_again(stuck_ids=list(queryset.values_list("id", flat=True)), now=timezone.now())
        self.message_user(request, f"{count} will be checked by the next recovery run.", messages.SUCCESS)


class DiscrepancyInline(admin.TabularInline[Discrepancy, ReconciliationRun]):
    model = Discrepancy
    extra = 0
    can_delete = False
    fields = ("kind", "transaction", "object_type", "object_id", "detail", "proposal")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "period_start",
        "period_end",
        "status",
        "deposits_checked",
        "withdrawals_checked",
        "events_checked",
        "discrepancies_found",
        "started_at",
        "triggered_by",
    )
    list_filter = ("status",)
    ordering = ("-started_at",)
    readonly_fields = [f.name for f in ReconciliationRun._meta.fields]
    inlines = (DiscrepancyInline,)


def discrepancies_csv(queryset: QuerySet[Discrepancy]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="discrepancies.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            *("run", "period_start", "period_end", "kind", "transaction", "object_type", "object_id"),
            *("our_status", "our_amount", "our_currency", "revio_status", "revio_amount", "revio_currency"),
            *("detail", "proposal", "created_at"),
        ]
    )
    for row in queryset.select_related("run").order_by("run_id", "id"):
        ours, theirs = row.ours, row.theirs
        cells = [
            *(row.run_id, row.run.period_start, row.run.period_end, row.kind, row.transaction_id or ""),
            *(row.object_type, row.object_id),
            *(ours.get("status", ""), ours.get("amount", ""), ours.get("currency", "")),
            *(theirs.get("status", ""), theirs.get("amount", ""), theirs.get("currency", "")),
            *(row.detail, row.proposal, row.created_at.isoformat()),
        ]
        # Every text cell: Revio's side (status, ids) is data from outside as much as the detail is.
        writer.writerow([_safe(cell) if isinstance(cell, str) else cell for cell in cells])
    return response


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: str) -> str:
    # Spreadsheets run cells that start with these as formulas (CSV injection, OWASP's list: TAB and CR
    # too); some also skip leading spaces or line breaks before the "=".
    starts = value[:1] in _FORMULA_STARTS or value.lstrip(" \n\r\t")[:1] in _FORMULA_STARTS
    return "'" + value if starts else value


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "kind", "transaction", "object_type", "object_id", "detail", "created_at")
    list_filter = ("kind", "object_type")
    search_fields = ("=object_id", "=transaction__id")
    ordering = ("-id",)
    readonly_fields = [f.name for f in Discrepancy._meta.fields]
    actions = ("export_csv",)

    @admin.action(description="Export selected discrepancies as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Discrepancy]) -> HttpResponse:
        return discrepancies_csv(queryset)


@admin.register(InvariantCheck)
class InvariantCheckAdmin(ReadOnlyAdmin):
    list_display = ("id", "checked_at", "ok", "duration_ms")
    list_filter = ("ok",)
    ordering = ("-checked_at",)
    readonly_fields = [f.name for f in InvariantCheck._meta.fields]
