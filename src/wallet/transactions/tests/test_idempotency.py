"""Idempotency-Key on POST /deposits and /withdrawals: replay, reuse, in-flight, per-user scope, takeover."""

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import login
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core import idempotency
from wallet.core.models import IdempotencyRecord
from wallet.ledger.selectors import balance_get
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]


def post(api: APIClient, path: str, body: dict[str, Any], key: str | None) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(path, body, format="json", **headers)


class TestReplay:
    def test_same_key_same_body_replays_the_first_response_with_one_side_effect(
        self, user_api: APIClient, user: User, fund: Fund
    ) -> None:
        fund(user, 10_000)
        body = {"amount": 2_500, "bank_account": BANK}
        first = post(user_api, "/api/v1/withdrawals", body, "withdraw-2500-a")
        assert first.status_code == 201
        for _ in range(5):
            again = post(user_api, "/api/v1/withdrawals", body, "withdraw-2500-a")
            assert again.status_code == 201
            assert again.content == first.content
            assert again["Idempotent-Replayed"] == "true"
        assert Transaction.objects.filter(type="withdrawal").count() == 1
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_500

    def test_deposits_replay_too(self, user_api: APIClient, revio: SandboxProcess) -> None:
        first = post(user_api, "/api/v1/deposits", {"amount": 5_000}, "deposit-1")
        second = post(user_api, "/api/v1/deposits", {"amount": 5_000}, "deposit-1")
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.content == second.content
        assert Transaction.objects.count() == 1

    def test_an_error_after_the_deposit_exists_is_replayed_as_well(
        self, user_api: APIClient, revio: SandboxProcess
    ) -> None:
        revio.control.fail_next("purchases.create", status=503, count=3)
        first = post(user_api, "/api/v1/deposits", {"amount": 5_000}, "deposit-2")
        second = post(user_api, "/api/v1/deposits", {"amount": 5_000}, "deposit-2")
        assert (first.status_code, second.status_code) == (503, 503)
        assert first.content == second.content
        assert Transaction.objects.count() == 1

    def test_without_a_key_each_request_is_new(self, user_api: APIClient, revio: SandboxProcess) -> None:
        post(user_api, "/api/v1/deposits", {"amount": 5_000}, None)
        post(user_api, "/api/v1/deposits", {"amount": 5_000}, None)
        assert Transaction.objects.count() == 2


class TestMisuse:
    def test_same_key_different_body_is_422_and_changes_nothing(
        self, user_api: APIClient, user: User, fund: Fund
    ) -> None:
        fund(user, 10_000)
        assert (
            post(user_api, "/api/v1/withdrawals", {"amount": 2_500, "bank_account": BANK}, "k1").status_code
            == 201
        )
        response = post(user_api, "/api/v1/withdrawals", {"amount": 9_000, "bank_account": BANK}, "k1")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert Transaction.objects.filter(type="withdrawal").count() == 1

    def test_same_key_on_another_endpoint_is_422(self, user_api: APIClient, user: User, fund: Fund) -> None:
        fund(user, 10_000)
        post(user_api, "/api/v1/deposits", {"amount": 2_500}, "shared")
        response = post(user_api, "/api/v1/withdrawals", {"amount": 2_500, "bank_account": BANK}, "shared")
        assert response.status_code == 422

    @pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey"])
    def test_malformed_keys_are_400(self, user_api: APIClient, revio: SandboxProcess, key: str) -> None:
        response = post(user_api, "/api/v1/deposits", {"amount": 5_000}, key)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_idempotency_key"
        assert Transaction.objects.count() == 0

    def test_a_request_refused_before_moving_money_stores_nothing(
        self, user_api: APIClient, user: User, fund: Fund
    ) -> None:
        fund(user, 1_000)
        refused = post(user_api, "/api/v1/withdrawals", {"amount": 5_000, "bank_account": BANK}, "retry-me")
        assert refused.status_code == 409
        assert not IdempotencyRecord.objects.exists()
        fund(user, 9_000)
        assert (
            post(
                user_api, "/api/v1/withdrawals", {"amount": 5_000, "bank_account": BANK}, "retry-me"
            ).status_code
            == 201
        )

    def test_keys_are_scoped_per_user(
        self, user_api: APIClient, user: User, fund: Fund, make_user: Callable[..., User]
    ) -> None:
        other = make_user()
        fund(user, 10_000)
        fund(other, 10_000)
        mine = post(user_api, "/api/v1/withdrawals", {"amount": 2_500, "bank_account": BANK}, "same-key")
        other_api = APIClient()
        other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(other_api, other.email)['access']}")
        theirs = post(other_api, "/api/v1/withdrawals", {"amount": 2_500, "bank_account": BANK}, "same-key")
        assert theirs.status_code == 201
        assert theirs.json()["id"] != mine.json()["id"]
        assert balance_get(user_id=other.id, currency="ZAR").available == 7_500


