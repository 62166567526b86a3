"""Revio webhooks: intake (verify, log, deduplicate), processing (apply through the wallet), retries, replay.

The webhook log is the queue of record. Intake stores each verified event once and nudges a Celery task
after commit; the task claims the event with a lease, re-reads the object from Revio (the body is a
trigger, Revio's current state is the truth) and applies it through the wallet's state-guarded services.
Failures are retried with exponential backoff by a periodic sweep, which also picks up events whose Celery
message was lost (broker restart) or whose worker died (expired lease); after WEBHOOK_MAX_ATTEMPTS an event
is dead-lettered for an operator. Applying an event twice is harmless: the wallet's services are
idempotent, so at-least-once processing never moves money twice.
"""

import hashlib
import json
import logging
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from wallet.audit import public as audit
from wallet.core import metrics
from wallet.core.crypto import mask_account_number
from wallet.core.db import model_columns, model_from_row
from wallet.core.faults import crash_point
from wallet.core.http.parsers import JsonBodyError, loads_json
from wallet.revio import payouts as revio_payouts
from wallet.revio.client import get_client, purchase_take_back
from wallet.revio.contracts import Payout, PayoutOutcome, Purchase
from wallet.revio.errors import RevioError, RevioRejectedError
from wallet.transactions import public as transactions
from wallet.webhooks import keys
from wallet.webhooks.errors import (
    EventTooOldError,
    MalformedEventError,
    RetryLaterError,
    WebhookRejectedError,
)
from wallet.webhooks.models import WebhookLog, WebhookRejection, WebhookStatus

logger = logging.getLogger(__name__)

RevioObject = TypeVar("RevioObject", Purchase, Payout)

_EVENT_TYPE = re.compile(r"^[a-z_]{1,32}\.[a-z_]{1,48}$")
_HEADERS_OF_INTEREST = ("content-type", "content-length", "user-agent", "x-signature", "x-forwarded-for")
_REFUND_EVENTS = {"payment.refunded", "payment.charged_back", "payment.chargeback_reversed"}
# Refunds and chargebacks debit the user (wallet.transactions.reversals); a reversed chargeback is flagged.
_REVERSAL_EVENTS = {"payment.refunded": "refund", "payment.charged_back": "chargeback"}
# EFT payment callbacks (unsigned; wallet.revio.eft): logged under this object type.
EFT_OBJECT_TYPE = "eft_payment"
_EFT_PAYMENT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_EFT_STATUS = re.compile(r"^[A-Z_]{1,32}$")


@dataclass(frozen=True)
class Received:
    log_id: int
    duplicate: bool


@dataclass(frozen=True)
class _Event:
    object_id: str
    object_type: str
    event_type: str
    updated_on: int
    reference: str


# -- intake -----------------------------------------------------------------------------------------------


def webhook_receive(
    *, body: bytes, signature: str | None, source_ip: str | None, headers: Mapping[str, str], now: datetime
) -> Received:
    """Verify, check and log one delivery; enqueue its processing after commit. A repeat is counted only.

    :raises WebhookRejectedError: missing or invalid signature, not a Revio event, or past the retry
        horizon. The rejection is recorded (reason, source, headers of interest, body hash), never the body.
    :raises KeysUnavailableError: Revio's keys had to be fetched and could not be (Revio will retry).
    """
    try:
        verified_with = keys.signature_verify(body=body, header=signature)
        event = _parse(body)
        if now.timestamp() - event.updated_on > settings.WEBHOOK_MAX_EVENT_AGE_SECONDS:
            raise EventTooOldError(details={"updated_on": event.updated_on})
    except WebhookRejectedError as exc:
        _record_rejection(
            reason=exc.code, detail=exc.message, body=body, source_ip=source_ip, headers=headers
        )
        raise

    return _log_once(
        dedup_key=f"{event.object_id}:{event.event_type}:{event.updated_on}",
        event_type=event.event_type,
        object_type=event.object_type,
        object_id=event.object_id,
        reference=event.reference[:128],
        updated_on=event.updated_on,
        body=_account_numbers_masked(body),
        verified_with=verified_with,
        source_ip=source_ip,
        received_at=now,
    )


