"""Deposits and withdrawals for operators: read-only, with their status history. Bank numbers stay masked.

Two four-eyes consoles decide what one finance admin proposed: withdrawal resolutions (unknown outcomes) and
refunds of deposits above REFUND_FOUR_EYES_THRESHOLD. Every decision goes through its service (audited,
under the balance lock); nothing here edits money."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from wallet.accounts.public import User
from wallet.core.console import (
    FourEyesDecisionsMixin,
    ProposalForm,
    ProposeThenReadOnlyMixin,
    console_client_ip,
)
from wallet.transactions import refunds, resolutions
from wallet.transactions.models import (
    DepositReversal,
    ReversalStatus,
    Transaction,
    TransactionEvent,
    WithdrawalResolution,
)


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


# -- operator resolution of unknown or disputed withdrawals (four eyes; transactions/resolutions.py) --------


class WithdrawalResolutionForm(ProposalForm):
    class Meta:
        model = WithdrawalResolution
        fields = ("withdrawal", "outcome", "payout_id", "note")
        help_texts = {
            "payout_id": "Revio's EFT payment id, for 'paid' (checked against Revio when it answers).",
            "note": "How you know: who at Revio confirmed it, which dashboard or bank statement.",
        }

    def validate_proposal(self, proposer: Any, cleaned: dict[str, Any]) -> None:
        resolutions.withdrawal_resolution_validate(
            withdrawal_id=cleaned["withdrawal"].id,
            proposed_by=proposer,
            outcome=cleaned["outcome"],
            note=cleaned.get("note", ""),
            payout_id=cleaned.get("payout_id", ""),
        )


@admin.register(WithdrawalResolution)
class WithdrawalResolutionAdmin(
    ProposeThenReadOnlyMixin, FourEyesDecisionsMixin, admin.ModelAdmin[WithdrawalResolution]
):
    """Propose with the add form; a different finance admin approves (applies it) or rejects."""

    list_display = (
        "proposed_at",
        "withdrawal",
        "outcome",
        "payout_id",
        "status",
        "proposed_by",
        "decided_by",
    )
    list_filter = ("status", "outcome")
    search_fields = ("=id", "=withdrawal__id", "=payout_id", "proposed_by__email")
    list_select_related = ("withdrawal", "proposed_by", "decided_by")
    ordering = ("-proposed_at",)
    actions = ("approve_selected", "reject_selected")
    propose_form = WithdrawalResolutionForm
    decided_noun = "resolution(s)"
    approved_verb = "Approved and applied"
    raw_id_fields = ("withdrawal",)
    readonly_fields = (
        "id",
        "withdrawal",
        "outcome",
        "payout_id",
        "verification",
        "note",
        "status",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decision_note",
    )

    def save_model(self, request: HttpRequest, obj: WithdrawalResolution, form: Any, change: bool) -> None:
        proposer = request.user
        assert isinstance(proposer, User)  # noqa: S101 - only admins reach the admin site
        data = form.cleaned_data
        resolution = resolutions.withdrawal_resolution_propose(
            withdrawal_id=data["withdrawal"].id,
            proposed_by=proposer,
            outcome=data["outcome"],
            note=data["note"],
            payout_id=data.get("payout_id", ""),
            now=timezone.now(),
            ip=console_client_ip(request),
        )
        # The admin goes on to log and link the object it was given: point it at the row the service wrote.
        obj.pk = resolution.pk
        obj.proposed_by = resolution.proposed_by
        obj._state.adding = False

    def decide_one(self, obj: WithdrawalResolution, *, decider: Any, approve: bool, ip: str | None) -> None:
        if approve:
            resolutions.withdrawal_resolution_approve(
                resolution_id=obj.id, approver=decider, now=timezone.now(), ip=ip
            )
        else:
            resolutions.withdrawal_resolution_reject(
                resolution_id=obj.id,
                rejecter=decider,
                note="rejected in the operations console",
                now=timezone.now(),
                ip=ip,
            )

    @admin.action(description="Approve the selected resolutions (settles or releases the reservation)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[WithdrawalResolution]) -> None:
        self.decide_selected(request, queryset, approve=True)

    @admin.action(description="Reject the selected resolutions")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[WithdrawalResolution]) -> None:
        self.decide_selected(request, queryset, approve=False)


# -- refunds of deposits (four eyes above REFUND_FOUR_EYES_THRESHOLD; transactions/refunds.py) ------------


@admin.register(DepositReversal)
class DepositReversalAdmin(FourEyesDecisionsMixin, admin.ModelAdmin[DepositReversal]):
    """Refunds and chargebacks of deposits, read-only. A refund is requested through the admin API
    (POST /api/v1/admin/deposits/{id}/refunds, with an Idempotency-Key); a proposed one is approved (debited
    and sent to Revio) or rejected (nothing moves) here by a finance admin other than its proposer."""

    list_display = (
        "created_at",
        "deposit",
        "kind",
        "status",
        "amount",
        "currency",
        "origin",
        "debt_created",
        "provider_payment_id",
    )
    list_filter = ("status", "kind", "origin")
    search_fields = ("=id", "=deposit__id", "=provider_payment_id", "deposit__user__email")
    list_select_related = ("deposit",)
    ordering = ("-created_at",)
    actions = ("approve_selected", "reject_selected")
    decided_noun = "refund(s)"
    approved_verb = "Approved (debited, refund sent to Revio)"
    readonly_fields = (
        "id",
        "deposit",
        "kind",
        "status",
        "origin",
        "amount",
        "currency",
        "allow_debt",
        "taken_from_available",
        "debt_created",
        "provider_payment_id",
        "requested_by_id",
        "approved_by_id",
        "reason",
        "failure_reason",
        "created_at",
        "updated_at",
        "completed_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requested through the API, which takes an Idempotency-Key

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decided by the actions, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def decidable(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(status=ReversalStatus.PROPOSED)  # a chargeback or a decided refund: not here

    def decide_one(self, obj: DepositReversal, *, decider: Any, approve: bool, ip: str | None) -> None:
        if approve:
            refunds.refund_approve(reversal_id=obj.id, actor=decider, ip=ip)
        else:
            refunds.refund_reject(
                reversal_id=obj.id, actor=decider, note="rejected in the operations console", ip=ip
            )

    @admin.action(description="Approve the selected proposed refunds (debits the user, refunds the card)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[DepositReversal]) -> None:
        self.decide_selected(request, queryset, approve=True)

    @admin.action(description="Reject the selected proposed refunds (nothing moves)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[DepositReversal]) -> None:
        self.decide_selected(request, queryset, approve=False)
