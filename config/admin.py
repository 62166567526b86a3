"""The operations console: the Django admin, grouped and ordered for an operator, with audited logins.

`OpsAdminConfig` replaces `django.contrib.admin` in INSTALLED_APPS, so `admin.site` is `OpsAdminSite` and
every app's `@admin.register` lands here (including apps written later, which appear after the sections).
After autodiscovery it swaps in two operator-specific admins: users (role and active changes go through the
accounts service, which audits them) and transactions (with links to their ledger journals).

Only active admins get in: `User.is_staff` is derived from the role.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

# (section title, [(app label, model class name or "*")]), in the order an operator reads them.
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Users and balances",
        [
            ("accounts", "User"),
            ("accounts", "AdminGrant"),
            ("ledger", "Balance"),
            ("ledger", "LedgerAccount"),
        ],
    ),
    (
        "Transactions and ledger journals",
        [("transactions", "*"), ("ledger", "Journal"), ("ledger", "Entry")],
    ),
    ("Webhook log and dead letters", [("webhooks", "*")]),
    ("Notifications", [("notifications", "*")]),
    ("Outgoing events", [("events", "EventEndpoint"), ("events", "Delivery"), ("events", "Event")]),
    ("Reconciliation", [("reconciliation", "*")]),
    ("Balance corrections (four eyes)", [("adjustments", "*")]),
    ("Audit log", [("audit", "*")]),
]


def _client_ip(request: HttpRequest) -> str | None:
    from wallet.core.console import console_client_ip

    return console_client_ip(request)


def _login_rate_limited(request: HttpRequest) -> float | None:
    """Seconds to wait if this address is over the login_ip limit (shared with the API login), else None."""
    from rest_framework.request import Request

    from wallet.core.http.throttling import PerClientIp, limits

    (throttle_class,) = limits(("login_ip", PerClientIp))
    throttle = throttle_class()
    if throttle.allow_request(Request(request), None):
        return None
    return throttle.wait() or 1.0


class OpsAdminSite(admin.AdminSite):
    site_header = "Wallet operations"
    site_title = "Wallet operations"
    index_title = "Site administration"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:  # one app's own page: as Django builds it
            return apps
        entries = [(app, model) for app in apps for model in app["models"]]
        used: set[tuple[str, str]] = set()
        sections: list[dict[str, Any]] = []
        for title, patterns in SECTIONS:
            chosen: list[tuple[dict[str, Any], dict[str, Any]]] = []
            for label, name in patterns:
                for app, model in entries:
                    key = (app["app_label"], model["object_name"])
                    if key not in used and app["app_label"] == label and name in ("*", model["object_name"]):
                        chosen.append((app, model))
                        used.add(key)
            if chosen:
                first = chosen[0][0]
                sections.append(
                    {
                        "name": title,
                        "app_label": first["app_label"],
                        "app_url": first["app_url"],
                        "has_module_perms": True,
                        "models": [model for _, model in chosen],
                    }
                )
        for app in apps:  # anything not placed above, in Django's order, after the operator's sections
            rest = [m for m in app["models"] if (app["app_label"], m["object_name"]) not in used]
            if rest:
                sections.append({**app, "models": rest})
        return sections

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from config.admin_forms import AuditedAdminAuthenticationForm  # imports models: not at load time

        if request.method == "POST":
            # The API login's per-address limit (and its Redis counter): each attempt costs a password hash,
            # and this page is outside the API's load shedding. Lockouts are the form's (the API's too).
            wait = _login_rate_limited(request)
            if wait is not None:
                response = HttpResponse(
                    "Too many login attempts from your address; try again later.",
                    status=429,
                    content_type="text/plain",
                )
                response["Retry-After"] = str(max(int(wait + 0.999), 1))
                return response
        self.login_form = AuditedAdminAuthenticationForm
        return super().login(request, extra_context)

    def logout(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        if request.method == "POST" and request.user.is_authenticated:
            from wallet.audit import public as audit

            audit.audit_record(
                action=audit.AuditAction.LOGOUT,
                actor=request.user,
                subject=request.user,
                ip=_client_ip(request),
                details={"channel": "admin"},
            )
        return super().logout(request, extra_context)


class OpsAdminConfig(AdminConfig):
    default_site = "config.admin.OpsAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin.py into admin.site
        from config.admin_forms import install_operator_admins

        install_operator_admins(admin.site)
