"""Celery entry points for outgoing events: each makes one service call and holds no logic.

They run on the "events" queue, so a slow client backend never delays webhooks, emails or payouts.
"""

from typing import Any

from celery import shared_task
from django.utils import timezone

from wallet.events import services


@shared_task(
    name="events.deliver",
    queue="events",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def event_deliver_task(*, delivery_id: int, **kwargs: Any) -> None:
    """Make one attempt at one delivery; safe to run more than once (retries are the sweep's job)."""
    services.event_deliver(delivery_id=delivery_id, now=timezone.now())


@shared_task(
    name="events.sweep", queue="events", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90
)
def events_sweep_task(**kwargs: Any) -> None:
    """Enqueue due retries, deliveries whose first task was lost, and those whose worker died."""
    services.events_sweep(now=timezone.now())
