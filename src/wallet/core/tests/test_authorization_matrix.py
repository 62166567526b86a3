"""Every API route against every kind of caller (anonymous, owner, another user, admin).

The matrix must name every route under /api/v1/: a new endpoint without a row fails this test.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from conftest import login
from wallet.accounts.models import User
from wallet.core import crypto
from wallet.events.models import EventEndpoint
from wallet.transactions.models import DepositReversal, Transaction

pytestmark = pytest.mark.django_db

ANON, OWNER, OTHER, ADMIN = "anonymous", "owner", "other user", "admin"
# What each caller may see: "ok" (a 2xx or a 4xx about the input, never about who is asking), or a status.
PUBLIC = {ANON: "ok", OWNER: "ok", OTHER: "ok", ADMIN: "ok"}
SIGNED_IN = {ANON: 401, OWNER: "ok", OTHER: "ok", ADMIN: "ok"}
OWN_OBJECT = {ANON: 401, OWNER: "ok", OTHER: 404, ADMIN: 404}  # the user API shows only your own money
ADMIN_ONLY = {ANON: 401, OWNER: 403, OTHER: 403, ADMIN: "ok"}

# (route, method, body) -> expectations; {deposit} and {user} are filled in with the owner's objects.
MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = [
    ("api/v1/auth/register", "post", {"email": "matrix@example.com", "password": "x"}, PUBLIC),
    ("api/v1/auth/token", "post", {"email": "nobody@example.com", "password": "x"}, PUBLIC),
    ("api/v1/auth/token/refresh", "post", {"refresh": "x"}, PUBLIC),
    ("api/v1/auth/logout", "post", {"refresh": "x"}, PUBLIC),
    ("api/v1/auth/password-reset", "post", {"email": "nobody@example.com"}, PUBLIC),
    ("api/v1/auth/password-reset/confirm", "post", {"token": "x", "new_password": "x"}, PUBLIC),
    ("api/v1/webhooks/revio", "post", {}, PUBLIC),
    ("api/v1/webhooks/revio/eft", "post", {}, PUBLIC),
    ("api/v1/schema/", "get", None, PUBLIC),
    ("api/v1/docs/", "get", None, PUBLIC),
    ("api/v1/me", "get", None, SIGNED_IN),
    ("api/v1/me/password", "post", {}, SIGNED_IN),
    ("api/v1/me/notifications", "get", None, SIGNED_IN),
    ("api/v1/balance", "get", None, SIGNED_IN),
    ("api/v1/balance/entries", "get", None, SIGNED_IN),
    ("api/v1/transactions", "get", None, SIGNED_IN),
    ("api/v1/deposits", "post", {}, SIGNED_IN),
    ("api/v1/withdrawals", "post", {}, SIGNED_IN),
    ("api/v1/transactions/<uuid:transaction_id>", "get", None, OWN_OBJECT),
    ("api/v1/deposits/<uuid:transaction_id>", "get", None, OWN_OBJECT),
    ("api/v1/withdrawals/<uuid:transaction_id>", "get", None, {**OWN_OBJECT, OWNER: 404}),  # it is a deposit
    ("api/v1/admin/users", "get", None, ADMIN_ONLY),
    ("api/v1/admin/users/<uuid:user_id>", "get", None, ADMIN_ONLY),
    ("api/v1/admin/users/<uuid:user_id>", "patch", {}, ADMIN_ONLY),
    ("api/v1/statements", "get", None, SIGNED_IN),
    ("api/v1/admin/users/<uuid:user_id>/statement", "get", None, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints", "get", None, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints", "post", {"url": "http://127.0.0.1:9/"}, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints/<uuid:endpoint_id>", "get", None, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints/<uuid:endpoint_id>", "patch", {}, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints/<uuid:endpoint_id>/rotate-secret", "post", {}, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints/<uuid:endpoint_id>/deliveries", "get", None, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints/<uuid:endpoint_id>/replay", "post", {}, ADMIN_ONLY),
    ("api/v1/admin/event-endpoints/<uuid:endpoint_id>", "delete", None, ADMIN_ONLY),
    ("api/v1/admin/deposits/<uuid:transaction_id>/refunds", "post", {}, ADMIN_ONLY),
    # The matrix's admin has the operations duty: approving a refund is finance's (403 admin_required).
    ("api/v1/admin/refunds/<uuid:refund_id>/approve", "post", {}, {**ADMIN_ONLY, ADMIN: 403}),
    ("api/v1/admin/refunds/<uuid:refund_id>/reject", "post", {}, {**ADMIN_ONLY, ADMIN: 403}),
]


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def test_the_matrix_names_every_api_route() -> None:
    api_routes = {route for route in _routes(get_resolver().url_patterns) if route.startswith("api/v1/")}
    assert api_routes == {route for route, *_ in MATRIX}


@pytest.fixture
def callers(make_user: Callable[..., User]) -> dict[str, APIClient]:
    clients = {ANON: APIClient()}
    for name, role in ((OWNER, "user"), (OTHER, "user"), (ADMIN, "admin")):
        user = make_user(email=f"{name.replace(' ', '')}@example.com", role=role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, user.email)['access']}")
        clients[name] = client
    return clients


@pytest.mark.parametrize(
    ("route", "method", "body", "expected"), MATRIX, ids=[f"{m} {r}" for r, m, *_ in MATRIX]
)
def test_each_caller_gets_what_the_matrix_says(
    callers: dict[str, APIClient],
    route: str,
    method: str,
    body: dict[str, Any] | None,
    expected: dict[str, Any],
) -> None:
    owner = User.objects.get(email="owner@example.com")
    deposit = Transaction.objects.create(user=owner, type="deposit", amount=5_000, currency="ZAR")
    endpoint = EventEndpoint.objects.create(
        url="http://127.0.0.1:9/",
        secrets_encrypted=crypto.encrypt_json({"secrets": [{"secret": "whsec_matrix", "retires_at": None}]}),
    )
    proposed = DepositReversal.objects.create(
        deposit=deposit, kind="refund", status="proposed", origin="admin", amount=1_000, currency="ZAR"
    )
    path = "/" + route.replace("<uuid:transaction_id>", str(deposit.id)).replace(
        "<uuid:user_id>", str(owner.id)
    ).replace("<uuid:endpoint_id>", str(endpoint.id))
    path = path.replace("<uuid:refund_id>", str(proposed.id))
    for caller, want in expected.items():
        client = callers[caller]
        response = (
            getattr(client, method)(path, body, format="json")
            if body is not None
            else getattr(client, method)(path)
        )
        if want == "ok":
            # Let in: it may still refuse bad input (even a 401 for a bad password or signature in the body),
            # but never for who is asking.
            code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
            assert code not in ("not_authenticated", "permission_denied", "not_found"), (caller, code)
            assert response.status_code not in (403, 404, 405), (caller, response.status_code)
            assert response.status_code < 500, (caller, response.content)
        else:
            assert response.status_code == want, (caller, response.status_code, response.content[:200])
