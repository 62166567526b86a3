"""Every authenticated request: the user named by a valid access token is read once, by a fixed statement,
and refused if gone, inactive or its password changed since the token was issued."""

import re
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from wallet.accounts.models import User

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key=settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def test_the_user_is_read_once_and_is_the_token_s_user(user: User) -> None:
    with CaptureQueriesContext(connection) as captured:
        response = bearer(str(AccessToken.for_user(user))).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    user_reads = [q["sql"] for q in captured.captured_queries if re.search(r"FROM \"?users\"? ", q["sql"])]
    assert len(user_reads) == 1
    assert str(user.id).replace("-", "") in user_reads[0].replace("-", "")


def test_a_deactivated_user_s_token_stops_working_at_once(user: User) -> None:
    token = str(AccessToken.for_user(user))
    assert bearer(token).get("/api/v1/me").status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = bearer(token).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "user_inactive"


def test_a_deleted_user_s_token_is_refused(user: User) -> None:
    token = str(AccessToken.for_user(user))
    User.objects.filter(pk=user.pk).delete()
    response = bearer(token).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "user_not_found"


def test_a_password_changed_elsewhere_revokes_the_token(user: User) -> None:
    token = str(AccessToken.for_user(user))
    user.set_password("another long passphrase 77")
    user.save(update_fields=["password"])
    response = bearer(token).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "password_changed"


@pytest.mark.parametrize("user_id", ["not-a-uuid", "", 42, None, "00000000-0000-0000-0000-00000000000g"])
def test_a_signed_token_with_a_malformed_user_id_is_a_401_not_a_500(user: User, user_id: Any) -> None:
    # Only a holder of the signing key could mint these; the answer must still be a clean 401.
    claims = dict(AccessToken.for_user(user).payload)
    claims["user_id"] = user_id
    response = bearer(signed(claims)).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"token_not_valid", "user_not_found"}


def test_a_signed_token_without_a_user_id_is_refused(user: User) -> None:
    claims = dict(AccessToken.for_user(user).payload)
    del claims["user_id"]
    response = bearer(signed(claims)).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
