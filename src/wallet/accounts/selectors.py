"""Account reads."""

import uuid

from django.db.models import QuerySet

from wallet.accounts.models import User
from wallet.core.db import select_one


def user_list() -> QuerySet[User]:
    return User.objects.all()


def user_get(*, user_id: uuid.UUID | str) -> User | None:
    # select_one: every authenticated request reads its user (wallet.accounts.http.authentication).
    return select_one(User, id=user_id)
