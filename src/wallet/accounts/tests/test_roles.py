"""Roles and ownership: admin-only endpoints, 403 for users, 404 for what is not there, pagination."""

import uuid
from collections.abc import Callable

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from conftest import login
from wallet.accounts.models import User

pytestmark = pytest.mark.django_db


class TestAdminUsers:
    def test_admin_lists_users_newest_first_with_a_cursor(
        self, admin_api: APIClient, make_user: Callable[..., User]
    ) -> None:
        for _ in range(5):
            make_user()
        first = admin_api.get("/api/v1/admin/users?page_size=4").json()
        assert set(first) == {"results", "next", "previous"}
        assert len(first["results"]) == 4
        assert first["previous"] is None
        second = admin_api.get(first["next"]).json()
        assert len(second["results"]) == 2  # five users plus the admin
        assert second["next"] is None
        emails = [row["email"] for row in first["results"] + second["results"]]
        assert len(set(emails)) == 6
        created = [row["created_at"] for row in first["results"] + second["results"]]
        assert created == sorted(created, reverse=True)

    @pytest.mark.parametrize("path", ["/api/v1/admin/users", f"/api/v1/admin/users/{uuid.uuid4()}"])
    def test_users_get_403_on_admin_endpoints(self, user_api: APIClient, path: str) -> None:
        response = user_api.get(path)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_unknown_user_id_is_404(self, admin_api: APIClient) -> None:
        response = admin_api.get(f"/api/v1/admin/users/{uuid.uuid4()}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_malformed_user_id_is_404_not_500(self, admin_api: APIClient) -> None:
        assert admin_api.get("/api/v1/admin/users/not-a-uuid").status_code == 404

    def test_two_admins_promote_a_user(
        self, admin_api: APIClient, user: User, make_user: Callable[..., User]
    ) -> None:
        proposed = admin_api.patch(f"/api/v1/admin/users/{user.id}", {"role": "admin"}, format="json")
        assert proposed.status_code == 202
        assert proposed.json()["role"] == "user"
        second = APIClient()
        second_admin = make_user(email="second@example.com", role=User.Role.ADMIN)
        second.credentials(HTTP_AUTHORIZATION=f"Bearer {login(second, second_admin.email)['access']}")
        approved = second.patch(f"/api/v1/admin/users/{user.id}", {"role": "admin"}, format="json")
        assert approved.status_code == 200
        assert approved.json()["role"] == "admin"
        assert approved.json()["admin_duty"] == "operations"
        user.refresh_from_db()
        assert user.is_admin

    def test_unknown_role_is_refused(self, admin_api: APIClient, user: User) -> None:
        response = admin_api.patch(f"/api/v1/admin/users/{user.id}", {"role": "owner"}, format="json")
        assert response.status_code == 400
        assert "role" in response.json()["error"]["details"]["fields"]
        user.refresh_from_db()
        assert user.role == "user"

    def test_deactivating_a_user_ends_their_sessions(self, admin_api: APIClient, user: User) -> None:
        pair = login(APIClient(), user.email)
        response = admin_api.patch(f"/api/v1/admin/users/{user.id}", {"is_active": False}, format="json")
        assert response.status_code == 200
        api = APIClient()
        assert api.post("/api/v1/auth/token/refresh", pair, format="json").status_code == 401
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
        assert api.get("/api/v1/me").status_code == 401

    def test_users_cannot_reach_the_admin_site(self, user: User, admin_user: User) -> None:
        from django.test import Client

        client = Client()
        client.force_login(user)
        assert client.get("/admin/").status_code == 302  # sent to the admin login page
        client.force_login(admin_user)
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/accounts/user/").status_code == 200


class TestEnsureAdmin:
    def test_first_run_creates_an_admin_with_a_random_printed_password(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("DJANGO_ADMIN_EMAIL", raising=False)
        monkeypatch.delenv("DJANGO_ADMIN_PASSWORD", raising=False)
        call_command("ensure_admin")
        line = capsys.readouterr().out.splitlines()[0]
        password = line.split("one-time password: ")[1].strip()
        admin = User.objects.get(email="admin@localhost")
        assert admin.is_admin
        assert admin.check_password(password)
        assert len(password) >= 16

        call_command("ensure_admin")  # a second run prints no password and changes none
        assert "one-time password" not in capsys.readouterr().out
        admin.refresh_from_db()
        assert admin.check_password(password)

    def test_two_installs_never_share_a_password(self, capsys: pytest.CaptureFixture[str]) -> None:
        call_command("ensure_admin")
        first = capsys.readouterr().out
        call_command("ensure_admin", "--new-password")
        second = capsys.readouterr().out
        assert first.split("password: ")[1].split()[0] != second.split("password: ")[1].split()[0]

    def test_admin_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DJANGO_ADMIN_EMAIL", "Boss@Example.com")
        monkeypatch.setenv("DJANGO_ADMIN_PASSWORD", "from the environment 9")
        call_command("ensure_admin")
        admin = User.objects.get(email="boss@example.com")
        assert admin.is_admin
        assert admin.check_password("from the environment 9")
