"""Outgoing events: record them with the change they report, deliver them signed, at least once.

Recording happens inside the caller's database transaction (the transactions app's status change): the
Event row and one Delivery per subscribed endpoint commit or roll back with the change, and a delivery task
per Delivery is enqueued on commit. Delivering claims the Delivery with a lease (one conditional UPDATE,
like the webhook log's claim), so two workers or two sweeps never send one delivery at the same time; the
HTTP call runs outside any transaction. A 2xx delivers; anything else (a non-2xx, a timeout, a reset, an
address that is now refused) is retried with exponential backoff and jitter, and after EVENTS_MAX_ATTEMPTS
the delivery is dead-lettered. The periodic sweep re-enqueues due retries, deliveries whose first task was
lost, and deliveries whose worker died (expired lease). Replay re-delivers the same event (same id, same
body) to an endpoint. Endpoints and their secrets: endpoints.py. See docs/events.md and ADR 0012.

Nothing here touches balances: a failed delivery is a failed delivery, never a failed money movement.
"""

import json
import logging
import random
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from wallet.audit import public as audit
from wallet.core import metrics
from wallet.core.errors import NotFoundError, ValidationFailedError
from wallet.events import addresses, catalogue, endpoints, sender, signing
from wallet.events.errors import EndpointUrlRefusedError, EventNotFoundError
from wallet.events.models import Delivery, DeliveryAttempt, DeliveryStatus, Event

logger = logging.getLogger(__name__)

Status = DeliveryStatus


# -- recording (inside the caller's transaction) -----------------------------------------------------------


def event_record_for_transaction(
    *,
    transaction_id: uuid.UUID,
    user_id: uuid.UUID,
    transaction_type: str,
    status: str,
    amount: int,
    currency: str,
) -> None:
    """Record the event for a deposit's or withdrawal's status change, in the caller's transaction.

    Emits "<type>.<status>" when the catalogue lists it ("deposit.pending" records nothing). Recording the
    same (transaction, type) again is a no-op. Deliveries are enqueued when the caller's transaction
    commits, and never if it rolls back. Only these fields go into the body: never bank details.
    """
    event_type = f"{transaction_type}.{status}"
    if not catalogue.is_known(event_type):
        return
    transaction_facts = {
        "id": str(transaction_id),
        "type": transaction_type,
        "status": status,
        "amount": amount,
        "currency": currency,
    }
    _record(
        event_type=event_type,
        user_id=user_id,
        transaction_id=transaction_id,
        data={"user_id": str(user_id), "transaction": transaction_facts},
        now=timezone.now(),
    )


