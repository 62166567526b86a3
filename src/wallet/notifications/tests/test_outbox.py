"""The outbox with real commits: one email per state change, none on rollback, none lost to a crash.

These tests commit (transaction=True), so transaction.on_commit runs and the eagerly executed send task
delivers into Django's in-memory outbox, as a worker would after a real commit.
"""

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.utils import timezone

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger import public as ledger
from wallet.ledger.errors import InsufficientFundsError
from wallet.ledger.selectors import balance_get
from wallet.notifications.models import Notification, NotificationStatus
from wallet.notifications.services import SendOutcome, notification_send, notification_sweep
from wallet.notifications.tasks import notification_send_task, notification_sweep_task
from wallet.revio.contracts import BankAccount
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, apply_deposit, apply_payout

pytestmark = pytest.mark.django_db(transaction=True)

Fund = Callable[[User, int], Transaction]


def withdraw(user: User, amount: int, **bank: str) -> Transaction:
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=amount,
        currency="ZAR",
        bank_account=BankAccount(**{**BANK, **bank}),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    return withdrawal


def rows(transaction_id: Any) -> list[tuple[str, str, int]]:
    return list(
        Notification.objects.filter(transaction_id=transaction_id)
        .order_by("created_at")
        .values_list("event", "status", "attempts")
    )


def html_of(message: Any) -> str:
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return str(content)


class TestOneEmailPerStateChange:
    def test_a_paid_deposit_applied_twice_and_its_task_rerun_sends_one_email(
        self, user: User, fund: Fund, mailoutbox: list[Any]
    ) -> None:
        deposit = fund(user, 123_456)

        assert apply_deposit(deposit) == services.Applied.UNCHANGED  # a duplicate webhook
        row = Notification.objects.get(transaction_id=deposit.id)
        notification_send_task.delay(notification_id=str(row.id))  # a redelivered task
        notification_send_task.delay(notification_id=str(row.id))
        assert notification_sweep(now=timezone.now() + timedelta(days=1)) == 0

        assert rows(deposit.id) == [("deposit.completed", "sent", 1)]
        [email] = mailoutbox
        assert email.to == [user.email]
        assert email.from_email == settings.DEFAULT_FROM_EMAIL
        assert email.subject == "R 1,234.56 has arrived in your wallet"
        link = f"{settings.FRONTEND_URL.rstrip('/')}/transactions/{deposit.id}"
        assert "Your deposit of R 1,234.56 has been paid" in email.body
        assert link in email.body
        assert link in html_of(email)
        assert "<strong>R 1,234.56</strong>" in html_of(email)

    def test_a_withdrawal_sends_one_email_per_state_with_only_the_last_four_digits(
        self, user: User, fund: Fund, revio: SandboxProcess, mailoutbox: list[Any]
    ) -> None:
        fund(user, 20_000)
        mailoutbox.clear()
        withdrawal = withdraw(user, 7_500)
        payout_id = withdrawal.provider_object_id or ""
        revio.control.eft_payment_succeed(payout_id)
        assert apply_payout(withdrawal) == services.Applied.CHANGED
        assert apply_payout(withdrawal) == services.Applied.UNCHANGED
        revio.control.eft_payment_return(payout_id)
        assert apply_payout(withdrawal) == services.Applied.CHANGED
        assert apply_payout(withdrawal) == services.Applied.UNCHANGED
        for row_id in Notification.objects.values_list("id", flat=True):
            notification_send_task.delay(notification_id=str(row_id))

        assert rows(withdrawal.id) == [
            ("withdrawal.processing", "sent", 1),
            ("withdrawal.completed", "sent", 1),
            ("withdrawal.returned", "sent", 1),
        ]
        assert [email.subject for email in mailoutbox] == [
            "Your withdrawal of R 75.00 is on its way",
            "Your withdrawal of R 75.00 has been paid",
            "Your bank returned your withdrawal of R 75.00",
        ]
        for email in mailoutbox:
            for text in (email.body, html_of(email)):
                assert "•••••••4567" in text
                assert "62001234567" not in text
                assert "2001234" not in text
        assert "back in your available balance" in mailoutbox[2].body

    def test_a_refused_withdrawal_reports_the_failure_and_the_refund(
        self, user: User, fund: Fund, mailoutbox: list[Any]
    ) -> None:
        fund(user, 9_000)
        mailoutbox.clear()
        withdrawal = withdraw(user, 4_000, account_number="62000000001")  # the sandbox refuses ...0001
        assert withdrawal.status == "failed"

        assert rows(withdrawal.id) == [("withdrawal.failed", "sent", 1)]
        [email] = mailoutbox
        assert email.subject == "Your withdrawal of R 40.00 failed; the money is back in your wallet"
        assert "refused this payout" in email.body
        assert "•••••••0001" in email.body


