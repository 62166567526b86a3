"""Attacks from the infrastructure review (issue 17, round 2), each performed against the running API.

F6: client addresses behind a proxy (the /metrics allow-list, the proxy-count alarm). F7: cheap DoS and
500s (deep or non-UTF-8 JSON, the schema, /me/password). F9: Revio's test objects credit nothing in
production. F16: the CSV export's formula guard. The gunicorn-level attacks (forwarded headers, one
lockout for everyone behind Railway's proxy, the entrypoint's config file) are in test_container.py, the
deploy checks in test_schema_and_settings.py, the Sentry scrubber in test_sentry_scrub.py.
"""

import base64
import csv
import io
import json
import logging
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.core import metrics
from wallet.core.http.schema_view import CachedSchemaApi
from wallet.ledger.selectors import balance_get
from wallet.transactions import services as wallet
from wallet.webhooks.models import WebhookLog

# revio_webhook is a fixture of the webhooks tests, imported to be used here by name.
from wallet.webhooks.tests.conftest import RevioWebhook, revio_webhook, wait_for  # noqa: F401

DEEP = ("[" * 1_500 + "]" * 1_500).encode()
ERROR_SHAPE_KEYS = {"code", "message", "details"}


def utf16(value: Any) -> bytes:
    return json.dumps(value).encode("utf-16")


def assert_400(response: Any, code: str) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert set(body["error"]) == ERROR_SHAPE_KEYS
    assert body["error"]["code"] == code


def no_server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- F7: bodies that made a 500 and a Sentry event ---------------------------------------------------------


