"""A replayed Idempotency-Key answers from Redis: no SQL for the key's record (issue 18: a replay costs no
more than a read), the same bytes as the first answer, and the database stays the truth when the
cache is cold."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.core.models import IdempotencyRecord
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK

# Committed for real: a completed answer is cached only outside a transaction.
pytestmark = pytest.mark.django_db(transaction=True)

Fund = Callable[[User, int], Transaction]


def withdraw(api: APIClient, key: str, amount: int = 2_500) -> Any:
    return api.post(
        "/api/v1/withdrawals",
        {"amount": amount, "bank_account": BANK},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def sql_of(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def test_a_replay_runs_no_sql_and_answers_the_same_bytes(user_api: APIClient, user: User, fund: Fund) -> None:
    fund(user, 10_000)
    first = withdraw(user_api, "replay-from-redis")
    assert first.status_code == 201
    withdraw(user_api, "replay-from-redis")  # the user's row is cached by now too
    with CaptureQueriesContext(connection) as captured:
        again = withdraw(user_api, "replay-from-redis")
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert sql_of(captured) == []
    assert Transaction.objects.filter(type="withdrawal").count() == 1


def test_a_different_body_with_a_cached_key_is_still_refused(
    user_api: APIClient, user: User, fund: Fund
) -> None:
    fund(user, 10_000)
    assert withdraw(user_api, "reused-key").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        reused = withdraw(user_api, "reused-key", amount=2_600)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert not any("idempotency_keys" in sql for sql in sql_of(captured))
    assert Transaction.objects.filter(type="withdrawal").count() == 1


def test_a_cold_cache_replays_from_the_database_and_refills(
    user_api: APIClient, user: User, fund: Fund
) -> None:
    fund(user, 10_000)
    first = withdraw(user_api, "cold-cache")
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        again = withdraw(user_api, "cold-cache")
    assert again.content == first.content
    assert any(re.search(r'FROM "?idempotency_keys"?', sql) for sql in sql_of(captured))
    with CaptureQueriesContext(connection) as captured:
        third = withdraw(user_api, "cold-cache")
    assert third.content == first.content
    assert not any("idempotency_keys" in sql for sql in sql_of(captured))


def test_the_cached_answer_is_per_user(user_api: APIClient, user: User, make_user: Any, fund: Fund) -> None:
    from conftest import login

    fund(user, 10_000)
    other = make_user(email="sipho@example.com")
    fund(other, 10_000)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(other_api, other.email)['access']}")
    mine = withdraw(user_api, "same-key-two-users")
    theirs = withdraw(other_api, "same-key-two-users")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert withdraw(other_api, "same-key-two-users").content == theirs.content
    assert IdempotencyRecord.objects.filter(key="same-key-two-users").count() == 2
