"""The cache of the user an access token names (accounts.selectors.user_get_for_token): its keys, and the
invalidation every change of a user row runs once committed (accounts.models.User.save and UserQuerySet)."""

import uuid
from typing import Any

from django.db import transaction

from wallet.core.cache import generation_bump


def entry_key(*, user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


def generation_key(*, user_id: uuid.UUID | str) -> str:
    return f"user-gen:{user_id}"


def invalidate_on_commit(*, user_id: Any, using: str | None) -> None:
    """Once the change commits, no cached copy of the user from before it is served again (a rollback keeps
    the cached copy, which is still true)."""
    key = generation_key(user_id=user_id)
    transaction.on_commit(lambda: generation_bump(key), using=using)
