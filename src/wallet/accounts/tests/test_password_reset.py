"""Password reset by email: request, the emailed single-use link, confirm; no enumeration; rate limits."""

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.cache import cache
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from conftest import PASSWORD, login
from wallet.accounts.models import User
from wallet.notifications.models import Notification

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 42"
ACCEPTED = {"message": "If an account exists for this email, a password-reset link is on its way."}


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    # Throttle counters live in the (Redis) cache and would otherwise carry over between tests.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def request_reset(api: APIClient, django_capture_on_commit_callbacks: Any) -> Any:
    """POST a reset request and run what its commit triggers (the send task), as a worker would."""

    def request(email: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return api.post("/api/v1/auth/password-reset", {"email": email}, format="json")

    return request


def token_from(message: Any) -> str:
    match = re.search(r"http://localhost:3000/reset-password\?token=(\S+)", message.body)
    assert match, message.body
    return match.group(1)


def confirm(api: APIClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return api.post(
        "/api/v1/auth/password-reset/confirm", {"token": token, "new_password": password}, format="json"
    )


class TestEndToEnd:
    def test_request_email_confirm_then_only_the_new_password_works(
        self, api: APIClient, user: User, request_reset: Any, mailoutbox: list[Any], settings: Any
    ) -> None:
        settings.FRONTEND_URL = "http://localhost:3000"
        old_refresh = login(api, user.email)["refresh"]

        response = request_reset("  Thandi@Example.com ")
        assert response.status_code == 202
        assert response.json() == ACCEPTED
        [message] = mailoutbox
        assert message.to == [user.email]
        assert message.subject == "Reset your Wallet password"
        token = token_from(message)
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[0-9a-z]+-[0-9a-f]+", token)
        assert f"?token={token}" in message.alternatives[0][0]

        response = confirm(api, token)
        assert response.status_code == 204, response.content

        refreshed = api.post("/api/v1/auth/token/refresh", {"refresh": old_refresh}, format="json")
        assert refreshed.status_code == 401
        assert refreshed.json()["error"]["code"] == "token_not_valid"
        assert login(api, user.email, NEW_PASSWORD)["access"]
        wrong = api.post("/api/v1/auth/token", {"email": user.email, "password": PASSWORD}, format="json")
        assert wrong.status_code == 401
        # The link left the database with the email.
        assert Notification.objects.get(user=user).context == {}

    def test_a_used_token_is_refused(
        self, api: APIClient, user: User, request_reset: Any, mailoutbox: list[Any]
    ) -> None:
        request_reset(user.email)
        token = token_from(mailoutbox[0])
        assert confirm(api, token).status_code == 204

        response = confirm(api, token, "yet another passphrase 77")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_token"
        assert login(api, user.email, NEW_PASSWORD)

    def test_an_expired_token_is_refused(
        self,
        api: APIClient,
        user: User,
        request_reset: Any,
        mailoutbox: list[Any],
        settings: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        request_reset(user.email)
        token = token_from(mailoutbox[0])
        later = datetime.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 1)  # noqa: DTZ005 - Django's generator uses naive local time
        monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)

        response = confirm(api, token)
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "invalid_token",
            "message": "The password-reset link is invalid, expired or already used; ask for a new one.",
            "details": {},
        }
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    @pytest.mark.parametrize(
        ("token", "code"),
        [
            ("", "validation_error"),
            ("no-dot-at-all", "invalid_token"),
            ("bm90LWEtdXVpZA.abc-123", "invalid_token"),  # "not-a-uuid"
            ("%%%.abc-123", "invalid_token"),
            ("MTIz.abc-123", "invalid_token"),
        ],
    )
    def test_a_malformed_token_is_refused(self, api: APIClient, user: User, token: str, code: str) -> None:
        response = confirm(api, token)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code

    def test_a_weak_password_is_refused_and_the_token_stays_usable(
        self, api: APIClient, user: User, request_reset: Any, mailoutbox: list[Any]
    ) -> None:
        request_reset(user.email)
        token = token_from(mailoutbox[0])

        response = confirm(api, token, "password")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert "new_password" in response.json()["error"]["details"]["fields"]
        assert confirm(api, token).status_code == 204

    def test_a_token_for_another_account_does_not_work(
        self,
        api: APIClient,
        user: User,
        make_user: Any,
        request_reset: Any,
        mailoutbox: list[Any],
    ) -> None:
        other = make_user(email="sipho@example.com")
        request_reset(user.email)
        _, _, token = token_from(mailoutbox[0]).partition(".")
        other_uid = urlsafe_base64_encode(force_bytes(other.pk))

        assert confirm(api, f"{other_uid}.{token}").status_code == 400
        other.refresh_from_db()
        assert other.check_password(PASSWORD)

    def test_the_email_goes_even_when_the_user_turned_off_optional_emails(
        self, user: User, user_api: APIClient, request_reset: Any, mailoutbox: list[Any]
    ) -> None:
        user_api.patch("/api/v1/me/notifications", {"transaction_emails": False}, format="json")
        request_reset(user.email)
        assert [message.subject for message in mailoutbox] == ["Reset your Wallet password"]


class TestNoEnumeration:
    def test_an_unknown_email_gets_the_same_answer_and_no_email(
        self, request_reset: Any, mailoutbox: list[Any]
    ) -> None:
        response = request_reset("nobody@example.com")
        assert response.status_code == 202
        assert response.json() == ACCEPTED
        assert mailoutbox == []
        assert not Notification.objects.exists()

    def test_an_inactive_account_gets_the_same_answer_and_no_email(
        self, make_user: Any, request_reset: Any, mailoutbox: list[Any]
    ) -> None:
        make_user(email="gone@example.com", is_active=False)
        response = request_reset("gone@example.com")
        assert (response.status_code, response.json()) == (202, ACCEPTED)
        assert mailoutbox == []

    def test_a_malformed_email_is_a_validation_error(self, api: APIClient) -> None:
        response = api.post("/api/v1/auth/password-reset", {"email": "not an email"}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"


class TestRateLimits:
    def test_reset_requests_are_limited_per_client(
        self, api: APIClient, user: User, request_reset: Any, mailoutbox: list[Any]
    ) -> None:
        for _ in range(5):
            assert request_reset(user.email).status_code == 202
        response = request_reset(user.email)

        assert response.status_code == 429
        error = response.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["details"]["retry_after_seconds"] > 0
        assert int(response["Retry-After"]) > 0
        assert len(mailoutbox) == 5
        # Unknown emails count too: the limit cannot be used to tell them apart.
        assert request_reset("nobody@example.com").status_code == 429

    def test_confirmations_are_limited_per_client(self, api: APIClient) -> None:
        for _ in range(10):
            assert confirm(api, "MTIz.abc-123").status_code == 400
        response = confirm(api, "MTIz.abc-123")
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