def _record(
    *,
    event_type: str,
    user_id: uuid.UUID,
    transaction_id: uuid.UUID | None,
    data: dict[str, Any],
    now: datetime,
) -> None:
    event_id = uuid.uuid4()
    body = {
        "id": str(event_id),
        "type": event_type,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    event = Event(
        id=event_id,
        type=event_type,
        user_id=user_id,
        transaction_id=transaction_id,
        body=json.dumps(body, separators=(",", ":"), sort_keys=True),
        created_at=now,
    )
    due = now + timedelta(seconds=settings.EVENTS_SWEEP_GRACE_SECONDS)
    delivery_ids = _record_in_one_statement(event, event_type=event_type, due=due, now=now)
    if delivery_ids:
        _enqueue_on_commit(delivery_ids)


# The event and its deliveries in one statement: this runs inside every money-moving transaction, where
# each statement counts (the withdrawal path's statement budget). ON CONFLICT DO NOTHING: a repeat inserts
# neither, and never raises (an IntegrityError would abort the caller's transaction). The endpoint filter
# is catalogue.matches in SQL: every type, the exact type, its family ("deposit.*") or "*".
_RECORD_SQL = """
    WITH event AS (
        INSERT INTO events (id, type, user_id, transaction_id, body, created_at)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT DO NOTHING
        RETURNING id
    ), delivery AS (
        INSERT INTO event_deliveries (
            event_id, endpoint_id, status, attempts, next_attempt_at,
            last_error, replays, created_at, updated_at
        )
        SELECT event.id, endpoint.id, %s, 0, %s, '', 0, %s, %s
        FROM event CROSS JOIN event_endpoints AS endpoint
        WHERE endpoint.enabled AND endpoint.deleted_at IS NULL
          AND (jsonb_array_length(endpoint.event_types) = 0 OR endpoint.event_types ?| %s::text[])
        RETURNING id
    )
    SELECT id FROM delivery
"""


def _record_in_one_statement(event: Event, *, event_type: str, due: datetime, now: datetime) -> list[int]:
    matching = [event_type, f"{catalogue.family_of(event_type)}.*", "*"]
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_SQL,
            [
                event.id,
                event.type,
                event.user_id,
                event.transaction_id,
                event.body,
                event.created_at,
                Status.PENDING.value,
                due,
                now,
                now,
                matching,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _enqueue_on_commit(delivery_ids: list[int]) -> None:
    def enqueue_event_deliveries() -> None:  # a named function: Django logs its name if it fails
        for delivery_id in delivery_ids:
            _enqueue(delivery_id)

    # robust: a broker that is down must not turn a committed money movement into an error; the sweep
    # delivers the rows later.
    transaction.on_commit(enqueue_event_deliveries, robust=True)


def _enqueue(delivery_id: int) -> None:
    from wallet.events.tasks import event_deliver_task  # here: the tasks module imports this one

    try:
        event_deliver_task.delay(delivery_id=delivery_id)
    except Exception:  # broker down: the sweep finds the delivery later
        logger.warning(
            "could not enqueue event delivery %s; the sweep will pick it up", delivery_id, exc_info=True
        )


# -- delivering (after commit, from the task or the sweep) -------------------------------------------------


def event_deliver(*, delivery_id: int, now: datetime) -> str | None:
    """Make one attempt at a delivery if it is due and nobody else holds it; its new status, or None.

    Safe to call any number of times, concurrently too: the claim is a lease on the row, so while one
    caller's attempt runs every other caller gets None.
    """
    claimed = _claim(delivery_id=delivery_id, now=now)
    if claimed is None:
        return None
    delivery, token = claimed
    endpoint, event = delivery.endpoint, delivery.event
    if endpoint.deleted_at is not None or not endpoint.enabled:
        return _settle(
            delivery, token, status=Status.CANCELLED, now=now, error="endpoint disabled or deleted"
        )

    body = event.body.encode()
    try:
        target = addresses.resolve(endpoint.url)  # again at delivery time: DNS may have changed
    except EndpointUrlRefusedError as exc:
        answer = sender.Answer(
            status_code=None, latency_ms=0, excerpt="", error=f"refused: {exc.message}"[:500]
        )
    else:
        # The signed timestamp is the moment of sending (the receiver checks it against its clock), so it is
        # read here and not taken from `now`, which only schedules.
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Wallet-Events/1",
            signing.EVENT_ID_HEADER: str(event.id),
            signing.EVENT_TYPE_HEADER: event.type,
            signing.SIGNATURE_HEADER: signing.signature_header(
                secrets_in_use=endpoints.secrets_in_use(endpoint, now=now), timestamp=timestamp, body=body
            ),
        }
        answer = sender.post(
            target=target, body=body, headers=headers, timeout=settings.EVENTS_DELIVERY_TIMEOUT_SECONDS
        )
    delivered = answer.status_code is not None and 200 <= answer.status_code < 300
    error = answer.error
    if answer.status_code is not None and not delivered:
        error = f"HTTP {answer.status_code}" + (
            " (redirects are not followed)" if 300 <= answer.status_code < 400 else ""
        )
    DeliveryAttempt.objects.create(
        delivery_id=delivery.id,
        number=delivery.attempts,
        started_at=now,
        status_code=answer.status_code,
        latency_ms=answer.latency_ms,
        response_excerpt=answer.excerpt[:500],
        error=error[:500],
        succeeded=delivered,
    )
    if delivered:
        return _settle(delivery, token, status=Status.DELIVERED, now=now, code=answer.status_code)
    if delivery.attempts >= settings.EVENTS_MAX_ATTEMPTS:
        logger.error(
            "event %s (%s) to endpoint %s dead-lettered after %d attempts: %s",
            event.id,
            event.type,
            endpoint.id,
            delivery.attempts,
            error,
        )
        return _settle(
            delivery, token, status=Status.DEAD_LETTERED, now=now, code=answer.status_code, error=error
        )
    retry_at = now + timedelta(seconds=retry_delay(delivery.attempts))
    logger.info(
        "event delivery %s attempt %d failed (%s); retry at %s",
        delivery.id,
        delivery.attempts,
        error,
        retry_at,
    )
    return _settle(
        delivery,
        token,
        status=Status.PENDING,
        now=now,
        code=answer.status_code,
        error=error,
        retry_at=retry_at,
    )


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt: exponential in the attempts made, capped, with jitter (the upper half
    of the interval is random) so deliveries that failed together do not all come back together."""
    ceiling = min(
        settings.EVENTS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), settings.EVENTS_RETRY_MAX_SECONDS
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security  # nosec B311


def _claim(*, delivery_id: int, now: datetime) -> tuple[Delivery, uuid.UUID] | None:
    """Take a lease on the delivery if it is due (a first attempt, a retry past its backoff, or one whose
    worker's lease expired) and nobody else holds it."""
    token = uuid.uuid4()
    # One conditional UPDATE. Under READ COMMITTED a concurrent UPDATE of the row waits, then re-evaluates
    # this WHERE on the row's new version: a delivery another worker just leased no longer matches.
    claimed = (
        Delivery.objects.filter(id=delivery_id)
        .filter(
            Q(status=Status.PENDING, attempts=0)
            | Q(status=Status.PENDING, next_attempt_at__lte=now)
            | Q(status=Status.DELIVERING, lease_expires_at__lt=now)
        )
        .update(
            status=Status.DELIVERING,
            attempts=F("attempts") + 1,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=settings.EVENTS_DELIVERY_LEASE_SECONDS),
            updated_at=now,
        )
    )
    if not claimed:
        return None
    delivery = (
        Delivery.objects.select_related("event", "endpoint").filter(id=delivery_id, lease_token=token).first()
    )
    return None if delivery is None else (delivery, token)


def _settle(
    delivery: Delivery,
    token: uuid.UUID,
    *,
    status: str,
    now: datetime,
    code: int | None = None,
    error: str = "",
    retry_at: datetime | None = None,
) -> str:
    # Only while the lease is still ours: a replay (or a sweep after our lease ran out) has taken it over.
    fields: dict[str, Any] = {
        "status": status,
        "lease_token": None,
        "lease_expires_at": None,
        "last_status_code": code,
        "last_error": error[:500],
        "next_attempt_at": retry_at or now,
        "updated_at": now,
    }
    if status == Status.DELIVERED:
        fields["delivered_at"] = now
    updated = Delivery.objects.filter(id=delivery.id, lease_token=token).update(**fields)
    if not updated:
        logger.warning("event delivery %s: lease lost before recording %s", delivery.id, status)
    metrics.increment(f"events_{status}")  # events_delivered, events_pending (a retry), events_dead_lettered
    return status


def events_sweep(*, now: datetime, limit: int = 500) -> int:
    """Enqueue every delivery that is due: retries past their backoff, first attempts whose task was lost
    (after EVENTS_SWEEP_GRACE_SECONDS) and deliveries whose worker's lease expired. Returns how many."""
    due = list(
        Delivery.objects.filter(
            Q(status=Status.PENDING, next_attempt_at__lte=now)
            | Q(status=Status.DELIVERING, lease_expires_at__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    for delivery_id in due:
        _enqueue(delivery_id)
    if due:
        logger.info("events sweep enqueued %d deliveries", len(due))
    return len(due)


# -- replay (an admin's action) ----------------------------------------------------------------------------


def event_replay(
    *,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    now: datetime,
    actor: Any = None,
    ip: str | None = None,
) -> int:
    """Deliver events to the endpoint again, with their original ids and bodies: one event by id, or those
    created in [created_after, created_before). Only events the endpoint subscribes to; a delivery being
    sent right now is left to finish; a disabled endpoint gets nothing. Returns how many were queued. Audited.

    :raises NotFoundError: no such endpoint.
    :raises EventNotFoundError: no event with that id.
    :raises ValidationFailedError: neither an event id nor a start time.
    """
    if event_id is None and created_after is None:
        raise ValidationFailedError.for_fields({"event_id": ["Give an event_id or a created_after time."]})
    events = Event.objects.all()
    if event_id is not None:
        if not events.filter(id=event_id).exists():
            raise EventNotFoundError()
        events = events.filter(id=event_id)
    if created_after is not None:
        events = events.filter(created_at__gte=created_after)
    if created_before is not None:
        events = events.filter(created_at__lt=created_before)
    with transaction.atomic():
        endpoint = endpoints.endpoint_locked(endpoint_id)
        if not endpoint.enabled:  # its deliveries would only be cancelled: enable it first
            return 0
        chosen = [
            eid
            for eid, event_type in events.order_by("created_at").values_list("id", "type")[
                : settings.EVENTS_REPLAY_MAX_EVENTS
            ]
            if catalogue.matches(endpoint.event_types, event_type)
        ]
        Delivery.objects.bulk_create(
            [
                Delivery(
                    event_id=eid, endpoint_id=endpoint.id, next_attempt_at=now, created_at=now, updated_at=now
                )
                for eid in chosen
            ],
            ignore_conflicts=True,
        )
        in_flight = Q(status=Status.DELIVERING, lease_expires_at__gte=now)
        queued = list(
            Delivery.objects.select_for_update()
            .filter(endpoint_id=endpoint.id, event_id__in=chosen)
            .exclude(in_flight)
            .values_list("id", flat=True)
        )
        Delivery.objects.filter(id__in=queued).update(
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_token=None,
            lease_expires_at=None,
            replays=F("replays") + 1,
            updated_at=now,
        )
        audit.audit_record(
            action=audit.AuditAction.WEBHOOK_REPLAYED,
            actor=actor,
            subject_type="events.eventendpoint",
            subject_id=str(endpoint.id),
            ip=ip,
            details={
                "event_id": str(event_id) if event_id else None,
                "created_after": created_after.isoformat() if created_after else None,
                "created_before": created_before.isoformat() if created_before else None,
                "queued": len(queued),
            },
            now=now,
        )
        _enqueue_on_commit(queued)
    logger.warning("%d event deliveries to endpoint %s replayed", len(queued), endpoint_id)
    return len(queued)


def event_replay_deliveries(
    *, delivery_ids: Iterable[int], now: datetime, actor: Any = None, ip: str | None = None
) -> int:
    """Replay the events of the given deliveries to their endpoints (the console's action)."""
    total = 0
    pairs = Delivery.objects.filter(id__in=list(delivery_ids)).values_list("endpoint_id", "event_id")
    for endpoint_id, event_id in pairs:
        try:
            total += event_replay(endpoint_id=endpoint_id, event_id=event_id, now=now, actor=actor, ip=ip)
        except NotFoundError:  # a deleted endpoint gets nothing more
            continue
    return total
