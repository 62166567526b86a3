"""The auth flows through the HTTP API: register, token, refresh (rotation), logout, me, password change."""

import threading
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from conftest import PASSWORD, login
from wallet.accounts.models import User

pytestmark = pytest.mark.django_db

STRONG = "a much longer passphrase 42"


def bearer(api: APIClient, access: str) -> APIClient:
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api


def refresh(api: APIClient, token: str) -> Any:
    return api.post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")


class TestRegister:
    def test_creates_a_user_with_the_user_role(self, api: APIClient) -> None:
        response = api.post(
            "/api/v1/auth/register", {"email": "Lerato@Example.com ", "password": STRONG}, format="json"
        )
        assert response.status_code == 202
        assert set(response.json()) == {"message"}
        user = User.objects.get(email="lerato@example.com")
        assert user.role == "user"
        assert user.check_password(STRONG)

    def test_role_in_the_body_is_ignored(self, api: APIClient) -> None:
        response = api.post(
            "/api/v1/auth/register",
            {"email": "sneaky@example.com", "password": STRONG, "role": "admin"},
            format="json",
        )
        assert response.status_code == 202
        assert User.objects.get(email="sneaky@example.com").role == "user"

    def test_email_is_unique_whatever_the_case(self, api: APIClient, user: User) -> None:
        response = api.post(
            "/api/v1/auth/register", {"email": "THANDI@example.COM", "password": STRONG}, format="json"
        )
        assert response.status_code == 202  # the same answer as for a new email (no enumeration)
        assert User.objects.count() == 1
        user.refresh_from_db()
        assert not user.check_password(STRONG)  # the owner's password is untouched

    @pytest.mark.parametrize(
        ("password", "fragment"),
        [("short1", "too short"), ("password123", "too common"), ("1234567890123", "entirely numeric")],
    )
    def test_weak_passwords_are_refused_by_the_validators(
        self, api: APIClient, password: str, fragment: str
    ) -> None:
        response = api.post(
            "/api/v1/auth/register", {"email": "new@example.com", "password": password}, format="json"
        )
        assert response.status_code == 400
        messages = " ".join(response.json()["error"]["details"]["fields"]["password"])
        assert fragment in messages
        assert not User.objects.filter(email="new@example.com").exists()

    def test_invalid_email_is_refused(self, api: APIClient) -> None:
        response = api.post(
            "/api/v1/auth/register", {"email": "not-an-email", "password": STRONG}, format="json"
        )
        assert response.status_code == 400
        assert "email" in response.json()["error"]["details"]["fields"]

    def test_passwords_are_hashed_with_argon2_outside_tests(self) -> None:
        from django.contrib.auth.hashers import make_password

        from config.settings import base

        assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
        assert make_password("x", hasher="argon2").startswith("argon2$argon2id$")


