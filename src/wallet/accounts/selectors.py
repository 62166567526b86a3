"""Account reads."""

import uuid

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import QuerySet

from wallet.accounts.models import User


def user_list() -> QuerySet[User]:
    return User.objects.all()


def user_get(*, user_id: uuid.UUID | str) -> User | None:
    return User.objects.filter(pk=user_id).first()


# Every authenticated request reads its user (is_active, and the password hash that revokes its tokens).
# The ORM spent more CPU building that SELECT than PostgreSQL spent answering it, so the statement is
# written once here. Accounts are read from the primary only (wallet.core.db_router.PRIMARY_ONLY_APPS).
_USER_FIELDS = tuple(field.attname for field in User._meta.concrete_fields)
_USER_BY_ID_SQL = "SELECT {} FROM users WHERE id = %s".format(  # noqa: S608  # nosec B608  # fixed column names
    ", ".join(f'"{field.column}"' for field in User._meta.concrete_fields)
)


def user_get_for_request(*, user_id: uuid.UUID) -> User | None:
    """The user a request's token names, with a fixed statement (the same row as user_get)."""
    if connection.vendor != "postgresql":  # the statement and its types are PostgreSQL's (make run: SQLite)
        return user_get(user_id=user_id)
    with connection.cursor() as cursor:
        cursor.execute(_USER_BY_ID_SQL, [user_id])
        row = cursor.fetchone()
    return None if row is None else User.from_db(DEFAULT_DB_ALIAS, _USER_FIELDS, row)
