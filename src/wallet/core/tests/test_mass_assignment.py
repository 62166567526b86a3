"""Mass assignment: fields a caller must not set are ignored or refused by every writable endpoint.

The writable operations are read from the generated OpenAPI schema, so a new endpoint is covered without
editing this file: its body is built from the field values below (a new required field with an unknown name
fails the test until it gets a value here). Each operation is called once with a valid body (it must
succeed, or the test proves nothing) and once with the same body plus fields naming what only the system
may set: balance, status, owner, role, privileges, id, amount and currency. The second call must succeed
with them ignored or fail with a 4xx in the API's one error shape, and nothing they name may change.
"""

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from conftest import PASSWORD, login
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.testing import proof_size
from wallet.events import endpoints as event_endpoints
from wallet.ledger import public as ledger
from wallet.transactions import refunds
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, fund  # noqa: F401 - fund is a fixture

pytestmark = [pytest.mark.django_db, pytest.mark.proof]

# Signed by Revio and only a trigger to re-read the object from Revio (docs/security.md, API10): nothing in
# these bodies is assigned to anything.
NOT_CLIENT_WRITABLE = {"/api/v1/webhooks/revio", "/api/v1/webhooks/revio/eft"}

FOREIGN_ID = uuid.uuid4()
# What only the system may set, with values that would be worth an attacker's while.
INJECTED: dict[str, Any] = {
    "balance": 10**12,
    "available": 10**12,
    "reserved": 0,
    "debt": 0,
    "status": "completed",
    "user": str(FOREIGN_ID),
    "user_id": str(FOREIGN_ID),
    "owner": str(FOREIGN_ID),
    "role": "admin",
    "is_staff": True,
    "is_superuser": True,
    "is_active": False,
    "id": str(FOREIGN_ID),
    "amount": 10**9,
    "currency": "USD",
    "provider_object_id": "forged",
    "created_at": "2000-01-01T00:00:00Z",
}


def _state(*users: User) -> dict[str, Any]:
    """Everything an injected field could name, for the callers involved."""
    state: dict[str, Any] = {}
    for user in users:
        user.refresh_from_db()
        figures = ledger.balance_get(user_id=user.id, currency=django_settings.WALLET_CURRENCY)
        state[user.email] = {
            "role": user.role,
            "is_staff": getattr(user, "is_staff", False),
            "is_superuser": getattr(user, "is_superuser", False),
            "is_active": user.is_active,
            "balance": figures,
        }
    state["transactions"] = sorted(
        (str(t.id), str(t.user_id), t.status, t.amount, t.currency) for t in Transaction.objects.all()
    )
    state["users"] = User.objects.count()
    state["privileged"] = sorted(User.objects.filter(role=User.Role.ADMIN).values_list("email", flat=True))
    return state


def _writable_operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found = []
    for path, item in sorted(schema["paths"].items()):
        for method, operation in item.items():
            body = operation.get("requestBody")
            if method not in {"post", "put", "patch"} or body is None or path in NOT_CLIENT_WRITABLE:
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"]
            found.append((path, method, components[ref.rsplit("/", 1)[-1]]))
    return found


class Bodies:
    """Valid values for each field name the API takes, fresh for every call where they must be."""

    def __init__(self, *, user: User, target: User) -> None:
        self.user = user
        self.target = target
        self.counter = itertools.count()

    def value(self, name: str) -> Any:
        n = next(self.counter)
        values: dict[str, Callable[[], Any]] = {
            "email": lambda: f"mass-{n}@example.com",
            "password": lambda: f"a long passphrase number {n}",
            "new_password": lambda: f"another long passphrase {n}",
            "current_password": lambda: PASSWORD,
            "refresh": lambda: login(APIClient(), self.user.email)["refresh"],
            "token": lambda: self._reset_token(),
            "amount": lambda: 1_000 + n,
            "bank_account": lambda: dict(BANK),
            "role": lambda: User.Role.USER,
            "transaction_emails": lambda: bool(n % 2),
            "url": lambda: f"http://127.0.0.1:9/events/{n}",
            "created_after": lambda: "2026-01-01T00:00:00Z",
            "note": lambda: f"mass assignment {n}",
        }
        assert name in values, f"no value for the request field {name!r}: add one to Bodies.value"
        return values[name]()

    def _reset_token(self) -> str:
        # The token signs the last login and the password hash: read them as the database has them now
        # (a login a moment ago moved last_login; the in-memory user may be behind).
        self.user.refresh_from_db()
        return (
            f"{urlsafe_base64_encode(force_bytes(self.user.pk))}."
            f"{default_token_generator.make_token(self.user)}"
        )

    def build(self, component: dict[str, Any], path: str) -> dict[str, Any]:
        properties = component.get("properties", {})
        wanted = component.get("required") or list(properties)[:1]
        body = {name: self.value(name) for name in wanted}
        if path == "/api/v1/auth/token":
            body["email"] = self.user.email
            body["password"] = PASSWORD
        if path == "/api/v1/auth/password-reset":
            body["email"] = self.user.email
        return body


