"""Celery entry points for notifications: each makes one service call and holds no logic.

They run on the "notifications" queue, so a slow email provider never delays webhooks or payouts.
"""

import uuid
from typing import Any

from celery import shared_task
from django.utils import timezone

from wallet.notifications import services


@shared_task(
    name="notifications.send",
    queue="notifications",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def notification_send_task(*, notification_id: str, **kwargs: Any) -> None:
    """Send one recorded notification; safe to run more than once (retries are the sweep's job)."""
    services.notification_send(notification_id=uuid.UUID(notification_id), now=timezone.now())


@shared_task(
    name="notifications.sweep",
    queue="notifications",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def notification_sweep_task(**kwargs: Any) -> None:
    """Send notifications whose first task was lost, and retries whose backoff has passed."""
    services.notification_sweep(now=timezone.now())
