"""GET /api/v1/balance reads through Redis; ledger services invalidate on commit, never on rollback."""

import uuid

import pytest
from django.core.cache import cache
from django.db import transaction
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.core.db import run_in_retrying_transaction
from wallet.ledger import services
from wallet.ledger.selectors import BalanceFigures, balance_cache_generation_key, balance_get

pytestmark = pytest.mark.django_db(transaction=True)


def credit(user: User, amount: int) -> None:
    services.balance_ensure(user_id=user.id, currency="ZAR")

    def post() -> None:
        balance = services.balance_lock(user_id=user.id, currency="ZAR")
        services.deposit_credit(balance=balance, amount=amount, transaction_id=uuid.uuid4())

    run_in_retrying_transaction(post, lock_keys=[services.balance_lock_key(user_id=user.id, currency="ZAR")])


class RollbackError(Exception):
    pass


class TestBalanceCache:
    def test_a_committed_change_is_visible_at_once(self, user: User, user_api: APIClient) -> None:
        credit(user, 5_000)
        assert user_api.get("/api/v1/balance").json()["available"] == 5_000  # now cached

        credit(user, 1_500)

        assert user_api.get("/api/v1/balance").json()["available"] == 6_500
        assert balance_get(user_id=user.id, currency="ZAR", cached=True).available == 6_500

    def test_the_api_answer_comes_from_the_cache(self, user: User, user_api: APIClient) -> None:
        credit(user, 5_000)
        assert user_api.get("/api/v1/balance").json()["available"] == 5_000
        # A change that bypasses the services (and so the invalidation) is not seen: the cache answered.
        from wallet.ledger.models import Balance

        Balance.objects.filter(user_id=user.id).update(available=1)
        assert user_api.get("/api/v1/balance").json()["available"] == 5_000
        assert balance_get(user_id=user.id, currency="ZAR").available == 1

    def test_a_rolled_back_change_never_reaches_the_cache(self, user: User, user_api: APIClient) -> None:
        credit(user, 5_000)
        generation_key = balance_cache_generation_key(user_id=user.id, currency="ZAR")
        generation = cache.get(generation_key)
        assert user_api.get("/api/v1/balance").json()["available"] == 5_000

        with pytest.raises(RollbackError), transaction.atomic():
            balance = services.balance_lock(user_id=user.id, currency="ZAR")
            services.deposit_credit(balance=balance, amount=9_000, transaction_id=uuid.uuid4())
            # Inside the transaction a cached read sees its own uncommitted figure but does not store it.
            assert balance_get(user_id=user.id, currency="ZAR", cached=True).available == 14_000
            raise RollbackError

        assert cache.get(generation_key) == generation  # no invalidation for a rollback
        assert user_api.get("/api/v1/balance").json()["available"] == 5_000
        cache.clear()
        assert user_api.get("/api/v1/balance").json()["available"] == 5_000

    def test_a_fill_that_raced_a_commit_is_never_served(self, user: User) -> None:
        credit(user, 5_000)
        stale_generation = int(cache.get(balance_cache_generation_key(user_id=user.id, currency="ZAR")) or 0)
        # A reader that read the generation before a commit stores its (old) figure under that generation...
        cache.set(
            f"balance:{user.id}:ZAR",
            (stale_generation, BalanceFigures(currency="ZAR", available=123, reserved=0)),
            timeout=60,
        )
        credit(user, 1_000)  # ...and the commit moves the generation on.
        assert balance_get(user_id=user.id, currency="ZAR", cached=True).available == 6_000
