"""The email outbox: record a notification with the change it reports, send it after commit, exactly once.

Recording happens inside the caller's database transaction (the transactions app's status change, the
accounts app's password-reset request): the row commits or rolls back with the change, and the send task is
enqueued with transaction.on_commit. Sending locks the row (FOR UPDATE SKIP LOCKED) and checks its status,
so a repeated task, a duplicate webhook or the sweep racing the first task never send twice. A crash after
commit and before the send leaves a pending row that the sweep picks up after a grace period. Transient
delivery failures are retried with exponential backoff; after NOTIFICATION_MAX_ATTEMPTS the row is marked
failed for an operator to resend from the admin. See docs/adr/0004-notification-outbox.md.

Nothing here touches balances: a failed email is a failed email, never a failed money movement.
"""

import enum
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from smtplib import SMTPRecipientsRefused
from typing import Any, Protocol, TypedDict

from anymail.exceptions import (  # type: ignore[import-untyped]
    AnymailAPIError,
    AnymailRecipientsRefused,
)
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from wallet.accounts import public as accounts
from wallet.core.db import insert_if_absent
from wallet.notifications import rendering
from wallet.notifications.events import EVENTS, PASSWORD_RESET, SECURITY_NOTICES, TRANSACTION_EVENTS
from wallet.notifications.models import Notification, NotificationPreference, NotificationStatus
from wallet.notifications.selectors import NotificationPreferences, notification_preference_get

logger = logging.getLogger(__name__)

Status = NotificationStatus


class SendOutcome(enum.StrEnum):
    """What one send attempt did."""

    SENT = "sent"
    SKIPPED = "skipped"  # an optional email the user turned off
    RETRY = "retry"  # a transient failure; the sweep tries again after the backoff
    FAILED = "failed"  # given up: permanent failure or out of attempts; resend from the admin
    NOTHING_TO_DO = "nothing_to_do"  # already sent or given up, being sent by another worker, or not due


# -- recording (inside the caller's transaction) -----------------------------------------------------------


def notification_record_for_transaction(
    *,
    transaction_id: uuid.UUID,
    user_id: uuid.UUID,
    event: str,
    amount: int,
    currency: str,
    bank_account_masked: str = "",
    failure_reason: str = "",
) -> None:
    """Record the email for a deposit's or withdrawal's status change, in the caller's transaction.

    `event` is "<type>.<status>", e.g. "withdrawal.failed"; events that send no email ("deposit.pending")
    are ignored. Recording the same (transaction, event) again is a no-op. The send task is enqueued when
    the caller's transaction commits, and never if it rolls back.

    The email shows the values given here, as they were when the change happened: they are kept with the
    row (rendering.transaction_snapshot), so sending never reads the transactions app, and a later change
    (a new failure reason, a reversal) does not rewrite an email about an earlier one.
    """
    if event not in TRANSACTION_EVENTS:
        return
    snapshot = rendering.transaction_snapshot(
        amount=amount,
        currency=currency,
        bank_account_masked=bank_account_masked,
        failure_reason=failure_reason,
    )
    _record(user_id=user_id, event=event, transaction_id=transaction_id, context=snapshot)


class TransactionFacts(Protocol):
    """What an email about a deposit or withdrawal shows (the transactions app's Transaction has it)."""

    amount: int
    currency: str
    bank_account_masked: str
    failure_reason: str


class EmailSnapshot(TypedDict):
    amount: int
    currency: str
    bank_account_masked: str
    failure_reason: str


def email_snapshot_of(txn: TransactionFacts) -> EmailSnapshot:
    """The keyword arguments of notification_record_for_transaction that a transaction's email shows."""
    return EmailSnapshot(
        amount=txn.amount,
        currency=txn.currency,
        bank_account_masked=txn.bank_account_masked or "",
        failure_reason=txn.failure_reason or "",
    )


def notification_record_password_reset(*, user_id: uuid.UUID, reset_url: str) -> None:
    """Record a password-reset email (a security email: sent even to users who opted out of others).

    The link is kept only until the email is sent or given up; the send task is enqueued on commit.
    """
    _record(user_id=user_id, event=PASSWORD_RESET, transaction_id=None, context={"reset_url": reset_url})