@pytest.mark.django_db
class TestHostileJsonBodies:
    """F7: JSON nested 1,500 deep (RecursionError), a UTF-16 body and a lone surrogate were 500s."""

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(DEEP, id="nested-1500-deep"),
            pytest.param(utf16({"email": "a@b.example", "password": "x" * 12}), id="utf-16"),
            pytest.param(b'{"email": "\\ud800@b.example", "password": "xxxxxxxxxxxx"}', id="lone-surrogate"),
            pytest.param(b'{"email": "a@b.example", "password": NaN}', id="nan"),
        ],
    )
    @pytest.mark.parametrize("url", ["/api/v1/auth/token", "/api/v1/auth/register"])
    def test_the_api_answers_400_malformed_json(
        self, api: APIClient, url: str, body: bytes, caplog: pytest.LogCaptureFixture
    ) -> None:
        assert_400(api.generic("POST", url, body, content_type="application/json"), "malformed_json")
        assert no_server_errors(caplog) == []
        assert not User.objects.exists()

    def test_a_body_declared_utf16_is_refused_too(self, api: APIClient) -> None:
        body = utf16({"email": "a@b.example", "password": "correct horse battery staple"})
        response = api.generic(
            "POST", "/api/v1/auth/register", body, content_type="application/json; charset=utf-16"
        )
        assert_400(response, "malformed_json")
        assert not User.objects.exists()

    def test_nesting_past_the_limit_is_refused_below_recursion_depth(
        self, api: APIClient, settings: Any
    ) -> None:
        depth = settings.API_MAX_JSON_DEPTH
        ok = ("[" * depth + "]" * depth).encode()
        too_deep = ("[" * (depth + 1) + "]" * (depth + 1)).encode()
        # A list is not a login body (400 validation), but it is parsed: the depth limit is exactly that.
        assert (
            api.generic("POST", "/api/v1/auth/token", ok, content_type="application/json").json()["error"][
                "code"
            ]
            == "validation_error"
        )
        assert_400(
            api.generic("POST", "/api/v1/auth/token", too_deep, content_type="application/json"),
            "malformed_json",
        )

    def test_the_eft_callback_answers_400_to_deep_json(
        self, api: APIClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        response = api.generic("POST", "/api/v1/webhooks/revio/eft", DEEP, content_type="application/json")
        assert_400(response, "malformed_event")
        assert no_server_errors(caplog) == []
        assert not WebhookLog.objects.exists()

    def test_the_eft_callback_answers_400_to_utf16(
        self, api: APIClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        body = utf16({"id": "3b0f6c2e-8d1a-4f5e-9c77-1a2b3c4d5e6f", "status": "SUCCESSFUL"})
        response = api.generic("POST", "/api/v1/webhooks/revio/eft", body, content_type="application/json")
        assert_400(response, "malformed_event")
        assert no_server_errors(caplog) == []
        assert not WebhookLog.objects.exists()

    @pytest.mark.parametrize("encode", ["deep", "utf-16"])
    def test_the_signed_webhook_answers_400_to_correctly_signed_hostile_bodies(
        self, api: APIClient, settings: Any, encode: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Signed with the key pinned as Revio's: verification passes, and the parse must not crash."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        settings.REVIO_PUBLIC_KEY = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        settings.REVIO_WEBHOOK_PUBLIC_KEY = ""
        event = {
            "id": "3b0f6c2e-8d1a-4f5e-9c77-1a2b3c4d5e6f",
            "type": "purchase",
            "event_type": "purchase.paid",
            "updated_on": int(time.time()),
        }
        body = DEEP if encode == "deep" else utf16(event)
        signature = base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
        response = api.generic(
            "POST",
            "/api/v1/webhooks/revio",
            body,
            content_type="application/json",
            HTTP_X_SIGNATURE=signature,
        )
        assert_400(response, "malformed_event")
        assert no_server_errors(caplog) == []
        assert not WebhookLog.objects.exists()


# -- F7: the schema and /me/password -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_public_schema_is_generated_once_per_process(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F7: /api/v1/schema/ regenerated the whole schema (~36 ms) for every anonymous request."""
    CachedSchemaApi._schemas.clear()
    CachedSchemaApi._rendered.clear()
    generated: list[float] = []
    real = SchemaGenerator.get_schema

    def counting(self: SchemaGenerator, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            generated.append(time.perf_counter() - start)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counting)
    first = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    started = time.perf_counter()
    for _ in range(20):
        again = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    per_request = (time.perf_counter() - started) / 20
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert "/api/v1/me/password" in again.json()["paths"]
    assert len(generated) == 1, f"generated {len(generated)} times for 21 requests"
    assert per_request < generated[0], (per_request, generated[0])


@pytest.mark.django_db
def test_password_change_is_rate_limited_per_user(user_api: APIClient, settings: Any) -> None:
    """F7: /me/password had no throttle: unlimited Argon2 hashes and guesses at the current password."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_change_user": "3/hour"}
    wrong = {"current_password": "not the password", "new_password": "a brand new passphrase 42"}
    statuses = [user_api.post("/api/v1/me/password", wrong, format="json").status_code for _ in range(3)]
    assert statuses == [400, 400, 400]  # wrong current password, each one hashed and checked
    limited = user_api.post("/api/v1/me/password", wrong, format="json")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"


# -- F6: whose address a request is ----------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_allow_list_checks_the_client_not_the_proxy(settings: Any) -> None:
    """F16/F6: behind a proxy inside the allowed network, every client on the internet matched the list."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = Client(REMOTE_ADDR="10.1.2.3")
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 404
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="10.4.5.6").status_code == 200  # a scraper inside


@pytest.mark.django_db
def test_forwarded_requests_with_no_trusted_proxy_raise_the_alarm(
    api: APIClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """F6: with TRUSTED_PROXY_COUNT=0 behind a proxy, every client is the proxy; say so loudly."""
    settings.TRUSTED_PROXY_COUNT = 0
    metrics.reset("proxy_header_unexpected")
    for _ in range(3):
        api.get("/api/v1/me", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="10.0.0.2")
    assert metrics.read("proxy_header_unexpected") == 3
    alarms = [r for r in caplog.records if "TRUSTED_PROXY_COUNT is 0" in r.getMessage()]
    assert len(alarms) == 1  # once a minute, not once a request
    assert alarms[0].levelno == logging.ERROR


@pytest.mark.django_db
def test_requests_bypassing_a_configured_proxy_are_counted(
    api: APIClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    metrics.reset("proxy_header_missing")
    api.get("/api/v1/me", REMOTE_ADDR="10.0.0.2")
    api.get("/healthz", REMOTE_ADDR="10.0.0.2")  # probes come from the platform directly
    assert metrics.read("proxy_header_missing") == 1
    assert any("bypassed the proxy" in r.getMessage() for r in caplog.records)


# -- F9: Revio's test objects ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_test_purchase_never_credits_a_production_wallet(
    make_user: Any,
    revio_webhook: RevioWebhook,  # noqa: F811 - the fixture imported above
    settings: Any,
) -> None:
    """F9: the sandbox (or a test-mode key) marks purchases is_test; paid, they were credited."""
    settings.REVIO_ACCEPT_TEST_OBJECTS = False
    user = make_user()
    deposit = wallet.deposit_create(user_id=user.id, email=user.email, amount=6_000, currency="ZAR")
    revio_webhook.sandbox.control.purchase_pay(deposit.provider_object_id or "")
    wait_for(
        lambda: WebhookLog.objects.filter(object_id=deposit.provider_object_id, status="processed").exists(),
        what="the purchase.paid event to be processed",
    )
    deposit.refresh_from_db()
    assert deposit.status == "pending"
    assert deposit.needs_review
    assert "test object" in deposit.review_reason
    assert balance_get(user_id=user.id, currency="ZAR").available == 0


# -- F16: the CSV export ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_discrepancy_csv_neutralises_every_formula_start() -> None:
    """F16: the guard knew = + - @ but not TAB or CR (OWASP), nor Revio's side of the row."""
    from wallet.reconciliation.admin import discrepancies_csv
    from wallet.reconciliation.models import Discrepancy, ReconciliationRun

    run = ReconciliationRun.objects.create(period_start="2026-12-01", period_end="2026-12-01")
    payloads = ["\t=1+1", "\r=1+1", '=HYPERLINK("http://x")', " =1+1", "plain"]
    for payload in payloads:
        Discrepancy.objects.create(
            run=run,
            kind="missing_revio",
            object_type="purchase",
            object_id=payload[:64],
            theirs={"status": payload},
            detail=payload,
            proposal=payload,
        )
    rows = list(csv.DictReader(io.StringIO(discrepancies_csv(Discrepancy.objects.all()).content.decode())))
    assert len(rows) == len(payloads)
    for row in rows:
        for column in ("object_id", "revio_status", "detail", "proposal"):
            value = row[column]
            assert value == "plain" or value.startswith("'"), (column, value)
