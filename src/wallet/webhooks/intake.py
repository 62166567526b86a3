"""Webhook intake: verify, check and log each delivery once; wake the worker. Nothing here reads Revio
or moves money: the log row is the queue of record, and processing (wallet.webhooks.processing) claims it.
"""

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from wallet.core import metrics
from wallet.core.crypto import mask_account_number
from wallet.core.http.parsers import JsonBodyError, loads_json
from wallet.webhooks import keys
from wallet.webhooks.errors import EventTooOldError, MalformedEventError, WebhookRejectedError
from wallet.webhooks.models import EFT_OBJECT_TYPE, WebhookLog, WebhookRejection, WebhookStatus
from wallet.webhooks.processing import wake_worker

logger = logging.getLogger(__name__)

_EVENT_TYPE = re.compile(r"^[a-z_]{1,32}\.[a-z_]{1,48}$")
_HEADERS_OF_INTEREST = ("content-type", "content-length", "user-agent", "x-signature", "x-forwarded-for")
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
    transaction.on_commit(lambda: wake_worker(log_id))
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
