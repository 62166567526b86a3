"""Corrections in the operations console: propose (the add form), then another admin approves or rejects.

Every field of a saved proposal is read-only; the money moves only when a different admin approves it,
through the service, which posts the ledger journal and writes the audit row.
"""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from wallet.accounts.public import User
from wallet.adjustments import services
from wallet.adjustments.models import AdjustmentProposal, ProposalStatus
from wallet.adjustments.selectors import adjustment_effective_status
from wallet.core.console import (
    FourEyesDecisionsMixin,
    ProposalForm,
    ProposeThenReadOnlyMixin,
    console_client_ip,
)


class AdjustmentProposeForm(ProposalForm):
    class Meta:
        model = AdjustmentProposal
        fields = ("user", "amount", "currency", "reason_code", "reason", "discrepancy_id")
        help_texts = {
            "amount": "Minor units (cents), signed: 2500 credits R25.00, -2500 debits it.",
            "discrepancy_id": "The reconciliation discrepancy this corrects, if any.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["currency"].initial = settings.WALLET_CURRENCY

    def proposal_input(self) -> services.ProposalInput:
        data = self.cleaned_data
        return services.ProposalInput(
            user_id=data["user"].id,
            amount=data["amount"],
            currency=data["currency"],
            reason_code=data["reason_code"],
            reason=data["reason"],
            discrepancy_id=data.get("discrepancy_id"),
        )

    def validate_proposal(self, proposer: Any, cleaned: dict[str, Any]) -> None:
        services.adjustment_validate(proposed_by=proposer, data=self.proposal_input())


@admin.register(AdjustmentProposal)
class AdjustmentProposalAdmin(
    ProposeThenReadOnlyMixin, FourEyesDecisionsMixin, admin.ModelAdmin[AdjustmentProposal]
):
    list_display = (
        "proposed_at",
        "user",
        "amount_display",
        "reason_code",
        "status_display",
        "proposed_by",
        "decided_by",
        "expires_at",
        "journal_link",
    )
    list_filter = ("status", "reason_code", "currency")
    search_fields = ("=id", "user__email", "proposed_by__email")
    list_select_related = ("user", "proposed_by", "decided_by")
    ordering = ("-proposed_at",)
    actions = ("approve_selected", "reject_selected")
    propose_form = AdjustmentProposeForm
    decided_noun = "correction(s)"
    approved_verb = "Approved and posted"
    raw_id_fields = ("user",)
    readonly_fields = (
        "id",
        "user",
        "amount",
        "currency",
        "reason_code",
        "reason",
        "discrepancy_id",
        "status_display",
        "proposed_by",
        "proposed_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "journal_link",
    )

    def save_model(self, request: HttpRequest, obj: AdjustmentProposal, form: Any, change: bool) -> None:
        proposer = request.user
        assert isinstance(proposer, User)  # noqa: S101 - only admins reach the admin site
        proposal = services.adjustment_propose(
            proposed_by=proposer,
            data=form.proposal_input(),
            now=timezone.now(),
            ip=console_client_ip(request),
        )
        # The admin goes on to log and link the object it was given: point it at the row the service wrote.
        obj.pk = proposal.pk
        obj.expires_at = proposal.expires_at
        obj.proposed_by = proposal.proposed_by
        obj._state.adding = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: AdjustmentProposal) -> str:
        return f"{obj.amount / 100:+,.2f} {obj.currency}"

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: AdjustmentProposal) -> str:
        return str(ProposalStatus(adjustment_effective_status(proposal=obj, now=timezone.now())).label)

    @admin.display(description="journal")
    def journal_link(self, obj: AdjustmentProposal) -> str:
        if obj.journal_id is None:
            return "-"
        url = reverse("admin:ledger_journal_change", args=[obj.journal_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.journal_id)[:8])

    def decide_one(self, obj: AdjustmentProposal, *, decider: Any, approve: bool, ip: str | None) -> None:
        if approve:
            services.adjustment_approve(proposal_id=obj.id, approver=decider, now=timezone.now(), ip=ip)
        else:
            services.adjustment_reject(
                proposal_id=obj.id,
                rejecter=decider,
                note="rejected in the operations console",
                now=timezone.now(),
                ip=ip,
            )

    @admin.action(description="Approve the selected corrections (posts them to the ledger)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[AdjustmentProposal]) -> None:
        self.decide_selected(request, queryset, approve=True)

    @admin.action(description="Reject the selected corrections")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[AdjustmentProposal]) -> None:
        self.decide_selected(request, queryset, approve=False)
