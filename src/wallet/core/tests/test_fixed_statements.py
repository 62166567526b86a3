"""wallet.core.db's fixed statements: insert_if_absent (one INSERT ... ON CONFLICT DO NOTHING RETURNING, whose
conflict neither raises nor spoils the caller's transaction) and select_one."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from wallet.accounts.models import User
from wallet.core.db import insert_if_absent, select_one
from wallet.core.models import IdempotencyRecord
from wallet.notifications.models import Notification

pytestmark = pytest.mark.django_db


def record(user: User, key: str = "k-1", fingerprint: str = "f" * 64) -> IdempotencyRecord:
    return IdempotencyRecord(user=user, key=key, scope="withdrawal_create", fingerprint=fingerprint)


def test_a_new_row_goes_in_with_its_defaults_and_gets_its_serial_key(user: User) -> None:
    row = record(user)
    with CaptureQueriesContext(connection) as captured:
        assert insert_if_absent(row) is True
    assert len(captured.captured_queries) == 1
    assert row.pk is not None
    assert not row._state.adding
    stored = IdempotencyRecord.objects.get(pk=row.pk)
    assert (stored.key, stored.state, stored.response_body) == ("k-1", "in_progress", "")


def test_a_conflict_returns_false_changes_nothing_and_the_transaction_goes_on(user: User) -> None:
    first = record(user, fingerprint="a" * 64)
    assert insert_if_absent(first)
    with transaction.atomic():
        second = record(user, fingerprint="b" * 64)
        assert insert_if_absent(second) is False
        assert second.pk is None
        # The transaction is still usable (an IntegrityError would have aborted it).
        assert IdempotencyRecord.objects.filter(user=user).count() == 1
    assert IdempotencyRecord.objects.get(user=user).fingerprint == "a" * 64


def test_json_and_uuid_fields_and_a_partial_unique_index(user: User) -> None:
    transaction_id = uuid.uuid4()
    now = timezone.now()

    def notification(context: dict[str, str]) -> Notification:
        return Notification(
            id=uuid.uuid4(),
            user=user,
            event="withdrawal.failed",
            transaction_id=transaction_id,
            context=context,
            next_attempt_at=now + timedelta(seconds=30),
        )

    context = {"reason": "bank said no", "quote": 'it\'s "fine"'}
    first = notification(context)
    assert insert_if_absent(first)
    assert Notification.objects.get(id=first.id).context == context
    # Same (transaction, event): the partial unique index refuses it, quietly.
    assert insert_if_absent(notification({})) is False
    assert Notification.objects.filter(transaction_id=transaction_id).count() == 1


def test_select_one_reads_the_row_as_the_orm_does_in_one_statement(user: User) -> None:
    row = record(user, key="k-select")
    row.response_body = '{"id": "x"}'
    row.locked_until = timezone.now()
    assert insert_if_absent(row)
    expected = IdempotencyRecord.objects.get(pk=row.pk)
    with CaptureQueriesContext(connection) as captured:
        found = select_one(IdempotencyRecord, user_id=user.id, key="k-select")
    assert len(captured.captured_queries) == 1
    assert found is not None
    assert not found._state.adding
    fields = [field.attname for field in IdempotencyRecord._meta.concrete_fields]
    assert {f: getattr(found, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert select_one(IdempotencyRecord, user_id=user.id, key="nope") is None