def eft_callback_receive(
    *, body: bytes, source_ip: str | None, headers: Mapping[str, str], now: datetime
) -> Received:
    """Log one EFT payment callback and enqueue its processing after commit, unless one for the same
    payment is already waiting to be re-read.

    EFT callbacks carry no signature (revio-api.md §3 B), so a callback is only a trigger: processing
    re-reads the payment from the EFT API with our own token and uses nothing from the body but the
    payment id. Dedup is on the payment id alone (issue 17 F1, F12): the claimed status is the sender's
    word, so a forged callback must not be able to take a real one's key. A callback for a payment whose
    event is still received (or failed, waiting for its retry) is a duplicate; that re-read will see the
    payment's state as it is then. Once the event is being processed or done, a new callback is a new
    event and re-reads again. Only the fields used are stored, each bounded (never the creditor's bank
    account, issue 17 F8).

    :raises MalformedEventError: not a JSON object naming a payment id (recorded, never the body).
    """
    try:
        callback, stored = _parse_eft_callback(body)
    except WebhookRejectedError as exc:
        _record_rejection(
            reason=exc.code, detail=exc.message, body=body, source_ip=source_ip, headers=headers
        )
        raise
    pending = (
        WebhookLog.objects.filter(
            object_type=EFT_OBJECT_TYPE,
            object_id=callback.object_id,
            status__in=[WebhookStatus.RECEIVED, WebhookStatus.FAILED],
        )
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if pending is not None:
        # Two callbacks racing past this read both insert: two re-reads of one payment, harmless.
        WebhookLog.objects.filter(id=pending).update(duplicates=F("duplicates") + 1)
        metrics.increment("webhooks_duplicate")
        return Received(log_id=pending, duplicate=True)
    return _log_once(
        # Unique per callback; the pending check above is the dedup.
        dedup_key=f"eft:{callback.object_id}:{uuid.uuid4().hex}",
        event_type=callback.event_type,
        object_type=EFT_OBJECT_TYPE,
        object_id=callback.object_id,
        reference=callback.reference[:128],
        updated_on=callback.updated_on or int(now.timestamp()),
        body=stored,
        verified_with="unsigned",
        source_ip=source_ip,
        received_at=now,
    )


# Every NOT NULL column the model's defaults would fill; the nullable ones (next_attempt_at,
# lease_expires_at, processed_at, replayed_at) are left NULL.
_INTAKE_FIELDS = (
    "event_type", "object_type", "object_id", "reference", "updated_on", "body", "verified_with",
    "source_ip", "received_at",
)  # fmt: skip
_INTAKE_SQL = f"""
    INSERT INTO webhook_logs (
        dedup_key, {", ".join(_INTAKE_FIELDS)}, duplicates, status, attempts, result, last_error, replayed_by
    ) VALUES (%s, {", ".join(["%s"] * len(_INTAKE_FIELDS))}, 0, %s, 0, '', '', '')
    ON CONFLICT (dedup_key) DO UPDATE SET duplicates = webhook_logs.duplicates + 1
    RETURNING id, (xmax = 0) AS inserted
"""  # noqa: S608  # nosec B608  # constant column names


def _log_once(*, dedup_key: str, **fields: Any) -> Received:
    """Store an event under its dedup key and enqueue it after commit; a repeat is only counted. `fields`
    are the _INTAKE_FIELDS."""
    # Raw SQL: this is the hottest statement of intake, and one autocommit INSERT ... ON CONFLICT is one
    # round trip, where create() then catching the IntegrityError took BEGIN/INSERT/COMMIT plus an UPDATE
    # and a SELECT for a duplicate. xmax = 0 tells a fresh insert from a conflict: the row version the DO
    # UPDATE writes carries our transaction's row lock in xmax, an inserted one has none.
    with connection.cursor() as cursor:
        cursor.execute(
            _INTAKE_SQL,
            [dedup_key, *(fields[name] for name in _INTAKE_FIELDS), WebhookStatus.RECEIVED.value],
        )
        log_id, inserted = cursor.fetchone()
    if not inserted:
        metrics.increment("webhooks_duplicate")
        return Received(log_id=log_id, duplicate=True)
    # At once in autocommit; after the commit when a caller's atomic block holds the insert.
    transaction.on_commit(lambda: _enqueue(log_id))
    metrics.increment("webhooks_received")
    return Received(log_id=log_id, duplicate=False)


def _is_account_number_key(key: str) -> bool:
    name = key.replace("_", "").replace("-", "").lower()
    return name in {"accountnumber", "bankaccount", "bankaccountnumber", "iban"} or name.endswith(
        "accountnumber"
    )


def _mask_values(value: Any, *, masked: bool = False) -> Any:
    """Bank account numbers masked to their last four digits: every string under an account key."""
    if isinstance(value, dict):
        return {k: _mask_values(v, masked=masked or _is_account_number_key(str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_values(v, masked=masked) for v in value]
    if masked and isinstance(value, str):
        return mask_account_number(value)
    if masked and isinstance(value, int) and not isinstance(value, bool):
        return mask_account_number(str(value))
    return value


def _account_numbers_masked(body: bytes) -> str:
    """The text to store for a verified body: as received, but with bank account numbers masked (issue 17
    F8: payout and EFT bodies hold them, and the log is read in the console). Nothing downstream reads
    them from the log; processing re-reads the object from Revio."""
    text = body.decode()
    if "ccount" not in text and "iban" not in text.lower():  # the common case: nothing to mask, kept verbatim
        return text
    masked = _mask_values(loads_json(body))
    return json.dumps(masked, ensure_ascii=False)


def _parse(body: bytes) -> _Event:
    try:
        data = loads_json(body)  # UTF-8 only, bounded depth: what is stored below is that text
    except JsonBodyError as exc:
        raise MalformedEventError("The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise MalformedEventError()
    object_id, object_type = data.get("id"), data.get("type")
    event_type, updated_on = data.get("event_type"), data.get("updated_on")
    if not (
        isinstance(object_id, str)
        and 0 < len(object_id) <= 64
        and isinstance(object_type, str)
        and isinstance(event_type, str)
        and _EVENT_TYPE.match(event_type)
        and len(event_type) <= 64  # webhook_logs.event_type: longer is not Revio's, and must not be a 500
        and isinstance(updated_on, int)
        and not isinstance(updated_on, bool)
        and updated_on > 0
    ):
        raise MalformedEventError()
    reference = data.get("reference")
    return _Event(
        object_id=object_id,
        object_type=object_type[:32],
        event_type=event_type,
        updated_on=updated_on,
        reference=reference if isinstance(reference, str) else "",
    )


# The only fields of an EFT callback kept in the log (issue 17 F1, F8): bounded, and no bank account.
_EFT_STORED_FIELDS = ("id", "paymentId", "status", "contractReference", "updatedAt", "callbackType")
_EFT_STORED_FIELD_CHARS = 64


def _parse_eft_callback(body: bytes) -> tuple[_Event, str]:
    """The payment id (and, for logging only, the claimed status, reference and time), and the bounded
    JSON text to store.

    Callback body INFERRED: `{id | paymentId, contractReference, status, updatedAt, callbackType, ...}`.
    """
    try:
        data = loads_json(body)  # UTF-8 only, bounded depth: what is stored below is that text
    except JsonBodyError as exc:
        raise MalformedEventError("The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise MalformedEventError("The body is not an EFT payment callback.")
    payment_id = data.get("id", data.get("paymentId"))
    if not isinstance(payment_id, str) or not _EFT_PAYMENT_ID.match(payment_id):
        raise MalformedEventError("The body names no EFT payment (id or paymentId).")
    status = data.get("status")
    claimed = status if isinstance(status, str) and _EFT_STATUS.match(status) else "UNKNOWN"
    reference = data.get("contractReference")
    updated_on = 0
    if isinstance(data.get("updatedAt"), str):
        try:
            updated_on = int(datetime.fromisoformat(data["updatedAt"].replace("Z", "+00:00")).timestamp())
        except ValueError:
            updated_on = 0
    stored = {
        name: data[name][:_EFT_STORED_FIELD_CHARS]
        for name in _EFT_STORED_FIELDS
        if isinstance(data.get(name), str)
    }
    event = _Event(
        object_id=payment_id,
        object_type=EFT_OBJECT_TYPE,
        event_type=f"EFT_PAYMENT.{claimed}",
        updated_on=max(updated_on, 0),
        reference=reference if isinstance(reference, str) else "",
    )
    return event, json.dumps(stored)


def _record_rejection(
    *, reason: str, detail: str, body: bytes, source_ip: str | None, headers: Mapping[str, str]
) -> None:
    interesting = {
        name: str(headers.get(name, ""))[:64] for name in _HEADERS_OF_INTEREST if headers.get(name)
    }
    WebhookRejection.objects.create(
        reason=reason,
        detail=detail[:255],
        source_ip=source_ip,
        headers=interesting,
        body_sha256=hashlib.sha256(body).hexdigest(),
        body_length=len(body),
    )
    metrics.increment(f"webhooks_rejected_{reason}")
    logger.warning("webhook rejected (%s) from %s: %s", reason, source_ip, detail)


def _enqueue(log_id: int) -> None:
    from wallet.webhooks.tasks import webhook_process_task  # here: the tasks module imports this one

    try:
        # One quick retry only: the event is safe in the log, and Revio is waiting for our answer.
        webhook_process_task.apply_async(
            kwargs={"log_id": log_id}, retry=True, retry_policy={"max_retries": 1, "interval_start": 0.2}
        )
    except Exception:  # broker down: the sweep finds the event in the log later
        logger.warning("could not enqueue webhook %s; the sweep will pick it up", log_id, exc_info=True)


# -- processing -------------------------------------------------------------------------------------------


def webhook_process(*, log_id: int, now: datetime | None = None) -> str | None:
    """Process one logged event if it is due and nobody else holds it; returns its new status (or None).

    Safe to call any number of times, concurrently too: the claim is a lease on the row, and the wallet
    services it calls are idempotent.
    """
    now = now or timezone.now()
    log = _claim(log_id=log_id, now=now)
    if log is None:
        return None
    crash_point("webhook.claimed")
    try:
        status, result, review = _dispatch(log)
    except RetryLaterError as exc:
        return _fail(log, str(exc), now=now)
    except Exception as exc:
        logger.exception("webhook %s (%s) failed", log.id, log.event_type)
        return _fail(log, "".join(traceback.format_exception(exc))[-4000:], now=now)
    crash_point("webhook.applied")
    WebhookLog.objects.filter(id=log.id).update(
        status=status,
        result=result[:255],
        processed_at=timezone.now(),
        lease_expires_at=None,
        last_error="",
        next_attempt_at=None,
    )
    if review:
        metrics.increment("webhooks_flagged_for_review")
    metrics.increment(f"webhooks_{status}")
    return status


# The claimed row comes back whole (the model's own column names, never input: hence noqa and nosec).
_CLAIM_SQL = f"""
    UPDATE webhook_logs
    SET status = %s, attempts = attempts + 1, lease_expires_at = %s
    WHERE id = %s AND (
        status = %s
        OR (status = %s AND next_attempt_at <= %s)
        OR (status = %s AND lease_expires_at < %s)
    )
    RETURNING {model_columns(WebhookLog)}
"""  # noqa: S608  # nosec B608


def _claim(*, log_id: int, now: datetime) -> WebhookLog | None:
    """Take a lease on the event if it is due (received, a failed one past its backoff, or one whose
    worker's lease expired) and nobody else holds it; the claimed row, or None."""
    lease_expires_at = now + timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)
    # One autocommit UPDATE ... RETURNING instead of BEGIN / SELECT ... FOR UPDATE / UPDATE / COMMIT.
    # It waits for the row rather than skipping it (no SKIP LOCKED): a duplicate delivery's counter update
    # holds it for a moment, and skipping would leave the event to the sweep. Under READ COMMITTED an
    # UPDATE that waited re-evaluates its WHERE on the row's new version, so a row another worker just
    # claimed (processing, lease valid) no longer matches and is not claimed twice.
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            [
                WebhookStatus.PROCESSING.value,
                lease_expires_at,
                log_id,
                WebhookStatus.RECEIVED.value,
                WebhookStatus.FAILED.value,  # a retry waits out its backoff
                now,
                WebhookStatus.PROCESSING.value,  # a dead worker's event, once its lease ran out
                now,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return model_from_row(WebhookLog, row, alias=connection.alias)


def _fail(log: WebhookLog, error: str, *, now: datetime) -> str:
    if log.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        status, next_attempt = WebhookStatus.DEAD_LETTERED, None
        metrics.increment("webhooks_dead_lettered")
        logger.error(
            "webhook %s (%s %s) dead-lettered after %d attempts: %s",
            log.id,
            log.event_type,
            log.object_id,
            log.attempts,
            error.splitlines()[-1] if error else "",
        )
    else:
        delay = min(
            settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (log.attempts - 1), settings.WEBHOOK_RETRY_MAX_SECONDS
        )
        status, next_attempt = WebhookStatus.FAILED, now + timedelta(seconds=delay)
        logger.info("webhook %s attempt %d failed; retry at %s", log.id, log.attempts, next_attempt)
    WebhookLog.objects.filter(id=log.id).update(
        status=status, last_error=error, next_attempt_at=next_attempt, lease_expires_at=None
    )
    return status


def _dispatch(log: WebhookLog) -> tuple[str, str, bool]:
    """Apply the event; returns (status, what happened, flagged for review)."""
    if log.object_type == "purchase":
        return _apply_purchase(log)
    if log.object_type == EFT_OBJECT_TYPE:
        return _apply_eft_payment(log)
    if log.event_type in _REVERSAL_EVENTS:  # issue 16: refunds and chargebacks move money
        return _apply_reversal_payment(log)
    if log.event_type in _REFUND_EVENTS:
        return _flag_refund(log)
    return WebhookStatus.IGNORED, f"no action for {log.object_type} events", False


def _our_transaction(log: WebhookLog, expected_type: str) -> Any:
    """The deposit or withdrawal the event's reference names, or why there is none."""
    try:
        transaction_id = uuid.UUID(log.reference)
    except ValueError:
        return None
    txn = transactions.transaction_find(transaction_id=transaction_id)
    if txn is None:
        # Revio can be faster than our own commit; or it is not ours. Retrying tells them apart.
        raise RetryLaterError(f"no {expected_type} {transaction_id} (yet)")
    return txn if txn.type == expected_type else None


def _outcome(applied: str, *, event_status: str, provider_status: str) -> tuple[str, str, bool]:
    if applied == transactions.Applied.CHANGED:
        return WebhookStatus.PROCESSED, f"applied: Revio says {provider_status}", False
    if applied == transactions.Applied.FLAGGED:
        return WebhookStatus.PROCESSED, "flagged for review: Revio's object disagrees with ours", True
    if applied == transactions.Applied.STALE or event_status != provider_status:
        return (
            WebhookStatus.IGNORED,
            f"stale: the event says {event_status or '?'}, Revio now says {provider_status}; already applied",
            False,
        )
    return WebhookStatus.PROCESSED, f"no change needed: already {provider_status}", False


def _apply_purchase(log: WebhookLog) -> tuple[str, str, bool]:
    def apply(deposit: Any, purchase: Purchase) -> str:
        return transactions.deposit_apply_provider_state(
            deposit_id=deposit.id, purchase=purchase, source=transactions.TransactionEvent.Source.WEBHOOK
        )

    return _apply_revio_object(log, transactions.TransactionType.DEPOSIT, get_client().purchase_get, apply)


def _apply_eft_payment(log: WebhookLog) -> tuple[str, str, bool]:
    """Re-read the EFT payment the callback names with our own token, and apply what the EFT API says.

    Nothing from the unsigned body is trusted: not the status, not the reference, not the amount. An id
    the EFT API does not know is ignored; a payment is applied to the withdrawal its contractReference
    names, and only if that withdrawal was sent by EFT.
    """
    source = transactions.TransactionEvent.Source.WEBHOOK
    try:
        payout = revio_payouts.get_payouts().get(log.object_id)
    except RevioRejectedError as exc:
        if exc.status == 404:
            return WebhookStatus.IGNORED, "no such EFT payment at Revio: nothing to apply", False
        raise RetryLaterError(f"could not read EFT payment {log.object_id}: {exc}") from exc
    except RevioError as exc:
        raise RetryLaterError(f"could not read EFT payment {log.object_id}: {exc}") from exc
    try:
        withdrawal_id = uuid.UUID(payout.reference)
    except ValueError:
        return WebhookStatus.IGNORED, "the payment's contractReference is not one of our withdrawals", False
    withdrawal = transactions.transaction_find(transaction_id=withdrawal_id)
    if withdrawal is None:
        # Revio can be faster than our own commit; or it is not ours. Retrying tells them apart.
        raise RetryLaterError(f"no withdrawal {withdrawal_id} (yet)")
    if withdrawal.type != transactions.TransactionType.WITHDRAWAL:
        return WebhookStatus.IGNORED, "the payment's contractReference is not one of our withdrawals", False
    if withdrawal.payout_route and withdrawal.payout_route != revio_payouts.ROUTE:
        # Sent by the retired gateway route: an EFT payment for it may be a second payout.
        transactions.transaction_flag_for_review(
            transaction_id=withdrawal.id,
            reason=f"EFT payment {payout.id} names a withdrawal paid out via {withdrawal.payout_route}",
            source=source,
        )
        return WebhookStatus.PROCESSED, "flagged for review: an EFT payment for a gateway payout", True
    if payout.outcome == PayoutOutcome.UNKNOWN:
        # DISPUTED, INTERNAL_FAILURE or a state we do not know: whether money moved is unclear.
        transactions.transaction_flag_for_review(
            transaction_id=withdrawal.id,
            reason=f"EFT payment {payout.id} is {payout.status}: an operator decides",
            source=source,
        )
        return WebhookStatus.PROCESSED, f"flagged for review: the EFT payment is {payout.status}", True
    applied = transactions.withdrawal_apply_provider_state(
        withdrawal_id=withdrawal.id, payout=payout, source=source
    )
    return _outcome(applied, event_status=_event_status(log), provider_status=payout.status)


def _apply_revio_object(
    log: WebhookLog,
    transaction_type: str,
    read: Callable[[str], RevioObject],
    apply: Callable[[Any, RevioObject], str],
) -> tuple[str, str, bool]:
    """Re-read the event's object from Revio and apply its current state to the transaction it names."""
    txn = _our_transaction(log, transaction_type)
    if txn is None:
        return WebhookStatus.IGNORED, f"the reference is not one of our {transaction_type}s", False
    try:
        obj = read(log.object_id)
    except RevioError as exc:
        raise RetryLaterError(f"could not read {log.object_type} {log.object_id} from Revio: {exc}") from exc
    if obj.reference != str(txn.id):
        transactions.transaction_flag_for_review(
            transaction_id=txn.id,
            reason=f"{log.object_type} {obj.id} names reference {obj.reference}",
            source=transactions.TransactionEvent.Source.WEBHOOK,
        )
        return (
            WebhookStatus.PROCESSED,
            f"flagged for review: Revio's {log.object_type} names another reference",
            True,
        )
    applied = apply(txn, obj)
    return _outcome(applied, event_status=_event_status(log), provider_status=obj.status)


def _flag_refund(log: WebhookLog) -> tuple[str, str, bool]:
    """Refunds and chargebacks take money back outside the wallet: an operator decides what to do."""
    related = json.loads(log.body).get("related_to") or {}
    purchase_id = related.get("id") if isinstance(related, dict) else None
    deposit = transactions.transaction_find_by_provider_object(
        transaction_type=transactions.TransactionType.DEPOSIT, provider_object_id=str(purchase_id or "")
    )
    if deposit is None:
        logger.error("%s for unknown purchase %s (webhook %s)", log.event_type, purchase_id, log.id)
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} for an unknown purchase", True
    transactions.transaction_flag_for_review(
        transaction_id=deposit.id, reason=f"Revio sent {log.event_type}", source="webhook"
    )
    return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} on deposit {deposit.id}", True


def _apply_reversal_payment(log: WebhookLog) -> tuple[str, str, bool]:
    """A refund or chargeback Payment: debit the user once per payment id (issue 16).

    The body is Revio's signed Payment (verified at intake): its id, amount and the purchase it names
    (`related_to`) are Revio's. The purchase is re-read from Revio all the same, and the debit is applied
    only if the purchase names our deposit and accounts for what was taken back (reversals.py).
    """
    body = json.loads(log.body)
    related = body.get("related_to")
    purchase_id = related.get("id") if isinstance(related, dict) else None
    payment = body.get("payment") if isinstance(body.get("payment"), dict) else {}
    amount, currency = payment.get("amount", body.get("amount")), payment.get("currency")
    if not isinstance(purchase_id, str) or not purchase_id:
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} names no purchase", True
    if body.get("status") != "success":
        return WebhookStatus.IGNORED, f"{log.event_type} is {body.get('status')!r}, not success", False
    if not (isinstance(amount, int) and not isinstance(amount, bool) and amount > 0) or not isinstance(
        currency, str
    ):
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} has no valid amount", True
    deposit = transactions.transaction_find_by_provider_object(
        transaction_type=transactions.TransactionType.DEPOSIT, provider_object_id=purchase_id
    )
    if deposit is None:  # not linked to its purchase yet (or not ours): the reference tells
        deposit = _our_transaction(log, transactions.TransactionType.DEPOSIT)
    if deposit is None:
        logger.error("%s for unknown purchase %s (webhook %s)", log.event_type, purchase_id, log.id)
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} for an unknown purchase", True
    try:
        state = purchase_take_back(get_client(), purchase_id)
    except RevioError as exc:
        raise RetryLaterError(f"could not read purchase {purchase_id} from Revio: {exc}") from exc
    source = transactions.TransactionEvent.Source.WEBHOOK
    if state.reference != str(deposit.id) or (
        deposit.provider_object_id and deposit.provider_object_id != purchase_id
    ):
        transactions.transaction_flag_for_review(
            transaction_id=deposit.id,
            reason=f"{log.event_type} {log.object_id}: purchase {purchase_id} is not this deposit's",
            source=source,
        )
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} names another purchase", True
    applied = transactions.reversal_apply_from_revio(
        deposit_id=deposit.id,
        reversal=transactions.RevioReversal(
            kind=_REVERSAL_EVENTS[log.event_type],
            payment_id=log.object_id,
            amount=amount,
            currency=currency,
            purchase_taken_back=state.taken_back,
        ),
        origin=transactions.ReversalOrigin.REVIO,
        source=source,
    )
    flagged = applied == transactions.ReversalApplied.FLAGGED
    return WebhookStatus.PROCESSED, f"{log.event_type} {log.object_id}: {applied}", flagged