def notification_record_security(*, user_id: uuid.UUID, event: str, context: dict[str, str]) -> None:
    """Record a security notice (events.SECURITY_NOTICES), sent whatever the user's preferences.

    `context["to"]`, if given, is the address it goes to instead of the user's current one (an email change
    is told to the old address). The context is stored as is: never put a secret in it.
    """
    if event not in SECURITY_NOTICES:
        raise ValueError(f"{event!r} is not a security notice")
    _record(user_id=user_id, event=event, transaction_id=None, context=dict(context))


def _record(
    *, user_id: uuid.UUID, event: str, transaction_id: uuid.UUID | None, context: dict[str, Any]
) -> None:
    now = timezone.now()
    row = Notification(
        id=uuid.uuid4(),
        user_id=user_id,
        event=event,
        transaction_id=transaction_id,
        context=context,
        created_at=now,
        updated_at=now,
        next_attempt_at=now + timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS),
    )
    # ON CONFLICT DO NOTHING: a repeat must not raise, since an IntegrityError would abort the caller's
    # (money-moving) transaction.
    if not insert_if_absent(row):
        return  # already recorded for this transaction and event
    _enqueue_send_on_commit(row.id)


def _enqueue_send_on_commit(notification_id: uuid.UUID) -> None:
    def enqueue_notification_send() -> None:  # a named function: Django logs its name if it fails
        # Imported late: tasks.py imports this module.
        from wallet.notifications.tasks import notification_send_task

        notification_send_task.delay(notification_id=str(notification_id))

    # robust: a broker that is down must not turn a committed money movement into an error; the sweep
    # sends the row later.
    transaction.on_commit(enqueue_notification_send, robust=True)


# -- sending (after commit, from the task or the sweep) ----------------------------------------------------


def notification_send(*, notification_id: uuid.UUID, now: datetime) -> SendOutcome:
    """Send one pending notification if it is due, and record the outcome. Safe to call any number of times.

    A first attempt is due at once; a retry when its backoff has passed. The row stays locked while the
    email is handed to the provider, so concurrent calls for one row send it at most once between them.
    """
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(id=notification_id, status=Status.PENDING)
            .first()
        )
        if row is None or (row.attempts and row.next_attempt_at > now):
            return SendOutcome.NOTHING_TO_DO
        return _attempt(row, now=now)


def notification_sweep(*, now: datetime, limit: int = 100) -> int:
    """Send pending notifications that are due: the first task never ran (a crash after commit, a lost
    message), or a retry's backoff has passed. Returns how many were attempted.
    """
    due = list(
        Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    attempted = 0
    for notification_id in due:
        if notification_send(notification_id=notification_id, now=now) != SendOutcome.NOTHING_TO_DO:
            attempted += 1
    if attempted:
        logger.info("notification sweep attempted %d of %d due", attempted, len(due))
    return attempted


def notification_resend(*, notification_ids: Iterable[uuid.UUID], now: datetime) -> int:
    """Queue failed notifications again with a fresh set of attempts (an operator's action).

    Only failed ones: a sent email is never sent twice, and a pending one is already queued.
    Returns how many were queued.
    """
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(id__in=list(notification_ids), status=Status.FAILED)
            .values_list("id", flat=True)
        )
        Notification.objects.filter(id__in=ids).update(
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=now + timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS),
            updated_at=now,
        )
        for notification_id in ids:
            _enqueue_send_on_commit(notification_id)
    logger.info("operator resend queued %d notifications", len(ids))
    return len(ids)


