"""Account reads."""

import uuid

from django.db import connection
from django.db.models import QuerySet

from wallet.accounts.models import User
from wallet.core.db import select_one


def user_list() -> QuerySet[User]:
    return User.objects.all()


def user_get(*, user_id: uuid.UUID | str) -> User | None:
    return User.objects.filter(pk=user_id).first()


def user_get_for_request(*, user_id: uuid.UUID) -> User | None:
    """The user a request's token names (the same row as user_get), read with a fixed statement: every
    authenticated request makes this read. Accounts are read from the primary only (PRIMARY_ONLY_APPS)."""
    if connection.vendor != "postgresql":  # make run's SQLite
        return user_get(user_id=user_id)
    return select_one(User, where="id = %s", params=[user_id])
