"""The OpenAPI schema is complete and valid, the docs are served, and production settings pass --deploy."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True))


def test_schema_is_valid_openapi_without_warnings() -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue().startswith("openapi: 3")


def test_every_api_route_is_in_the_schema(schema: dict[str, Any]) -> None:
    paths = set(schema["paths"])
    assert {
        "/api/v1/auth/register",
        "/api/v1/auth/token",
        "/api/v1/auth/token/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/me/password",
        "/api/v1/admin/users",
        "/api/v1/admin/users/{user_id}",
    } <= paths


def test_schema_documents_the_jwt_scheme_and_error_responses(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    me = schema["paths"]["/api/v1/me"]["get"]
    assert {"200", "401", "429", "500"} <= set(me["responses"])
    assert me["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    register = schema["paths"]["/api/v1/auth/register"]["post"]
    assert "409" not in register["responses"]  # a taken email answers 202 like a new one (no enumeration)
    assert "202" in register["responses"]
    assert "validation_error" in register["responses"]["400"]["description"]
    assert register.get("security") in ([], [{}], None) or {} in register["security"]
    admin_detail = schema["paths"]["/api/v1/admin/users/{user_id}"]["get"]
    assert {"403", "404"} <= set(admin_detail["responses"])


def test_schema_documents_money_fields_errors_and_the_idempotency_header(schema: dict[str, Any]) -> None:
    withdraw = schema["paths"]["/api/v1/withdrawals"]["post"]
    headers = {p["name"]: p for p in withdraw["parameters"] if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    assert "idempotency_key_reused" in withdraw["responses"]["422"]["description"]
    assert "insufficient_funds" in withdraw["responses"]["409"]["description"]
    assert "request_in_progress" in withdraw["responses"]["409"]["description"]
    assert "withdrawal_limit_exceeded" in withdraw["responses"]["409"]["description"]
    deposit = schema["paths"]["/api/v1/deposits"]["post"]
    assert {"502", "503"} <= set(deposit["responses"])
    request_schema = schema["components"]["schemas"]["WithdrawalCreateInputRequest"]
    assert request_schema["properties"]["amount"]["type"] == "integer"
    assert set(request_schema["required"]) == {"amount", "bank_account"}
    status = schema["components"]["schemas"]["TransactionOutput"]["properties"]["status"]
    status_enum = schema["components"]["schemas"][status["$ref"].rsplit("/", 1)[1]]["enum"]
    assert set(status_enum) == {
        "pending",
        "processing",
        "completed",
        "failed",
        "cancelled",
        "expired",
        "returned",
    }


def test_swagger_ui_is_served_with_local_assets(api: APIClient) -> None:
    response = api.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()  # assets come from drf-spectacular-sidecar, not a CDN
    assert api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").status_code == 200


# What a production deployment sets (docs/deploy.md): with these, --deploy passes even at WARNING.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "a" * 20 + "production-grade-secret-key-with-enough-variety-0123456789",
    "JWT_SIGNING_KEY": "another-long-random-value-for-jwt-signing-0123456789",
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
    "DATABASE_URL": "postgres://wallet:secret@db.internal:5432/wallet",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "REVIO_BASE_URL": "https://gate.revio.example/api/v1/",
    "REVIO_API_KEY": "live-api-key",
    "REVIO_BRAND_ID": "5b0a8c0e-7d1e-4c53-9f0e-2f3c4a5b6c7d",
    "REVIO_EFT_BASE_URL": "https://eft.revio.example/",
    "REVIO_EFT_TOKEN_URL": "https://eft.revio.example/oauth2/token",
    "REVIO_EFT_CLIENT_ID": "live-eft-client",
    "REVIO_EFT_CLIENT_SECRET": "live-eft-secret",
    "REVIO_EFT_CALLBACK_ALLOWED_NETWORKS": "203.0.113.0/24",
    "SENDGRID_API_KEY": "SG.live-key",
    "DJANGO_DEFAULT_FROM_EMAIL": "Wallet <no-reply@example.com>",
    "FRONTEND_URL": "https://app.example.com",
    "PUBLIC_BASE_URL": "https://api.example.com",
}
# Everything the deploy checks read, so the suite's own environment (test settings, testenv's URLs) and
# anything a developer exported cannot make a check pass or fail by accident.
_READ_BY_CHECKS = {
    *PRODUCTION_ENV,
    "REVIO_ACCEPT_TEST_OBJECTS",
    "DJANGO_EMAIL_BACKEND",
    "CORS_ALLOWED_ORIGINS",
    "TRUSTED_PROXY_COUNT",
    "RAILWAY_ENVIRONMENT_NAME",
    "RAILWAY_PROJECT_ID",
    "WALLET_ROLE",
    "EVENTS_ALLOW_LOCAL_URLS",
    "DJANGO_SILENCED_SYSTEM_CHECKS",
}


def check_deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if key not in _READ_BY_CHECKS}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_settings_pass_check_deploy() -> None:
    result = check_deploy(PRODUCTION_ENV, "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_on_the_sandbox_defaults_fails_check_deploy_naming_each_gap() -> None:
    """F9: with only the variables it could not start without, production booted on the sandbox: Revio at
    http://127.0.0.1:8100 with an empty key, EFT on the sandbox, CORS for localhost:3000, files for email,
    SQLite and no Redis, and --deploy passed. F16: a short JWT key passed too."""
    minimal = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": PRODUCTION_ENV["DJANGO_SECRET_KEY"],
        "JWT_SIGNING_KEY": "short-jwt-key",
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
    }
    # No database or Redis at all: the settings themselves refuse to load, naming the first.
    result = check_deploy(minimal)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stdout + result.stderr
    # With placeholder servers, every other gap is named in one run.
    minimal |= {
        "DATABASE_URL": "postgres://wallet@db.example/wallet",
        "REDIS_URL": "redis://redis.example:6379/0",
    }
    result = check_deploy(minimal)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for named in (
        "REVIO_BASE_URL",
        "REVIO_EFT_BASE_URL",
        "REVIO_EFT_TOKEN_URL",
        "REVIO_API_KEY",
        "REVIO_BRAND_ID",
        "REVIO_EFT_CLIENT_ID",
        "REVIO_EFT_CLIENT_SECRET",
        "SENDGRID_API_KEY",
        "JWT_SIGNING_KEY",
        "http://localhost:3000",
        "PUBLIC_BASE_URL",
    ):
        assert named in output, named


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"REVIO_BASE_URL": "https://127.0.0.1:8100/api/v1/"}, "REVIO_BASE_URL points at this machine"),
        (
            {"REVIO_EFT_TOKEN_URL": "http://eft.revio.example/oauth2/token"},
            "REVIO_EFT_TOKEN_URL is not https",
        ),
        ({"REVIO_ACCEPT_TEST_OBJECTS": "true"}, "REVIO_ACCEPT_TEST_OBJECTS"),
        ({"SENDGRID_API_KEY": "", "DJANGO_EMAIL_BACKEND": ""}, "wallet.E006"),
        ({"JWT_SIGNING_KEY": "x" * 31}, "JWT_SIGNING_KEY is shorter than 32 bytes"),
        ({"CORS_ALLOWED_ORIGINS": "http://localhost:3000"}, "CORS allows 'http://localhost:3000'"),
        # F6: on Railway every request comes through its proxy; a web process counting none refuses.
        ({"RAILWAY_ENVIRONMENT_NAME": "production", "WALLET_ROLE": "web"}, "wallet.E010"),
        # Outgoing events: production never lets an endpoint be http or on this machine (SSRF).
        ({"EVENTS_ALLOW_LOCAL_URLS": "true"}, "wallet.E012"),
        # issue 17 F1: unsigned EFT callbacks from anywhere.
        ({"REVIO_EFT_CALLBACK_ALLOWED_NETWORKS": ""}, "wallet.E011"),
    ],
)
def test_each_production_gap_alone_fails_check_deploy(change: dict[str, str], named: str) -> None:
    result = check_deploy({**PRODUCTION_ENV, **change})
    assert result.returncode != 0, result.stdout + result.stderr
    assert named in result.stdout + result.stderr


def test_on_railway_with_one_trusted_proxy_check_deploy_passes() -> None:
    env = {**PRODUCTION_ENV, "RAILWAY_ENVIRONMENT_NAME": "production", "TRUSTED_PROXY_COUNT": "1"}
    result = check_deploy({**env, "WALLET_ROLE": "web"}, "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    # The worker reads no client address: the proxy count is not its concern.
    assert check_deploy({**env, "TRUSTED_PROXY_COUNT": "0", "WALLET_ROLE": "worker"}).returncode == 0


def test_production_refuses_to_start_without_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "JWT_SIGNING_KEY"}}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_no_model_change_lacks_a_migration() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
