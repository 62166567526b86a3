"""Account reads."""

import uuid

from django.db.models import QuerySet

from wallet.accounts.models import User


def user_list() -> QuerySet[User]:
    return User.objects.all()


def user_get(*, user_id: uuid.UUID | str) -> User | None:
    return User.objects.filter(pk=user_id).first()
