"""Recording into the outbox: idempotent per (transaction, event), silent for events that send nothing."""

import uuid
from typing import Any

import pytest

from wallet.notifications.models import Notification
from wallet.notifications.public import notification_record_for_transaction

pytestmark = pytest.mark.django_db
FACTS: Any = {"amount": 5_000, "currency": "ZAR", "bank_account_masked": "****6789"}


def test_recording_an_event_twice_keeps_one_row_and_enqueues_once(
    user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    transaction_id = uuid.uuid4()
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(3):
            notification_record_for_transaction(
                transaction_id=transaction_id, user_id=user.id, event="withdrawal.completed", **FACTS
            )
        notification_record_for_transaction(
            transaction_id=transaction_id, user_id=user.id, event="withdrawal.returned", **FACTS
        )

    rows = Notification.objects.filter(transaction_id=transaction_id)
    events = sorted(rows.values_list("event", flat=True))
    assert events == ["withdrawal.completed", "withdrawal.returned"]
    assert len(callbacks) == 2


@pytest.mark.parametrize(
    "event", ["deposit.pending", "withdrawal.pending", "deposit.cancelled", "deposit.expired", "nonsense"]
)
def test_events_that_send_nothing_are_not_recorded(
    user: Any, event: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        notification_record_for_transaction(
            transaction_id=uuid.uuid4(), user_id=user.id, event=event, **FACTS
        )
    assert not Notification.objects.exists()
    assert callbacks == []