class TestInFlight:
    @pytest.mark.django_db(transaction=True)
    def test_a_second_request_while_the_first_runs_gets_409(
        self, make_user: Callable[..., User], fund: Fund, revio: SandboxProcess
    ) -> None:
        user = make_user()
        fund(user, 10_000)
        token = login(APIClient(), user.email)["access"]
        revio.control.slow_next("eft.payments.create", delay_ms=1_500)
        body = {"amount": 2_000, "bank_account": BANK}
        results: dict[str, Any] = {}

        def first() -> None:
            try:
                client = APIClient()
                client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
                results["first"] = post(client, "/api/v1/withdrawals", body, "slow-key")
            finally:
                connection.close()

        thread = threading.Thread(target=first)
        thread.start()
        # Wait until the first request has committed its reservation and is waiting on Revio.
        deadline = timezone.now() + timedelta(seconds=5)
        while not IdempotencyRecord.objects.filter(key="slow-key").exists() and timezone.now() < deadline:
            pass
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        during = post(client, "/api/v1/withdrawals", body, "slow-key")
        thread.join()
        after = post(client, "/api/v1/withdrawals", body, "slow-key")
        connection.close()

        assert during.status_code == 409
        assert during.json()["error"]["code"] == "request_in_progress"
        assert results["first"].status_code == 201
        assert after.status_code == 201
        assert after.content == results["first"].content
        assert Transaction.objects.filter(type="withdrawal").count() == 1

    def test_a_key_whose_request_died_is_taken_over_after_its_lease(
        self, user_api: APIClient, user: User, fund: Fund, settings: Any
    ) -> None:
        """The first request reserved money, then its process died: the retry answers without paying twice."""
        fund(user, 10_000)
        body = {"amount": 3_000, "bank_account": BANK}
        first = post(user_api, "/api/v1/withdrawals", body, "crashy")
        withdrawal_id = uuid.UUID(first.json()["id"])
        # Rewind the record to how a crash between the reservation and the answer would leave it.
        IdempotencyRecord.objects.filter(key="crashy").update(
            state="in_progress",
            response_body="",
            response_status=None,
            locked_until=timezone.now() - timedelta(seconds=1),
        )
        retry = post(user_api, "/api/v1/withdrawals", body, "crashy")
        assert retry.status_code == 201
        assert retry.json()["id"] == str(withdrawal_id)
        assert Transaction.objects.filter(type="withdrawal").count() == 1
        assert balance_get(user_id=user.id, currency="ZAR").available == 7_000
        assert IdempotencyRecord.objects.get(key="crashy").state == "completed"


def test_records_are_purged_after_the_retention_period(user: User, settings: Any) -> None:
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    old = IdempotencyRecord.objects.create(
        user=user, key="old", scope="s", fingerprint="f", created_at=timezone.now() - timedelta(hours=25)
    )
    IdempotencyRecord.objects.create(
        user=user, key="fresh", scope="s", fingerprint="f", created_at=timezone.now() - timedelta(hours=23)
    )
    assert idempotency.purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    assert not IdempotencyRecord.objects.filter(id=old.id).exists()