def _attempt(row: Notification, *, now: datetime) -> SendOutcome:
    spec = EVENTS.get(row.event)
    user = accounts.user_get(user_id=row.user_id)
    if spec is None or user is None:
        return _give_up(row, now=now, error=f"cannot send {row.event!r}: unknown event or user")
    if not spec.essential and not notification_preference_get(user_id=row.user_id).transaction_emails:
        _finish(row, now=now, status=Status.SKIPPED)
        return SendOutcome.SKIPPED
    if row.event == PASSWORD_RESET and now - row.created_at >= timedelta(
        seconds=settings.PASSWORD_RESET_TIMEOUT
    ):
        return _give_up(row, now=now, error="the reset link expired before it could be sent")
    try:
        message = _build_message(row, to=str(row.context.get("to") or user.email))
    except rendering.NothingToRenderError as exc:
        return _give_up(row, now=now, error=str(exc))
    except Exception as exc:
        # A bug (a broken template): retrying cannot help. Given up visibly; resend once it is fixed.
        logger.exception("notification %s (%s) could not be rendered", row.id, row.event)
        return _give_up(row, now=now, error=f"rendering failed: {type(exc).__name__}: {exc}"[:2000])

    row.attempts += 1
    try:
        sent = message.send()
    except Exception as exc:  # noqa: BLE001 - classified below; a bug in a backend counts as transient
        return _failed_attempt(row, exc, now=now)
    if not sent:
        return _failed_attempt(row, RuntimeError("the email backend accepted no message"), now=now)
    status = getattr(message, "anymail_status", None)
    row.provider_message_id = (getattr(status, "message_id", None) or "")[:255]
    row.sent_at = now
    _finish(row, now=now, status=Status.SENT)
    logger.info("notification %s (%s) sent after %d attempt(s)", row.id, row.event, row.attempts)
    return SendOutcome.SENT


def _build_message(row: Notification, *, to: str) -> EmailMultiAlternatives:
    if row.event == PASSWORD_RESET:
        context = rendering.password_reset_context(stored=row.context)
    elif row.event in SECURITY_NOTICES:
        context = dict(row.context)
    else:
        assert row.transaction_id is not None  # noqa: S101 - every transaction event has one
        context = rendering.transaction_context(transaction_id=row.transaction_id, stored=row.context)
    email = rendering.email_render(event=row.event, context=context)
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
    )
    message.attach_alternative(email.html, "text/html")
    # Read by anymail (SendGrid custom_args): ties the provider's events back to this row.
    message.metadata = {"notification_id": str(row.id), "event": row.event}  # type: ignore[attr-defined]
    return message


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: no answer, a timeout, a 429 or a 5xx, or anything unforeseen (bounded by the attempt
    limit). A refused recipient, an invalid address or a 4xx mean the request itself is wrong.
    """
    if isinstance(exc, AnymailRecipientsRefused | SMTPRecipientsRefused | ValueError | TypeError):
        return False
    if isinstance(exc, AnymailAPIError):
        code = exc.status_code
        return code is None or code in (408, 429) or code >= 500
    return True


def _failed_attempt(row: Notification, exc: BaseException, *, now: datetime) -> SendOutcome:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if not _is_transient(exc) or row.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        return _give_up(row, now=now, error=error)
    delay = min(
        settings.NOTIFICATION_RETRY_BASE_SECONDS * 2 ** (row.attempts - 1),
        settings.NOTIFICATION_RETRY_MAX_SECONDS,
    )
    row.next_attempt_at = now + timedelta(seconds=delay)
    row.last_error = error
    row.updated_at = now
    row.save(update_fields=["attempts", "next_attempt_at", "last_error", "updated_at"])
    logger.warning(
        "notification %s (%s) attempt %d failed, retrying in %ss: %s",
        row.id,
        row.event,
        row.attempts,
        delay,
        type(exc).__name__,
    )
    return SendOutcome.RETRY


def _give_up(row: Notification, *, now: datetime, error: str) -> SendOutcome:
    row.last_error = error
    _finish(row, now=now, status=Status.FAILED)
    logger.error(
        "notification %s (%s) failed after %d attempt(s): %s", row.id, row.event, row.attempts, error
    )
    return SendOutcome.FAILED


def _finish(row: Notification, *, now: datetime, status: str) -> None:
    row.status = status
    row.updated_at = now
    # A reset link must not outlive its email in the database. A failed one cannot be resent: expired links
    # are refused anyway, and the user can ask for a new one. A transaction email keeps its snapshot
    # (amounts, a masked account, a reason: nothing secret), so an operator can resend it from the admin.
    if row.transaction_id is None:
        row.context = {}
    if status == Status.SENT:
        row.last_error = ""
    row.save()


# -- preferences -------------------------------------------------------------------------------------------


def notification_preference_update(
    *, user_id: uuid.UUID, transaction_emails: bool | None = None, now: datetime
) -> NotificationPreferences:
    """Change the user's email preferences; fields left None keep their value."""
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user_id=user_id)
        if transaction_emails is not None:
            preference.transaction_emails = transaction_emails
            preference.updated_at = now
            preference.save(update_fields=["transaction_emails", "updated_at"])
    return notification_preference_get(user_id=user_id)
