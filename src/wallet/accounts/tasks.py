"""Periodic housekeeping of authentication data."""

from typing import Any

from celery import shared_task
from django.core.management import call_command


@shared_task(name="accounts.flush_expired_tokens", acks_late=True, ignore_result=True)
def flush_expired_tokens_task(**kwargs: Any) -> None:
    """Remove expired refresh tokens from simplejwt's outstanding/blacklist tables."""
    call_command("flushexpiredtokens")


@shared_task(name="accounts.password_reset_prepare", acks_late=True, ignore_result=True)
def password_reset_prepare_task(*, email: str, ip: str | None = None) -> None:
    """Look the account up and record its reset email, off the request path (see password_reset_request)."""
    from wallet.accounts.services import password_reset_prepare

    password_reset_prepare(email=email, ip=ip)
