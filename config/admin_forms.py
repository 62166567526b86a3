"""The operations console's forms and operator-specific admins (imported after the app registry is ready)."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from wallet.accounts.models import User, normalize_email
from wallet.accounts.services import user_update
from wallet.audit import public as audit
from wallet.ledger.models import Journal
from wallet.transactions.models import Transaction


def _client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


class AuditedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login, with the email normalised as the API does, and both outcomes audited."""

    def clean(self) -> dict[str, Any]:
        email = normalize_email(self.cleaned_data.get("username") or "")
        self.cleaned_data["username"] = email
        try:
            cleaned = super().clean()
        except ValidationError:
            audit.audit_record(
                action=audit.AuditAction.LOGIN_FAILED,
                ip=_client_ip(self.request),
                details={"email": email, "channel": "admin"},
            )
            raise
        user = self.get_user()
        audit.audit_record(
            action=audit.AuditAction.LOGIN_SUCCEEDED,
            actor=user,
            subject=user,
            ip=_client_ip(self.request),
            details={"channel": "admin"},
        )
        return cleaned


def install_operator_admins(site: admin.AdminSite) -> None:
    """Swap in the users and transactions admins below, built on whatever those apps registered."""
    if site.is_registered(User):
        base_user_admin: type[Any] = type(site.get_model_admin(User))
        site.unregister(User)
        site.register(User, type("OperatorUserAdmin", (OperatorUserAdminMixin, base_user_admin), {}))
    if site.is_registered(Transaction):
        base_txn_admin: type[Any] = type(site.get_model_admin(Transaction))
        site.unregister(Transaction)
        site.register(
            Transaction,
            type("OperatorTransactionAdmin", (OperatorTransactionAdminMixin, base_txn_admin), {}),
        )


class OperatorUserAdminMixin:
    """Role and active changes go through accounts' user_update, which revokes tokens and audits them."""

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)  # type: ignore[misc]
            return
        actor = request.user if isinstance(request.user, User) else None
        saved = user_update(
            user_id=str(obj.pk),
            role=form.cleaned_data.get("role"),
            is_active=form.cleaned_data.get("is_active"),
            actor=actor,
            ip=_client_ip(request),
        )
        if "email" in form.changed_data:
            User.objects.filter(pk=obj.pk).update(email=normalize_email(obj.email))
        obj.refresh_from_db()
        assert obj.role == saved.role  # noqa: S101 - the service wrote it


class OperatorTransactionAdminMixin:
    """Each deposit or withdrawal links to the ledger journals it posted."""

    def get_list_display(self, request: HttpRequest) -> Any:
        return (*super().get_list_display(request), "journals_link")  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_fields(request, obj), "ledger_journals")  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "ledger_journals")  # type: ignore[misc]

    @admin.display(description="journals")
    def journals_link(self, obj: Transaction) -> str:
        url = reverse("admin:ledger_journal_changelist") + f"?q={obj.pk}"
        return format_html('<a href="{}">journals</a>', url)

    @admin.display(description="ledger journals")
    def ledger_journals(self, obj: Transaction) -> str:
        journals = Journal.objects.filter(transaction_id=obj.pk).order_by("created_at")
        if not journals:
            return "none posted"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:ledger_journal_change", args=[j.pk]), j.get_kind_display()) for j in journals),
        )
