"""Abuse resistance: rate limits in Redis, login lockout per account and address, CORS, admin CSP."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from conftest import PASSWORD
from wallet.accounts.models import User
from wallet.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def login(api: APIClient, email: str, password: str, **headers: str) -> Any:
    return api.post("/api/v1/auth/token", {"email": email, "password": password}, format="json", **headers)


class TestLoginLockout:
    def test_five_failures_lock_the_account_for_that_address(self, api: APIClient, user: User) -> None:
        for _ in range(5):
            assert login(api, user.email, "wrong password").status_code == 401
        locked = login(api, user.email, PASSWORD)  # even the right password is refused now
        assert locked.status_code == 429
        error = locked.json()["error"]
        assert error["code"] == "account_locked"
        assert error["details"]["retry_after_seconds"] >= 29 * 60

    def test_case_and_spacing_variants_are_the_same_account(self, api: APIClient, user: User) -> None:
        for variant in [
            "THANDI@example.com",
            " thandi@EXAMPLE.com",
            "Thandi@Example.Com ",
            "thandi@example.com",
            "tHaNdI@example.com",
        ]:
            login(api, variant, "wrong password")
        assert login(api, user.email, PASSWORD).status_code == 429

    def test_a_forged_forwarded_for_header_does_not_escape_the_lock(self, api: APIClient, user: User) -> None:
        for n in range(5):
            login(api, user.email, "wrong password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        assert login(api, user.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429

    def test_the_owner_elsewhere_is_not_locked_out(self, api: APIClient, user: User) -> None:
        for _ in range(5):
            login(api, user.email, "wrong password", REMOTE_ADDR="203.0.113.9")
        assert login(api, user.email, PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 200

    def test_a_success_resets_the_count(self, api: APIClient, user: User) -> None:
        for _ in range(4):
            login(api, user.email, "wrong password")
        assert login(api, user.email, PASSWORD).status_code == 200
        for _ in range(4):
            login(api, user.email, "wrong password")
        assert login(api, user.email, PASSWORD).status_code == 200

    def test_failures_and_the_lockout_are_audited(self, api: APIClient, user: User) -> None:
        for _ in range(5):
            login(api, user.email, "wrong password")
        failures = AuditEvent.objects.filter(action="login_failed")
        assert failures.count() == 5
        lockouts = AuditEvent.objects.filter(action="login_locked_out")
        assert lockouts.count() == 1
        assert lockouts.get().details["scope"] == "account_and_address"
        assert all("wrong password" not in str(entry.details) for entry in failures)


class TestRateLimits:
    def test_login_attempts_per_address(
        self, api: APIClient, make_user: Callable[..., User], settings: Any
    ) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_ip": "3/min"}
        for n in range(3):
            assert login(api, f"nobody{n}@example.com", "x").status_code == 401
        limited = login(api, "nobody9@example.com", "x")
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited["Retry-After"]) > 0
        # A forged X-Forwarded-For is not a new address.
        assert login(api, "x@example.com", "x", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429

    def test_registrations_per_address(self, api: APIClient, settings: Any) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "register_ip": "2/hour"}
        for n in range(2):
            response = api.post(
                "/api/v1/auth/register",
                {"email": f"new{n}@example.com", "password": "a long enough password 1"},
                format="json",
            )
            assert response.status_code == 202
        response = api.post(
            "/api/v1/auth/register",
            {"email": "new9@example.com", "password": "a long enough password 1"},
            format="json",
        )
        assert response.status_code == 429
        assert not User.objects.filter(email="new9@example.com").exists()

    def test_money_writes_per_user(self, user_api: APIClient, settings: Any, revio: Any) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "money_write_user": "2/min"}
        assert user_api.post("/api/v1/deposits", {"amount": 5_000}, format="json").status_code == 201
        assert user_api.post("/api/v1/deposits", {"amount": 5_000}, format="json").status_code == 201
        assert user_api.post("/api/v1/deposits", {"amount": 5_000}, format="json").status_code == 429

    def test_webhooks_per_source(self, api: APIClient, settings: Any) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook_source": "2/min"}
        for _ in range(2):
            assert (
                api.post("/api/v1/webhooks/revio", data=b"{}", content_type="application/json").status_code
                == 401
            )
        assert (
            api.post("/api/v1/webhooks/revio", data=b"{}", content_type="application/json").status_code == 429
        )


class TestBrowserFacingHeaders:
    def test_cors_allows_only_the_frontend_origin(self, api: APIClient, settings: Any) -> None:
        allowed = settings.CORS_ALLOWED_ORIGINS[0]
        preflight = {
            "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
            "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization,content-type,idempotency-key",
        }
        ok = api.options("/api/v1/withdrawals", HTTP_ORIGIN=allowed, **preflight)
        assert ok["Access-Control-Allow-Origin"] == allowed
        assert "idempotency-key" in ok["Access-Control-Allow-Headers"]
        evil = api.options("/api/v1/withdrawals", HTTP_ORIGIN="https://evil.example", **preflight)
        assert "Access-Control-Allow-Origin" not in evil

    def test_admin_pages_carry_a_strict_csp_and_deny_framing(self, api: APIClient) -> None:
        page = api.get("/admin/login/")
        assert "script-src 'self'" in page["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
        assert page["X-Frame-Options"] == "DENY"
        assert page["X-Content-Type-Options"] == "nosniff"
