"""The outbox: events are written in the transaction of the status change that causes them (the real hook
in the transactions app), once, with only the facts the client's backend may see."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.events import endpoints
from wallet.events import public as events
from wallet.events.models import Delivery, Event
from wallet.events.tests.conftest import Receiver, documented_verify, record_event
from wallet.transactions import public as transactions
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, fund  # noqa: F401 - fund is a fixture


def _deposit(user: User) -> Transaction:
    return Transaction.objects.create(user=user, type="deposit", amount=5_000, currency="ZAR")


@pytest.mark.django_db
class TestRecording:
    def test_a_status_change_writes_its_event_and_deliveries_in_the_same_transaction(
        self, user: User, django_capture_on_commit_callbacks: Any
    ) -> None:
        endpoint = endpoints.endpoint_create(url="http://127.0.0.1:9/", now=timezone.now()).endpoint
        deposit = _deposit(user)

        with django_capture_on_commit_callbacks() as callbacks:
            transactions.transaction_transition(transaction_id=deposit.id, to_status="failed", source="api")

        event = Event.objects.get()
        assert (event.type, event.user_id, event.transaction_id) == ("deposit.failed", user.id, deposit.id)
        body = json.loads(event.body)
        assert body == {
            "id": str(event.id),
            "type": "deposit.failed",
            "created_at": body["created_at"],
            "data": {
                "user_id": str(user.id),
                "transaction": {
                    "id": str(deposit.id),
                    "type": "deposit",
                    "status": "failed",
                    "amount": 5_000,
                    "currency": "ZAR",
                },
            },
        }
        assert list(Delivery.objects.values_list("endpoint_id", "status")) == [(endpoint.id, "pending")]
        assert [c.__name__ for c in callbacks].count("enqueue_event_deliveries") == 1

    def test_a_rolled_back_change_records_nothing(self, user: User) -> None:
        endpoints.endpoint_create(url="http://127.0.0.1:9/", now=timezone.now())
        deposit = _deposit(user)

        with pytest.raises(RuntimeError), transaction.atomic():
            transactions.transaction_transition(transaction_id=deposit.id, to_status="expired", source="api")
            raise RuntimeError("the caller's transaction fails after the transition")

        assert not Event.objects.exists()
        assert not Delivery.objects.exists()

    def test_statuses_without_an_event_type_record_nothing(self) -> None:
        events.event_record_for_transaction(
            transaction_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            transaction_type="deposit",
            status="expired",
            amount=1,
            currency="ZAR",
        )
        assert not Event.objects.exists()

    def test_recording_the_same_change_twice_keeps_one_event(self) -> None:
        facts: dict[str, Any] = {
            "transaction_id": uuid.uuid4(),
            "user_id": uuid.uuid4(),
            "transaction_type": "withdrawal",
            "status": "completed",
            "amount": 2_500,
            "currency": "ZAR",
        }
        with transaction.atomic():
            events.event_record_for_transaction(**facts)
            events.event_record_for_transaction(**facts)  # no IntegrityError: the caller's transaction lives
        assert Event.objects.count() == 1

    def test_each_endpoint_gets_only_the_types_it_subscribes_to(self) -> None:
        now = timezone.now()
        everything = endpoints.endpoint_create(url="http://127.0.0.1:9/a", now=now).endpoint
        deposits = endpoints.endpoint_create(
            url="http://127.0.0.1:9/b", event_types=["deposit.*"], now=now
        ).endpoint
        paid = endpoints.endpoint_create(
            url="http://127.0.0.1:9/c", event_types=["withdrawal.completed"], now=now
        ).endpoint
        off = endpoints.endpoint_create(url="http://127.0.0.1:9/d", enabled=False, now=now).endpoint

        record_event(transaction_type="deposit", status="completed")
        record_event(transaction_type="withdrawal", status="completed")
        record_event(transaction_type="withdrawal", status="returned")

        def types(endpoint: Any) -> set[str]:
            return set(Delivery.objects.filter(endpoint=endpoint).values_list("event__type", flat=True))

        assert types(everything) == {"deposit.completed", "withdrawal.completed", "withdrawal.returned"}
        assert types(deposits) == {"deposit.completed"}
        assert types(paid) == {"withdrawal.completed"}
        assert types(off) == set()


@pytest.mark.django_db(transaction=True)
def test_real_deposit_and_withdrawal_events_reach_the_receiver_without_bank_details(
    receiver: Receiver,
    user: User,
    user_api: APIClient,
    fund: Callable[[User, int], Transaction],  # noqa: F811 - the fixture imported above
    revio: SandboxProcess,
) -> None:
    secret = endpoints.endpoint_create(url=receiver.url, now=timezone.now()).secret
    deposit = fund(user, 20_000)
    response = user_api.post("/api/v1/withdrawals", {"amount": 3_000, "bank_account": BANK}, format="json")
    assert response.status_code == 201, response.content

    verify = documented_verify()
    got = [
        (json.loads(r.body)["type"], json.loads(r.body)["data"]["transaction"]) for r in receiver.accepted()
    ]
    assert got == [
        (
            "deposit.completed",
            {
                "id": str(deposit.id),
                "type": "deposit",
                "status": "completed",
                "amount": 20_000,
                "currency": "ZAR",
            },
        ),
        (
            "withdrawal.processing",
            {
                "id": response.json()["id"],
                "type": "withdrawal",
                "status": "processing",
                "amount": 3_000,
                "currency": "ZAR",
            },
        ),
    ]
    for request in receiver.requests:
        assert verify(secret, request.body, request.headers["Wallet-Signature"])
        for value in BANK.values():
            assert str(value).encode() not in request.body  # never bank details