class TestToken:
    def test_issues_a_pair_whose_access_token_opens_me(self, api: APIClient, user: User) -> None:
        pair = login(api, "  Thandi@Example.com")  # case and spacing do not matter
        assert set(pair) == {"access", "refresh"}
        response = bearer(APIClient(), pair["access"]).get("/api/v1/me")
        assert response.status_code == 200
        assert response.json() == {"id": str(user.id), "email": "thandi@example.com", "role": "user"}

    def test_lifetimes_are_15_minutes_and_7_days(self, api: APIClient, user: User) -> None:
        pair = login(api, user.email)
        access, refresh_token = AccessToken(pair["access"]), RefreshToken(pair["refresh"])
        assert access["exp"] - access["iat"] == 15 * 60
        assert refresh_token["exp"] - refresh_token["iat"] == 7 * 24 * 3600

    @pytest.mark.parametrize("email", ["thandi@example.com", "nobody@example.com"])
    def test_wrong_credentials_get_one_answer(self, api: APIClient, user: User, email: str) -> None:
        response = api.post(
            "/api/v1/auth/token", {"email": email, "password": "wrong password!"}, format="json"
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"

    def test_inactive_user_cannot_log_in(self, api: APIClient, user: User) -> None:
        User.objects.filter(pk=user.pk).update(is_active=False)
        response = api.post("/api/v1/auth/token", {"email": user.email, "password": PASSWORD}, format="json")
        assert response.status_code == 401

    def test_expired_access_token_is_refused(self, api: APIClient, user: User) -> None:
        token = AccessToken.for_user(user)
        token.set_exp(from_time=token.current_time - timedelta(minutes=16))
        response = bearer(api, str(token)).get("/api/v1/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_not_valid"

    def test_refresh_token_is_not_accepted_as_access_token(self, api: APIClient, user: User) -> None:
        pair = login(api, user.email)
        assert bearer(APIClient(), pair["refresh"]).get("/api/v1/me").status_code == 401

    def test_alg_none_token_is_refused(self, api: APIClient, user: User) -> None:
        claims = dict(AccessToken.for_user(user).payload)
        forged = jwt.encode(claims, key=None, algorithm="none")
        assert bearer(api, forged).get("/api/v1/me").status_code == 401

    def test_token_signed_with_secret_key_instead_of_jwt_key_is_refused(
        self, api: APIClient, user: User
    ) -> None:
        assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
        claims = dict(AccessToken.for_user(user).payload)
        forged = jwt.encode(claims, key=settings.SECRET_KEY, algorithm="HS256")
        assert bearer(api, forged).get("/api/v1/me").status_code == 401

    def test_token_with_edited_claims_is_refused(self, api: APIClient, user: User, admin_user: User) -> None:
        header, _payload, signature = str(AccessToken.for_user(user)).split(".")
        other = str(AccessToken.for_user(admin_user)).split(".")[1]
        assert bearer(api, f"{header}.{other}.{signature}").get("/api/v1/me").status_code == 401


class TestRefresh:
    def test_rotates_and_the_old_token_cannot_be_reused(self, api: APIClient, user: User) -> None:
        pair = login(api, user.email)
        first = refresh(api, pair["refresh"])
        assert first.status_code == 200
        new_pair = first.json()
        assert new_pair["refresh"] != pair["refresh"]
        assert bearer(APIClient(), new_pair["access"]).get("/api/v1/me").status_code == 200

        reused = refresh(api, pair["refresh"])
        assert reused.status_code == 401
        assert reused.json()["error"]["code"] == "token_not_valid"
        assert refresh(api, new_pair["refresh"]).status_code == 200

    def test_expired_refresh_token_is_refused(self, api: APIClient, user: User) -> None:
        token = RefreshToken.for_user(user)
        token.set_exp(from_time=token.current_time - timedelta(days=8))
        assert refresh(api, str(token)).status_code == 401

    def test_garbage_refresh_token_is_refused(self, api: APIClient) -> None:
        response = refresh(api, "abc.def.ghi")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_not_valid"

    def test_refresh_for_deactivated_user_is_refused(self, api: APIClient, user: User) -> None:
        pair = login(api, user.email)
        User.objects.filter(pk=user.pk).update(is_active=False)
        assert refresh(api, pair["refresh"]).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_let_exactly_one_win(user: User, report_figure: Any) -> None:
    pair = login(APIClient(), user.email)
    results: list[int] = []
    barrier = threading.Barrier(12)

    def attempt() -> None:
        try:
            barrier.wait()
            results.append(refresh(APIClient(), pair["refresh"]).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report_figure(f"concurrent refreshes of one refresh token: 12 tried, {results.count(200)} succeeded")
    assert sorted(results) == [200] + [401] * 11


class TestLogout:
    def test_logout_revokes_the_refresh_token(self, api: APIClient, user: User) -> None:
        pair = login(api, user.email)
        response = api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}, format="json")
        assert response.status_code == 204
        assert refresh(api, pair["refresh"]).status_code == 401

    def test_logout_twice_is_harmless(self, api: APIClient, user: User) -> None:
        pair = login(api, user.email)
        assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}, format="json").status_code == 204
        assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}, format="json").status_code == 204

    def test_logout_with_a_forged_token_is_refused(self, api: APIClient) -> None:
        response = api.post("/api/v1/auth/logout", {"refresh": "x.y.z"}, format="json")
        assert response.status_code == 401

    def test_logout_of_one_session_keeps_the_other(self, api: APIClient, user: User) -> None:
        phone, laptop = login(api, user.email), login(api, user.email)
        api.post("/api/v1/auth/logout", {"refresh": phone["refresh"]}, format="json")
        assert refresh(api, laptop["refresh"]).status_code == 200


class TestPasswordChange:
    def test_changes_password_and_ends_every_earlier_session(self, api: APIClient, user: User) -> None:
        other_session = login(APIClient(), user.email)
        current = login(api, user.email)
        client = bearer(APIClient(), current["access"])

        response = client.post(
            "/api/v1/me/password", {"current_password": PASSWORD, "new_password": STRONG}, format="json"
        )
        assert response.status_code == 200
        fresh = response.json()

        # every refresh token issued before is revoked, and access tokens are refused at once
        assert refresh(api, other_session["refresh"]).status_code == 401
        assert refresh(api, current["refresh"]).status_code == 401
        stale = bearer(APIClient(), other_session["access"]).get("/api/v1/me")
        assert stale.status_code == 401
        assert stale.json()["error"]["code"] == "password_changed"
        # the new pair works, and so does the new password
        assert bearer(APIClient(), fresh["access"]).get("/api/v1/me").status_code == 200
        assert refresh(api, fresh["refresh"]).status_code == 200
        login(api, user.email, STRONG)
        old = api.post("/api/v1/auth/token", {"email": user.email, "password": PASSWORD}, format="json")
        assert old.status_code == 401

    def test_wrong_current_password_changes_nothing(self, user_api: APIClient, user: User) -> None:
        response = user_api.post(
            "/api/v1/me/password",
            {"current_password": "not it at all", "new_password": STRONG},
            format="json",
        )
        assert response.status_code == 400
        assert "current_password" in response.json()["error"]["details"]["fields"]
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_weak_new_password_is_refused(self, user_api: APIClient, user: User) -> None:
        response = user_api.post(
            "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "123"}, format="json"
        )
        assert response.status_code == 400
        assert "password" in response.json()["error"]["details"]["fields"]
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_needs_authentication(self, api: APIClient) -> None:
        response = api.post(
            "/api/v1/me/password", {"current_password": "x", "new_password": STRONG}, format="json"
        )
        assert response.status_code == 401