def test_no_writable_endpoint_lets_a_caller_set_what_only_the_system_sets(
    make_user: Callable[..., User],
    fund: Callable[[User, int], Transaction],  # noqa: F811 - the fixture imported above
    revio: SandboxProcess,
    report_figure: Callable[[str], None],
    settings: Any,
) -> None:
    # Two withdrawals per round stay open (the sandbox does not settle them): the risk limit on open ones
    # has its own tests.
    settings.WITHDRAWAL_MAX_OPEN = 1_000
    user = make_user(email="mass-user@example.com")
    # Finance (a superset of operations): admin refunds of deposits are finance's.
    admin = make_user(email="mass-admin@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)
    target = make_user(email="mass-target@example.com")
    fund(user, 100_000)
    target_deposit = fund(target, 100_000)  # what the admin refund endpoint refunds
    # A second finance admin proposes the refunds the caller rejects (four eyes), a fresh one for each call.
    proposer = make_user(
        email="mass-proposer@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE
    )

    def proposed_refund() -> str:
        with override_settings(REFUND_FOUR_EYES_THRESHOLD=0):
            row = refunds.refund_request(
                actor=proposer, data=refunds.RefundInput(deposit_id=target_deposit.id, amount=100)
            )
        return str(row.id)

    bodies = Bodies(user=user, target=target)
    endpoint = event_endpoints.endpoint_create(url="http://127.0.0.1:9/mass", now=timezone.now()).endpoint
    operations = _writable_operations()
    assert len(operations) >= 10  # the schema was read: auth, me, money and admin writes
    rounds = proof_size(default=1, slow=5)

    ignored = refused = 0
    for path, method, component in operations * rounds:
        for attempt in ("plain", "injected"):
            # Each call starts from a known password: a change or reset in the previous call revoked tokens.
            cache.clear()  # rate limits are tested elsewhere; this test logs in for every call
            for person in (user, admin, target):
                person.set_password(PASSWORD)
                person.save(update_fields=["password"])
            caller = admin if path.startswith("/api/v1/admin/") else user
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, caller.email)['access']}")
            url = (
                path.replace("{user_id}", str(target.id))
                .replace("{endpoint_id}", str(endpoint.id))
                .replace("{transaction_id}", str(target_deposit.id))
            )
            if "{refund_id}" in url:
                url = url.replace("{refund_id}", proposed_refund())
            body = bodies.build(component, path)
            extras = {
                key: value for key, value in INJECTED.items() if key not in component.get("properties", {})
            }
            before = _state(user, admin, target)
            response = getattr(client, method)(
                url, body | extras if attempt == "injected" else body, format="json"
            )
            after = _state(user, admin, target)
            label = f"{method.upper()} {path} ({attempt})"

            if attempt == "plain":
                assert 200 <= response.status_code < 300, (label, response.status_code, response.content)
                continue
            if 400 <= response.status_code < 500:
                refused += 1
                error = response.json()["error"]
                assert set(error) == {"code", "message", "details"}, label
                assert before == after, label
                continue
            assert 200 <= response.status_code < 300, (label, response.status_code, response.content)
            ignored += 1
            _assert_only_the_operation_changed(label, path, body, before, after, caller, response)

    report_figure(
        f"mass assignment: {len(operations)} writable operations \N{MULTIPLICATION SIGN} up to "
        f"{len(INJECTED)} forbidden fields, "
        f"{ignored} accepted with them ignored, {refused} refused, 0 took effect"
    )


def _assert_only_the_operation_changed(
    label: str,
    path: str,
    body: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    caller: User,
    response: Any,
) -> None:
    payload = response.json() if response.content else {}
    assert str(FOREIGN_ID) not in response.content.decode(), label
    if isinstance(payload, dict):
        assert payload.get("role", "user") != "admin" or path.startswith("/api/v1/admin/"), label
    for email in (caller.email, "mass-target@example.com", "mass-admin@example.com", "mass-user@example.com"):
        who_before, who_after = before[email], after[email]
        assert who_before["is_staff"] == who_after["is_staff"], label
        assert who_before["is_superuser"] == who_after["is_superuser"], label
        if not path.startswith("/api/v1/admin/"):
            assert who_before["role"] == who_after["role"], label
            assert who_before["is_active"] == who_after["is_active"], label
    assert before["privileged"] == after["privileged"], label
    new = sorted(set(after["transactions"]) - set(before["transactions"]))
    changed = {t[0] for t in before["transactions"]} & {t[0] for t in new}
    assert not changed, (label, "an existing transaction changed")
    if path in {"/api/v1/deposits", "/api/v1/withdrawals"}:
        assert len(new) == 1, label
        transaction_id, owner, status, amount, currency = new[0]
        assert transaction_id != str(FOREIGN_ID), label
        assert owner == str(caller.id), label
        assert status in {"pending", "processing"}, label
        assert (amount, currency) == (body["amount"], "ZAR"), label
    else:
        assert new == [], label
    user_balance_before = before["mass-user@example.com"]["balance"]
    user_balance_after = after["mass-user@example.com"]["balance"]
    if path == "/api/v1/withdrawals":
        assert user_balance_after.available == user_balance_before.available - body["amount"], label
        assert user_balance_after.reserved == user_balance_before.reserved + body["amount"], label
    else:
        assert user_balance_after == user_balance_before, label
