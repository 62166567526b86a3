"""Account reads."""

import uuid

from django.conf import settings
from django.db import router
from django.db.models import QuerySet
from rest_framework_simplejwt.utils import get_md5_hash_password

from wallet.accounts import token_cache
from wallet.accounts.models import User
from wallet.core.cache import read_through
from wallet.core.db import select_one

# What an access token's request needs of its user, cached in Redis (USER_CACHE_SECONDS): never the password
# hash (a deferred field, read from the database only if a view asks, e.g. a step-up check), only simplejwt's
# fingerprint of it, which every token carries already.
_TOKEN_USER_FIELDS = tuple(
    field.attname
    for field in User._meta.concrete_fields
    if field.attname in {"id", "email", "role", "admin_duty", "is_active", "created_at"}
)


def user_list() -> QuerySet[User]:
    return User.objects.all()


def user_get(*, user_id: uuid.UUID | str) -> User | None:
    # select_one: every authenticated request reads its user (wallet.accounts.http.authentication).
    return select_one(User, id=user_id)


def user_get_for_token(*, user_id: uuid.UUID) -> tuple[User, str] | None:
    """The user an access token names and the fingerprint of its password hash (the token's revoke claim),
    or None. Every authenticated request asks, so it comes from the cache when it can (one Redis round
    trip, no SQL); any change of the user moves the entry's generation on once committed
    (accounts/token_cache.py), so a deactivation, a role change or a new password is seen at once."""
    found = read_through(
        key=token_cache.entry_key(user_id=user_id),
        generation_key=token_cache.generation_key(user_id=user_id),
        timeout=settings.USER_CACHE_SECONDS,
        fill=lambda: _token_user_row(user_id),
    )
    if found is None:
        return None
    values, password_fingerprint = found
    user = User.from_db(router.db_for_read(User), _TOKEN_USER_FIELDS, values)
    return user, password_fingerprint


def _token_user_row(user_id: uuid.UUID) -> tuple[tuple[object, ...], str] | None:
    user = user_get(user_id=user_id)
    if user is None:
        return None
    return tuple(getattr(user, name) for name in _TOKEN_USER_FIELDS), get_md5_hash_password(user.password)