def _event_status(log: WebhookLog) -> str:
    status = json.loads(log.body).get("status")
    return status if isinstance(status, str) else ""


# -- retries, recovery and replay -------------------------------------------------------------------------


def webhooks_sweep(*, now: datetime | None = None) -> int:
    """Enqueue every event that is due: failed ones whose backoff passed, received ones whose Celery
    message may have been lost, and processing ones whose worker's lease expired. Returns how many."""
    now = now or timezone.now()
    stale_received = now - timedelta(seconds=30)
    due = list(
        WebhookLog.objects.filter(
            Q(status=WebhookStatus.FAILED, next_attempt_at__lte=now)
            | Q(status=WebhookStatus.RECEIVED, received_at__lte=stale_received)
            | Q(status=WebhookStatus.PROCESSING, lease_expires_at__lt=now)
        )
        .order_by("id")
        .values_list("id", flat=True)[:500]
    )
    for log_id in due:
        _enqueue(log_id)
    return len(due)


_FINAL_STATUSES = (WebhookStatus.PROCESSED, WebhookStatus.IGNORED, WebhookStatus.DEAD_LETTERED)


def webhooks_purge(*, now: datetime | None = None, batch: int = 5_000) -> tuple[int, int]:
    """Delete webhook log rows in a final state and rejections older than WEBHOOK_LOG_RETENTION_DAYS
    (issue 17 F1: the log and the rejections grew without bound). Events still to be processed are kept
    whatever their age. Returns (log rows, rejections) deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    purged = [0, 0]
    targets = (
        (0, WebhookLog.objects.filter(status__in=_FINAL_STATUSES, received_at__lt=cutoff)),
        (1, WebhookRejection.objects.filter(received_at__lt=cutoff)),
    )
    for slot, queryset in targets:
        while True:  # in batches: one huge DELETE would hold its locks and bloat the WAL at once
            ids = list(queryset.order_by("id").values_list("id", flat=True)[:batch])
            if not ids:
                break
            purged[slot] += queryset.model.objects.filter(id__in=ids).delete()[0]
    if any(purged):
        logger.info("purged %d webhook log rows and %d rejections before %s", *purged, cutoff)
    return purged[0], purged[1]


def webhook_replay(*, log_id: int, actor: str, now: datetime | None = None, ip: str | None = None) -> bool:
    """Send a failed or dead-lettered event through processing again (an operator's action, audited)."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = WebhookLog.objects.filter(
            id=log_id, status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD_LETTERED]
        ).update(
            status=WebhookStatus.RECEIVED,
            attempts=0,
            next_attempt_at=None,
            replayed_by=actor[:254],
            replayed_at=now,
        )
        if updated:
            audit.audit_record(
                action=audit.AuditAction.WEBHOOK_REPLAYED,
                actor=actor,
                subject_type="webhooks.webhooklog",
                subject_id=str(log_id),
                ip=ip,
                now=now,
            )
    if updated:
        logger.warning("webhook %s replayed by %s", log_id, actor)
        transaction.on_commit(lambda: _enqueue(log_id))
    return bool(updated)
