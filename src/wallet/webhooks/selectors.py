"""Reads of the webhook log for other apps: what Revio told us about, never the rows themselves."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.db.models import Count, Min, Q

from wallet.webhooks.models import EFT_OBJECT_TYPE, WebhookLog, WebhookStatus


class ReportedObject(TypedDict):
    object_type: str
    object_id: str
    reference: str
    event_type: str


def webhook_objects_reported_between(*, start: datetime, end: datetime) -> Iterator[ReportedObject]:
    """Every Revio object an event received in [start, end) names, ordered by object id: signed purchase
    events, and EFT callbacks only once the EFT API confirmed their payment (processed), since they are
    unsigned. An object named by several events comes once per event."""
    events = (
        WebhookLog.objects.filter(received_at__gte=start, received_at__lt=end)
        .filter(Q(object_type="purchase") | Q(object_type=EFT_OBJECT_TYPE, status=WebhookStatus.PROCESSED))
        .order_by("object_id", "id")
        .values("object_type", "object_id", "reference", "event_type")
    )
    for event in events.iterator(chunk_size=500):
        yield ReportedObject(**event)


# The statuses /metrics counts: the ones still to be worked, and the dead letters an operator must see.
# processed and ignored rows are most of the log and are not counted at scrape time.
COUNTED_STATUSES = (
    WebhookStatus.RECEIVED,
    WebhookStatus.PROCESSING,
    WebhookStatus.FAILED,
    WebhookStatus.DEAD_LETTERED,
)
WAITING_STATUSES = (WebhookStatus.RECEIVED, WebhookStatus.FAILED)


@dataclass(frozen=True)
class WebhookLogFigures:
    """Webhook log rows by status (COUNTED_STATUSES, 0 when none) and when the oldest waiting one came."""

    by_status: dict[str, int]
    oldest_waiting_received_at: datetime | None


def webhook_log_figures() -> WebhookLogFigures:
    """For /metrics: range scans of webhook_log_due_idx (status, next_attempt_at) over the counted statuses
    only, never the processed rows that make up the log."""
    counted = dict(
        WebhookLog.objects.filter(status__in=COUNTED_STATUSES)
        .values_list("status")
        .annotate(n=Count("*"))
        .values_list("status", "n")
    )
    oldest = WebhookLog.objects.filter(status__in=WAITING_STATUSES).aggregate(oldest=Min("received_at"))
    return WebhookLogFigures(
        by_status={status.value: counted.get(status.value, 0) for status in COUNTED_STATUSES},
        oldest_waiting_received_at=oldest["oldest"],
    )
