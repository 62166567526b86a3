"""An email about a deposit or withdrawal shows the transaction as it was when the email was recorded: the
snapshot kept with the outbox row, never a read of the transactions app at send time (issue 21)."""

import importlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import timezone

from wallet.accounts.models import User
from wallet.notifications.models import Notification, NotificationStatus
from wallet.notifications.services import notification_sweep
from wallet.notifications.tasks import notification_send_task
from wallet.transactions.models import Transaction

pytestmark = pytest.mark.django_db(transaction=True)

Fund = Callable[[User, int], Transaction]


def _after_grace() -> Any:
    return timezone.now() + timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS + 1)


def test_an_email_sent_after_the_transaction_changed_shows_the_snapshot(
    user: User, fund: Fund, mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notification_send_task, "delay", lambda **kwargs: None)  # sent later, by the sweep
    deposit = fund(user, 123_456)
    row = Notification.objects.get(transaction_id=deposit.id)
    assert row.context["amount"] == 123_456

    # The transaction changes after the email was recorded, and before it is sent.
    Transaction.objects.filter(id=deposit.id).update(amount=999_999, failure_reason="changed later")
    assert notification_sweep(now=_after_grace()) == 1

    [email] = mailoutbox
    assert "R 1,234.56" in email.body
    assert "R 9,999.99" not in email.body
    assert "changed later" not in email.body


def test_an_email_sends_even_once_the_transaction_is_gone(
    user: User, fund: Fund, mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of the transactions app is read at send time (what the import contract also holds)."""
    monkeypatch.setattr(notification_send_task, "delay", lambda **kwargs: None)
    deposit = fund(user, 5_000)
    monkeypatch.setattr(
        Transaction.objects, "get_queryset", lambda: pytest.fail("the send read a transaction")
    )

    assert notification_sweep(now=_after_grace()) == 1
    assert "R 50.00" in mailoutbox[0].body
    assert Notification.objects.get(transaction_id=deposit.id).status == NotificationStatus.SENT


def test_a_row_recorded_before_snapshots_gets_one_from_the_migration_or_is_given_up(
    user: User, fund: Fund, mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notification_send_task, "delay", lambda **kwargs: None)
    first, second = fund(user, 5_000), fund(user, 7_000)
    Notification.objects.filter(transaction_id__in=[first.id, second.id]).update(context={})
    migration = importlib.import_module("wallet.notifications.migrations.0002_transaction_email_snapshots")
    Notification.objects.filter(transaction_id=second.id).update(status=NotificationStatus.SENT)

    migration.snapshot_unsent(apps, None)

    assert Notification.objects.get(transaction_id=first.id).context["amount"] == 5_000
    assert Notification.objects.get(transaction_id=second.id).context == {}  # sent: left as it was
    Notification.objects.filter(transaction_id=first.id).update(context={})  # one the migration missed
    assert notification_sweep(now=_after_grace()) == 1
    assert mailoutbox == []
    given_up = Notification.objects.get(transaction_id=first.id)
    assert given_up.status == NotificationStatus.FAILED
    assert "no snapshot" in given_up.last_error
