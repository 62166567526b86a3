"""Reads of endpoints, events and deliveries (the admin API and the console)."""

import uuid

from django.db.models import Prefetch, QuerySet

from wallet.events.models import Delivery, DeliveryAttempt, EventEndpoint

RECENT_ATTEMPTS = 10


def endpoint_list() -> QuerySet[EventEndpoint]:
    return EventEndpoint.objects.filter(deleted_at=None)


def endpoint_get(*, endpoint_id: uuid.UUID) -> EventEndpoint | None:
    return EventEndpoint.objects.filter(id=endpoint_id, deleted_at=None).first()


def delivery_list(
    *, endpoint_id: uuid.UUID, status: str | None = None, event_id: uuid.UUID | None = None
) -> QuerySet[Delivery]:
    """An endpoint's deliveries with their event and their attempts (the latest first), newest first."""
    rows = (
        Delivery.objects.filter(endpoint_id=endpoint_id)
        .select_related("event")
        .prefetch_related(
            Prefetch(
                "attempt_log", queryset=DeliveryAttempt.objects.order_by("-id"), to_attr="attempts_newest"
            )
        )
    )
    if status:
        rows = rows.filter(status=status)
    if event_id:
        rows = rows.filter(event_id=event_id)
    return rows
