"""Schemathesis over the whole OpenAPI schema, as an anonymous caller, a user and an admin.

Every operation the schema documents gets generated requests (valid ones and, where schemathesis can build
them, invalid ones) sent through the real WSGI application; deposits and withdrawals reach the real Revio
sandbox. Each response must not be a 5xx, its status must be documented for the operation, its body and
headers must match the documented schema, and an operation that requires a token must refuse the request
without one (schemathesis' ignored_auth probe). All failures are collected and reported together.

Not checked: that every invalid request is refused (schemathesis' negative_data_rejection). DRF treats an
empty query parameter (`?status=`) as absent, a form convention the schema cannot express, so that check
would fail on it; the bodies' invalid values are refused and covered by the serializers' own tests.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import login
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.testing import proof_size
from wallet.events import endpoints as event_endpoints
from wallet.ledger.selectors import ledger_problems
from wallet.transactions.models import DepositReversal, Transaction
from wallet.transactions.tests.conftest import BANK, fund  # noqa: F401 - fund is a fixture

pytestmark = [pytest.mark.django_db, pytest.mark.proof]

SCHEMA_URL = "/api/v1/schema/?format=json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
EXAMPLES_PER_OPERATION = proof_size(default=20, slow=200)
ROLES = ("anonymous", "user", "admin")


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    requests: int = 0
    server_errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


TALLY = Tally()


@pytest.fixture
def wsgi_app() -> Callable[..., Any]:
    """The real WSGI application, called in the test's thread and database transaction.

    Like Django's test client, keep the per-request connection clean-up from closing the test's connection
    (it is inside the test's transaction): off for each request, back on afterwards.
    """
    # WSGIHandler itself, not get_wsgi_application(): that would run django.setup() again, whose logging
    # set-up replaces the root logger's handlers (the suite's log scan among them).
    handler = WSGIHandler()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = handler(environ, start_response)
            body = list(response)
            response.close()
            return body
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)

    return app


@pytest.fixture
def api_schema(wsgi_app: Any) -> Any:
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, wsgi_app)


@pytest.fixture
def real_ids(
    make_user: Callable[..., User],
    fund: Callable[[User, int], Transaction],  # noqa: F811 - the fixture imported above
    revio: SandboxProcess,
) -> dict[str, Any]:
    """The callers and objects that make generated requests land on real rows, not only on 404s."""
    user = make_user(email="fuzz-user@example.com")
    admin = make_user(email="fuzz-admin@example.com", role=User.Role.ADMIN)
    target = make_user(email="fuzz-target@example.com")
    deposit = fund(user, 5_000_000)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_bearer(user)["Authorization"])
    response = client.post("/api/v1/withdrawals", {"amount": 1_000, "bank_account": BANK}, format="json")
    assert response.status_code == 201, response.content
    endpoint = event_endpoints.endpoint_create(url="http://127.0.0.1:9/fuzz", now=timezone.now()).endpoint
    proposed = DepositReversal.objects.create(  # an admin refund awaiting approval
        deposit=deposit, kind="refund", status="proposed", origin="admin", amount=1_000, currency="ZAR"
    )
    return {
        "user": user,
        "admin": admin,
        "user_id": [target.id],
        "transaction_id": [deposit.id, response.json()["id"]],
        "endpoint_id": [endpoint.id],
        "refund_id": [proposed.id],
    }


def _money_moves() -> int:
    return sum(
        n
        for key, n in TALLY.statuses.items()
        if key.startswith(("POST /api/v1/deposits 201", "POST /api/v1/withdrawals 201"))
    )


def _bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {login(APIClient(), user.email)['access']}"}


def _fuzz_operation(operation: Any, *, headers: dict[str, str], real_ids: dict[str, Any]) -> None:
    strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
        generation_mode=GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(case=strategy, aim_at_real_row=st.booleans(), pick=st.integers(min_value=0, max_value=9))
    def run(case: Any, aim_at_real_row: bool, pick: int) -> None:
        # Rate limits and lockouts are tested elsewhere; here they would hide the operations behind 429s.
        cache.clear()
        if aim_at_real_row and case.path_parameters:
            for name in case.path_parameters:
                if name in real_ids:
                    ids = real_ids[name]
                    case.path_parameters[name] = str(ids[pick % len(ids)])
        response = case.call(headers=headers)
        TALLY.requests += 1
        key = f"{operation.label} {response.status_code}"
        TALLY.statuses[key] = TALLY.statuses.get(key, 0) + 1
        if response.status_code >= 500:
            TALLY.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (FailureGroup, Failure) as exc:
            TALLY.failures.append(
                f"{operation.label} -> {response.status_code}: {str(exc)[:1500]}\n{case.as_curl_command()}"
            )

    run()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_within_its_schema(
    role: str, api_schema: Any, real_ids: dict[str, Any], report_figure: Callable[[str], None]
) -> None:
    headers = {} if role == "anonymous" else _bearer(real_ids[role])
    failures_before, requests_before = len(TALLY.failures), TALLY.requests
    for result in api_schema.get_all_operations():
        operation = result.ok()
        TALLY.operations.add(operation.label)
        _fuzz_operation(operation, headers=headers, real_ids=real_ids)

    assert TALLY.requests > requests_before
    new_failures = TALLY.failures[failures_before:]
    assert not new_failures, f"{len(new_failures)} failures as {role}:\n\n" + "\n\n".join(new_failures[:20])
    assert ledger_problems() == []
    if role == ROLES[-1]:
        report_figure(
            f"API fuzzing: {len(TALLY.operations)} operations \N{MULTIPLICATION SIGN} {len(ROLES)} roles, "
            f"{TALLY.requests} requests ({_money_moves()} deposits/withdrawals accepted), "
            f"5xx {TALLY.server_errors}, schema violations {len(TALLY.failures)}"
        )


def test_real_ids_match_the_schemas_path_parameters(api_schema: Any) -> None:
    """The ids substituted above must be the names the schema uses, or the fuzzer would only meet 404s."""
    names = {
        parameter.name
        for result in api_schema.get_all_operations()
        for parameter in result.ok().path_parameters
    }
    assert names == {"user_id", "transaction_id", "endpoint_id", "refund_id"}


class TestWhatTheFuzzerFound:
    """Each bug the fuzzer found, pinned by a plain test so it cannot come back unnoticed."""

    def test_a_very_long_email_at_login_is_refused_not_a_server_error(self, api: APIClient) -> None:
        # The per-account rate limit used the raw email as its cache key: past 250 characters, a 500.
        response = api.post(
            "/api/v1/auth/token", {"email": "a" * 240 + "@example.com", "password": "x"}, format="json"
        )

        assert response.status_code in {400, 401}
        assert response.json()["error"]["code"] in {"validation_error", "invalid_credentials"}

    def test_lists_are_documented_as_the_pages_they_are(self, api_schema: Any) -> None:
        raw = api_schema.raw_schema
        for path in ("/api/v1/transactions", "/api/v1/balance/entries", "/api/v1/admin/users"):
            operation = raw["paths"][path]["get"]
            body = operation["responses"]["200"]["content"]["application/json"]["schema"]
            page = raw["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
            assert {"next", "previous", "results"} <= set(page["properties"]), path
            assert {"cursor", "page_size"} <= {p["name"] for p in operation["parameters"]}, path

    @pytest.mark.parametrize("query", ["cursor=not-a-cursor", "page_size=ten", "page_size=0", "page_size=-5"])
    def test_a_bad_cursor_or_page_size_is_a_400(self, user_api: APIClient, query: str) -> None:
        response = user_api.get(f"/api/v1/transactions?{query}")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert set(response.json()["error"]["details"]["fields"]) == {query.split("=")[0]}

    def test_a_page_size_above_the_maximum_gives_the_maximum(self, user_api: APIClient) -> None:
        assert user_api.get("/api/v1/transactions?page_size=100000").status_code == 200
