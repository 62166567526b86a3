"""Periodic housekeeping of the shared API machinery."""

from typing import Any

from celery import shared_task

from wallet.core import idempotency


@shared_task(name="core.idempotency_purge", acks_late=True, ignore_result=True)
def idempotency_purge_task(**kwargs: Any) -> None:
    """Delete Idempotency-Key records past their retention period."""
    idempotency.purge_expired()
