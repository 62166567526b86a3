"""The operations console's forms and operator-specific admins (imported after the app registry is ready)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from rest_framework.request import Request

from wallet.accounts.errors import InvalidCredentialsError
from wallet.accounts.four_eyes import admin_grant_reject, admin_grant_request
from wallet.accounts.lockout import AccountLockedError, AccountLoginRateLimitedError
from wallet.accounts.models import AdminGrant, User, normalize_email
from wallet.accounts.services import credentials_check, user_create_by_admin, user_update
from wallet.core.errors import ApplicationError
from wallet.core.http.throttling import client_ip
from wallet.ledger.models import Journal
from wallet.transactions.models import Transaction


def _client_ip(request: HttpRequest | None) -> str | None:
    """The client's address by the API's rule (TRUSTED_PROXY_COUNT), so lockouts key on the same address."""
    return client_ip(Request(request)) if request is not None else None


class AuditedAdminAuthenticationForm(AdminAuthenticationForm):
    """The console's login: the API's login check (accounts' credentials_check), so the same lockout per
    account and address and the same limit on failed logins per account apply, and every outcome (and each
    lockout) is audited. Only an active admin's right password gets in; anyone else gets the usual error."""

    def clean(self) -> dict[str, Any]:
        email = normalize_email(self.cleaned_data.get("username") or "")
        password = self.cleaned_data.get("password")
        self.cleaned_data["username"] = email
        if email and password:
            try:
                self.user_cache = credentials_check(
                    email=email,
                    password=password,
                    ip=_client_ip(self.request),
                    channel="admin",
                    require_admin=True,
                )
            except InvalidCredentialsError:
                raise self.get_invalid_login_error() from None
            except (AccountLockedError, AccountLoginRateLimitedError) as exc:
                raise ValidationError(exc.message, code="locked") from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


def install_operator_admins(site: admin.AdminSite) -> None:
    """Swap in the users and transactions admins below, built on whatever those apps registered, and take
    away console deletion everywhere: a deleted user, rejection or preference would leave no audit row,
    and nothing an operator needs is a deletion (deactivate a user instead)."""
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
    if not site.is_registered(AdminGrant):
        site.register(AdminGrant, AdminGrantAdmin)
    for model, model_admin in list(site._registry.items()):
        site.unregister(model)
        site.register(
            model, type(f"NoDelete{type(model_admin).__name__}", (NoDeleteMixin, type(model_admin)), {})
        )
    if any(name == "delete_selected" for name, _ in site.actions):
        site.disable_action("delete_selected")


class NoDeleteMixin:
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OperatorUserAdminMixin:
    """Every change goes through accounts' services, which audit it: email changes (the old address is told
    and sessions end), role removal and activation through user_update; the admin role through a four-eyes
    grant; new users through user_create_by_admin (role user, no usable password)."""

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("email", "role", "admin_duty", "is_active")
        return super().get_fields(request, obj)  # type: ignore[misc]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        actor = request.user
        assert isinstance(actor, User)  # noqa: S101 - only admins reach the admin site
        ip = _client_ip(request)
        data = form.cleaned_data
        saved: User | None = None
        try:
            if not change:
                saved = user_create_by_admin(
                    email=data["email"], is_active=data.get("is_active", True), actor=actor, ip=ip
                )
            else:
                saved = user_update(
                    user_id=str(obj.pk),
                    role=data.get("role") if data.get("role") != User.Role.ADMIN else None,
                    is_active=data.get("is_active"),
                    email=data.get("email") if "email" in form.changed_data else None,
                    actor=actor,
                    ip=ip,
                )
            wants_admin = data.get("role") == User.Role.ADMIN and not saved.is_admin
            duty = data.get("admin_duty") or User.Duty.OPERATIONS
            if wants_admin or (saved.is_admin and "admin_duty" in form.changed_data):
                outcome = admin_grant_request(
                    user_id=saved.pk, actor=actor, duty=duty, now=timezone.now(), ip=ip
                )
                if outcome.pending:
                    messages.warning(
                        request,
                        f"Admin role ({duty}) proposed for {saved.email}: a second admin must make the same "
                        "change (or approve it under Admin grants) before it takes effect.",
                    )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        # The form's object must show what the database holds, not what was typed.
        if saved is not None:
            refreshed = User.objects.get(pk=saved.pk)
            obj.__dict__.update({k: v for k, v in refreshed.__dict__.items() if not k.startswith("_")})
            obj._state.adding = False


class AdminGrantAdmin(admin.ModelAdmin[AdminGrant]):
    """Pending and past admin grants: a second admin approves here (or repeats the change on the user)."""

    list_display = (
        "user",
        "duty",
        "status",
        "proposed_by",
        "proposed_at",
        "expires_at",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status", "duty")
    search_fields = ("user__email",)
    readonly_fields = list_display
    fields = list_display
    actions = ("approve", "reject")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Approve the selected admin grants")
    def approve(self, request: HttpRequest, queryset: QuerySet[AdminGrant]) -> None:
        assert isinstance(request.user, User)  # noqa: S101 - only admins reach the admin site
        for grant in queryset.filter(status=AdminGrant.Status.PENDING):
            try:
                outcome = admin_grant_request(
                    user_id=grant.user_id,
                    actor=request.user,
                    duty=grant.duty,
                    now=timezone.now(),
                    ip=_client_ip(request),
                )
            except ApplicationError as exc:
                messages.error(request, f"{grant.user.email}: {exc.message}")
                continue
            if outcome.pending:
                messages.warning(
                    request, f"{grant.user.email}: you proposed this grant; a second admin must approve it."
                )
            else:
                messages.success(request, f"{grant.user.email} is now an admin ({grant.duty}).")

    @admin.action(description="Reject the selected admin grants")
    def reject(self, request: HttpRequest, queryset: QuerySet[AdminGrant]) -> None:
        assert isinstance(request.user, User)  # noqa: S101 - only admins reach the admin site
        for grant in queryset.filter(status=AdminGrant.Status.PENDING):
            try:
                admin_grant_reject(
                    grant_id=grant.pk, actor=request.user, now=timezone.now(), ip=_client_ip(request)
                )
            except ApplicationError as exc:
                messages.error(request, f"{grant.user.email}: {exc.message}")


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
