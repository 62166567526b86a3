"""Reads of the webhook log for other apps: what Revio told us about, never the rows themselves."""

from collections.abc import Iterator
from datetime import datetime
from typing import TypedDict

from django.db.models import Q

from wallet.webhooks.models import WebhookLog, WebhookStatus

# The object type EFT payment callbacks are logged under (unsigned; wallet.revio.eft).
EFT_OBJECT_TYPE = "eft_payment"


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
