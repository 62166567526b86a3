"""Periodic housekeeping of balance-correction proposals."""

from typing import Any

from celery import shared_task
from django.utils import timezone

from wallet.adjustments.services import adjustments_expire


@shared_task(name="adjustments.expire", acks_late=True, ignore_result=True)
def adjustments_expire_task(**kwargs: Any) -> None:
    """Mark undecided proposals past their expiry as expired (they are refused either way)."""
    adjustments_expire(now=timezone.now())
