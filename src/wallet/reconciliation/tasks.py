"""Celery entry points for reconciliation: each makes one service call and holds no logic."""

from typing import Any

from celery import shared_task
from django.utils import timezone

from wallet.reconciliation import services


@shared_task(
    name="reconciliation.recover_stuck",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=600,
    time_limit=660,
)
def recover_stuck_task(**kwargs: Any) -> None:
    """Look up stuck deposits and withdrawals at Revio and apply what it says; safe to run twice at once."""
    services.recovery_run(now=timezone.now())


@shared_task(
    name="reconciliation.provider_daily",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3000,
    time_limit=3300,
)
def provider_daily_task(**kwargs: Any) -> None:
    """Compare yesterday's deposits and withdrawals with Revio's objects (skipped if already done)."""
    services.provider_reconciliation_daily(now=timezone.now())


@shared_task(
    name="reconciliation.check_invariants",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def check_invariants_task(**kwargs: Any) -> None:
    """Check the ledger's invariants; alerts on any violation."""
    services.invariants_check(now=timezone.now())


@shared_task(
    name="payouts.send_queued", acks_late=True, ignore_result=True, soft_time_limit=240, time_limit=300
)
def payouts_send_queued_task(**kwargs: Any) -> None:
    """Send payouts queued while Revio was down; each withdrawal's request is claimed, so sent once."""
    services.payouts_send_queued(now=timezone.now())