class TestRollback:
    def test_nothing_is_recorded_or_sent_when_the_money_transaction_rolls_back(
        self, user: User, revio: SandboxProcess, mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
        revio.control.purchase_pay(deposit.provider_object_id or "")

        def ledger_down(**kwargs: Any) -> None:
            raise RuntimeError("the ledger failed after the status change")

        # deposit_credit runs after _transition, inside the same SERIALIZABLE transaction.
        monkeypatch.setattr(ledger, "deposit_credit", ledger_down)
        with pytest.raises(RuntimeError):
            apply_deposit(deposit)

        deposit.refresh_from_db()
        assert deposit.status == "pending"
        assert rows(deposit.id) == []
        assert mailoutbox == []

        monkeypatch.undo()
        assert apply_deposit(deposit) == services.Applied.CHANGED
        assert rows(deposit.id) == [("deposit.completed", "sent", 1)]
        assert len(mailoutbox) == 1

    def test_a_withdrawal_refused_for_insufficient_funds_sends_nothing(
        self, user: User, fund: Fund, mailoutbox: list[Any]
    ) -> None:
        fund(user, 5_000)
        mailoutbox.clear()
        with pytest.raises(InsufficientFundsError):
            withdraw(user, 5_001)
        assert not Notification.objects.filter(event__startswith="withdrawal.").exists()
        assert mailoutbox == []


class TestCrashBeforeSend:
    def test_the_sweep_sends_a_committed_notification_whose_task_never_ran(
        self, user: User, fund: Fund, mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The process dies right after the commit: the send task is never enqueued.
        monkeypatch.setattr(notification_send_task, "delay", lambda **kwargs: None)
        deposit = fund(user, 5_000)
        assert rows(deposit.id) == [("deposit.completed", "pending", 0)]
        assert mailoutbox == []

        now = timezone.now()
        assert notification_sweep(now=now) == 0  # within the grace period the first task may still come
        later = now + timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS + 1)
        assert notification_sweep(now=later) == 1
        assert notification_sweep(now=later) == 0
        notification_sweep_task.delay()

        assert rows(deposit.id) == [("deposit.completed", "sent", 1)]
        assert len(mailoutbox) == 1

    def test_concurrent_senders_send_once(
        self, user: User, fund: Fund, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(notification_send_task, "delay", lambda **kwargs: None)
        deposit = fund(user, 5_000)
        row = Notification.objects.get(transaction_id=deposit.id)
        settings.EMAIL_BACKEND = "wallet.notifications.tests.backends.SlowLocmemBackend"
        mail.outbox = []
        barrier = threading.Barrier(5)
        results: list[SendOutcome] = []

        def send() -> None:
            try:
                barrier.wait()
                results.append(notification_send(notification_id=row.id, now=timezone.now()))
            finally:
                connection.close()

        threads = [threading.Thread(target=send) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(results) == [SendOutcome.NOTHING_TO_DO] * 4 + [SendOutcome.SENT]
        assert len(mail.outbox) == 1
        row.refresh_from_db()
        assert (row.status, row.attempts) == (NotificationStatus.SENT, 1)

    def test_a_broken_broker_does_not_break_the_money_movement(
        self, user: User, fund: Fund, monkeypatch: pytest.MonkeyPatch, mailoutbox: list[Any]
    ) -> None:
        def broker_down(**kwargs: Any) -> None:
            raise ConnectionError("redis is down")

        monkeypatch.setattr(notification_send_task, "delay", broker_down)
        deposit = fund(user, 5_000)  # raises if the failed enqueue escaped the committed service

        assert balance_get(user_id=user.id, currency="ZAR").available == 5_000
        assert rows(deposit.id) == [("deposit.completed", "pending", 0)]
        notification_sweep(now=timezone.now() + timedelta(minutes=5))
        assert len(mailoutbox) == 1
