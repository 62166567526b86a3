"""The user an access token names is cached in Redis (issue 18: a read costs the framework's floor plus a
Redis round trip, no SQL for the user), and every change of the user is seen by the very next request."""

import re
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from conftest import PASSWORD
from wallet.accounts import token_cache
from wallet.accounts.models import User
from wallet.accounts.selectors import user_get_for_token

# Committed for real: the cache is filled and invalidated only outside a transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def bearer(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def user_reads(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if re.search(r'FROM "?users"? ', q["sql"])]


class RollbackError(Exception):
    pass


def test_after_the_first_request_the_user_comes_from_the_cache(user: User) -> None:
    client = bearer(user)
    assert client.get("/api/v1/me").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert user_reads(captured) == []


def test_the_cached_entry_holds_no_password_hash(user: User) -> None:
    assert bearer(user).get("/api/v1/me").status_code == 200
    entry = cache.get(token_cache.entry_key(user_id=user.id))
    assert entry is not None
    assert user.password not in repr(entry)


@pytest.mark.parametrize("how", ["save", "queryset_update"])
def test_a_deactivation_is_seen_by_the_next_request(user: User, how: str) -> None:
    client = bearer(user)
    assert client.get("/api/v1/me").status_code == 200  # cached now
    if how == "save":
        user.is_active = False
        user.save(update_fields=["is_active"])
    else:
        User.objects.filter(pk=user.pk).update(is_active=False)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "user_inactive"


def test_a_new_password_revokes_the_cached_user_s_tokens_at_once(user: User) -> None:
    client = bearer(user)
    assert client.get("/api/v1/me").status_code == 200
    user.set_password("an entirely new passphrase 42")
    user.save(update_fields=["password"])
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "password_changed"


def test_a_demoted_admin_loses_the_admin_api_at_once(admin_user: User) -> None:
    client = bearer(admin_user)
    assert client.get("/api/v1/admin/users").status_code == 200
    admin_user.role = User.Role.USER
    admin_user.save(update_fields=["role"])
    assert client.get("/api/v1/admin/users").status_code == 403


def test_a_deleted_user_s_token_is_refused_at_once(user: User) -> None:
    client = bearer(user)
    assert client.get("/api/v1/me").status_code == 200
    user.delete()
    assert client.get("/api/v1/me").status_code == 401


def test_a_login_does_not_invalidate_the_entry(user: User) -> None:
    generation = cache.get(token_cache.generation_key(user_id=user.id))
    User.objects.filter(pk=user.pk).update(last_login=user.created_at)
    user.save(update_fields=["last_login"])
    assert cache.get(token_cache.generation_key(user_id=user.id)) == generation


def test_a_rolled_back_change_keeps_the_entry(user: User) -> None:
    client = bearer(user)
    assert client.get("/api/v1/me").status_code == 200
    generation = cache.get(token_cache.generation_key(user_id=user.id))
    with pytest.raises(RollbackError), transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        raise RollbackError
    assert cache.get(token_cache.generation_key(user_id=user.id)) == generation
    assert client.get("/api/v1/me").status_code == 200


def test_a_fill_that_raced_a_change_is_never_served(user: User) -> None:
    found = user_get_for_token(user_id=user.id)
    assert found is not None
    stale_generation = int(cache.get(token_cache.generation_key(user_id=user.id)) or 0)
    user.is_active = False
    user.save(update_fields=["is_active"])  # commits and moves the generation on
    # A reader that read the generation before that commit, and the row as it was, stores its copy late:
    cache.set(
        token_cache.entry_key(user_id=user.id),
        (stale_generation, (_row_of(found[0], is_active=True), found[1])),
        timeout=60,
    )
    refreshed = user_get_for_token(user_id=user.id)
    assert refreshed is not None
    assert refreshed[0].is_active is False


def _row_of(user: User, **overrides: Any) -> tuple[Any, ...]:
    from wallet.accounts.selectors import _TOKEN_USER_FIELDS

    return tuple(overrides.get(name, getattr(user, name)) for name in _TOKEN_USER_FIELDS)


def test_a_view_that_needs_the_password_still_reads_it(user: User) -> None:
    assert user_get_for_token(user_id=user.id) is not None  # fills the cache
    found = user_get_for_token(user_id=user.id)  # served from it
    assert found is not None
    cached_user = found[0]
    assert "password" not in cached_user.__dict__  # deferred: not in the cache
    assert cached_user.check_password(PASSWORD)  # read from the database when asked
    assert not cached_user.check_password("not the password")


def test_an_unknown_user_is_refused() -> None:
    ghost = User(id=uuid.uuid4(), email="ghost@example.com")
    response = bearer(ghost).get("/api/v1/me")
    assert response.status_code == 401


def test_without_redis_the_user_is_read_from_the_database(user: User, settings: Any) -> None:
    from wallet.core.testing import unused_port

    settings.CACHES = {
        "default": {
            "BACKEND": "wallet.core.cache.SharedPoolRedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_port()}/0",
        }
    }
    assert bearer(user).get("/api/v1/me").status_code == 200
