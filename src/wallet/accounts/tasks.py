"""Periodic housekeeping of authentication data."""

from typing import Any

from celery import shared_task
from django.core.management import call_command


@shared_task(name="accounts.flush_expired_tokens", acks_late=True, ignore_result=True)
def flush_expired_tokens_task(**kwargs: Any) -> None:
    """Remove expired refresh tokens from simplejwt's outstanding/blacklist tables."""
    call_command("flushexpiredtokens")
