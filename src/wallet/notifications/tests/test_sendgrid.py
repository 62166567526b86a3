"""Delivery through anymail's real SendGrid backend, against a local server standing in for SendGrid's API.

Covers the payload SendGrid receives, and how its answers drive retries, backoff, giving up and the admin's
resend action. On the Django test database (no commit): sends are driven directly with an explicit `now`.
"""

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.notifications.models import Notification, NotificationStatus
from wallet.notifications.services import SendOutcome, notification_send, notification_sweep
from wallet.notifications.tests.conftest import FakeSendGrid
from wallet.revio.contracts import BankAccount
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, apply_payout

pytestmark = [
    pytest.mark.django_db,
    # Anymail 13.0.1+ warns that it no longer tests its SendGrid backend (docs/notifications.md); these
    # tests are the project's own check that the backend still builds the request SendGrid expects.
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

Fund = Callable[[User, int], Transaction]


def failed_withdrawal(user: User, fund: Fund, revio: SandboxProcess) -> Transaction:
    fund(user, 20_000)
    withdrawal = services.withdrawal_create(
        user_id=user.id, email=user.email, amount=7_500, currency="ZAR", bank_account=BankAccount(**BANK)
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    revio.control.eft_payment_fail(withdrawal.provider_object_id or "")
    assert apply_payout(withdrawal) == services.Applied.CHANGED
    withdrawal.refresh_from_db()
    # The earlier emails (deposit paid, withdrawal on its way) went out with their own tasks.
    Notification.objects.exclude(event="withdrawal.failed").update(status=NotificationStatus.SENT)
    return withdrawal


def test_the_sendgrid_payload(
    user: User, fund: Fund, revio: SandboxProcess, sendgrid: FakeSendGrid, settings: Any
) -> None:
    settings.FRONTEND_URL = "https://app.wallet.example/"
    withdrawal = failed_withdrawal(user, fund, revio)
    # Characters that mean something in HTML must be escaped there and left alone in the text part.
    row = Notification.objects.get(transaction_id=withdrawal.id, event="withdrawal.failed")
    row.context["failure_reason"] = "Account closed & <b>frozen</b>"  # the email's snapshot
    row.save(update_fields=["context"])

    assert notification_send(notification_id=row.id, now=timezone.now()) == SendOutcome.SENT

    [request] = sendgrid.requests
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == "Bearer SG.test-key"
    payload = request["json"]
    assert payload["from"] == {"email": "notifications@wallet.example", "name": "Wallet"}
    assert [p["to"] for p in payload["personalizations"]] == [[{"email": "thandi@example.com"}]]
    assert payload["subject"] == "Your withdrawal of R 75.00 failed; the money is back in your wallet"
    assert [part["type"] for part in payload["content"]] == ["text/plain", "text/html"]
    text, html = (part["value"] for part in payload["content"])
    link = f"https://app.wallet.example/transactions/{withdrawal.id}"
    for part in (text, html):
        assert "R 75.00" in part
        assert "•••••••4567" in part
        assert link in part
    assert "Reason: Account closed & <b>frozen</b>" in text
    assert "Account closed &amp; &lt;b&gt;frozen&lt;/b&gt;" in html
    assert html.lstrip().startswith("<!doctype html>")
    # Nothing of the account number beyond its last four digits, anywhere in the request.
    raw = json.dumps(payload, ensure_ascii=False)
    number = BANK["account_number"]
    leaks = [number[i : i + 5] for i in range(len(number) - 4) if number[i : i + 5] in raw]
    assert leaks == []
    assert str(row.id) in raw  # metadata ties SendGrid's events back to the row
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    assert re.fullmatch(r"[0-9a-f-]{36}", row.provider_message_id)


def test_transient_failures_back_off_then_fail_and_an_admin_resends(
    user: User,
    admin_user: User,
    fund: Fund,
    revio: SandboxProcess,
    sendgrid: FakeSendGrid,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 60
    withdrawal = failed_withdrawal(user, fund, revio)
    balance_before = balance_get(user_id=user.id, currency="ZAR")
    row = Notification.objects.get(transaction_id=withdrawal.id, event="withdrawal.failed")
    sendgrid.answer_next(503, 429, 500)
    now = timezone.now()

    assert notification_send(notification_id=row.id, now=now) == SendOutcome.RETRY
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 1)
    assert row.next_attempt_at == now + timedelta(seconds=60)
    assert "503" in row.last_error
    # Not due yet: neither a redelivered task nor the sweep tries again before the backoff has passed.
    assert notification_send(notification_id=row.id, now=now + timedelta(seconds=59)) == "nothing_to_do"
    assert notification_sweep(now=now + timedelta(seconds=59)) == 0

    assert notification_sweep(now=now + timedelta(seconds=60)) == 1
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at) == (2, now + timedelta(seconds=60 + 120))
    assert notification_sweep(now=now + timedelta(seconds=180)) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.FAILED, 3)
    assert "500" in row.last_error
    assert notification_sweep(now=now + timedelta(days=1)) == 0
    assert len(sendgrid.requests) == 3
    assert balance_get(user_id=user.id, currency="ZAR") == balance_before  # emails never move money

    changelist = reverse("admin:notifications_notification_changelist")
    action = {"action": "resend", "_selected_action": [str(row.id)]}
    plain_user = Client()
    plain_user.force_login(user)
    assert plain_user.post(changelist, action).status_code == 302  # to the admin login page
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED

    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(reverse("admin:notifications_notification_change", args=[row.id]))
    assert page.status_code == 200
    assert "SendGrid API response 500" in page.content.decode()  # the last error, for the operator
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(changelist, action, follow=True)
    assert response.status_code == 200
    assert "Queued 1 notification(s) to be sent again." in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.SENT, 1)
    assert len(sendgrid.requests) == 4

    # A sent email is never sent again, even when an admin asks.
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(changelist, action)
    assert len(sendgrid.requests) == 4


def test_a_refused_request_fails_at_once(
    user: User, fund: Fund, revio: SandboxProcess, sendgrid: FakeSendGrid
) -> None:
    withdrawal = failed_withdrawal(user, fund, revio)
    row = Notification.objects.get(transaction_id=withdrawal.id, event="withdrawal.failed")
    sendgrid.answer_next(400)

    assert notification_send(notification_id=row.id, now=timezone.now()) == SendOutcome.FAILED
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.FAILED, 1)
    assert notification_sweep(now=timezone.now() + timedelta(days=1)) == 0
    assert len(sendgrid.requests) == 1
