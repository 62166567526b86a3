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


def test_production_settings_pass_check_deploy() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "a" * 20 + "production-grade-secret-key-with-enough-variety-0123456789",
        "JWT_SIGNING_KEY": "another-long-random-value-for-jwt-signing-0123456789",
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


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
