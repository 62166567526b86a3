"""Every email renders: one-line subject, plain text unescaped, HTML escaped, the right footer; and a
reset link is never sent after it expired."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.template import TemplateSyntaxError

from wallet.notifications import rendering
from wallet.notifications.events import EVENTS, PASSWORD_RESET, TRANSACTION_EVENTS
from wallet.notifications.models import Notification, NotificationStatus
from wallet.notifications.rendering import email_render
from wallet.notifications.services import (
    SendOutcome,
    notification_record_password_reset,
    notification_send,
)

SAMPLE: dict[str, Any] = {
    "transaction_id": "0b7c6f7e-0000-4000-8000-000000000001",
    "reference": "0B7C6F7E",
    "type": "withdrawal",
    "amount": "R 1,234.56",
    "bank_account_masked": "•••••••4567",
    "failure_reason": "Closed & <frozen>",
    "transaction_url": "https://app.example/transactions/0b7c6f7e-0000-4000-8000-000000000001",
    "reset_url": "https://app.example/reset-password?token=abc.def-123",
    "valid_minutes": 60,
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_renders_text_and_html(event: str, settings: Any) -> None:
    settings.FRONTEND_URL = "https://app.example"
    email = email_render(event=event, context=SAMPLE)

    assert email.subject
    assert "\n" not in email.subject
    assert "{" not in email.subject + email.text + email.html
    assert "&amp;" not in email.text
    assert "&lt;" not in email.text
    assert email.html.lstrip().startswith("<!doctype html>")
    if event in TRANSACTION_EVENTS:
        assert "R 1,234.56" in email.subject
        assert SAMPLE["transaction_url"] in email.text
        assert SAMPLE["transaction_url"] in email.html
    if "failed" in event or "returned" in event:
        assert "Reason: Closed & <frozen>" in email.text
        assert "Closed &amp; &lt;frozen&gt;" in email.html
    optional = not EVENTS[event].essential
    assert ("https://app.example/settings/notifications" in email.text) is optional
    assert ("https://app.example/settings/notifications" in email.html) is optional


def test_the_password_reset_email_carries_the_link_and_its_lifetime() -> None:
    email = email_render(event=PASSWORD_RESET, context=SAMPLE)
    assert email.subject == "Reset your Wallet password"
    assert SAMPLE["reset_url"] in email.text
    assert 'href="https://app.example/reset-password?token=abc.def-123"' in email.html
    assert "expires in 60 minutes" in email.text


def test_which_events_are_essential() -> None:
    essential = {name for name, spec in EVENTS.items() if spec.essential}
    assert essential == {
        "withdrawal.completed",
        "withdrawal.failed",
        "withdrawal.returned",
        "withdrawal.clawed_back",
        # Money taken back from the wallet (issue 16): a refund, a chargeback, a debt.
        "deposit.refunded",
        "deposit.charged_back",
        "debt.created",
        "security.password_reset",
        "security.email_changed",
        "security.registration_attempt",
    }


@pytest.mark.django_db
def test_a_reset_link_that_expired_in_the_outbox_is_not_sent(user: Any, mailoutbox: list[Any]) -> None:
    notification_record_password_reset(user_id=user.id, reset_url=SAMPLE["reset_url"])
    row = Notification.objects.get(user=user)
    too_late = row.created_at + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)

    assert notification_send(notification_id=row.id, now=too_late) == SendOutcome.FAILED
    row.refresh_from_db()
    assert (row.status, row.context, row.attempts) == (NotificationStatus.FAILED, {}, 0)
    assert "expired" in row.last_error
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_broken_template_gives_up_at_once_instead_of_retrying_forever(
    user: Any, mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    notification_record_password_reset(user_id=user.id, reset_url=SAMPLE["reset_url"])
    row = Notification.objects.get(user=user)

    def broken(**kwargs: Any) -> None:
        raise TemplateSyntaxError("Invalid block tag on line 3: 'endblok'")

    monkeypatch.setattr(rendering, "email_render", broken)
    assert notification_send(notification_id=row.id, now=row.created_at) == SendOutcome.FAILED
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED
    assert "TemplateSyntaxError" in row.last_error
    assert "could not be rendered" in caplog.text
    assert mailoutbox == []
