"""Celery entry points for webhooks: each loads nothing itself and makes one service call."""

from typing import Any

from celery import shared_task

from wallet.webhooks import services


@shared_task(name="webhooks.drain", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180)
def webhooks_drain_task(*, linger_until: float | None = None, **kwargs: Any) -> None:
    """Claim and process due events in batches until none is due (woken by intake's nudge)."""
    services.webhooks_drain(linger_until=linger_until)


@shared_task(
    name="webhooks.process_event", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180
)
def webhook_process_task(*, log_id: int, **kwargs: Any) -> None:
    """Process one logged Revio event; safe to run more than once. Nothing sends these since the drain
    (docs/adr/0021); kept for messages queued before that deploy."""
    services.webhook_process(log_id=log_id)


@shared_task(name="webhooks.sweep", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def webhook_sweep_task(**kwargs: Any) -> None:
    """The periodic drain: due retries, events whose nudge was lost and events whose worker died."""
    services.webhooks_sweep()


@shared_task(name="webhooks.purge", acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
def webhooks_purge_task(**kwargs: Any) -> None:
    """Delete finished webhook log rows and rejections past WEBHOOK_LOG_RETENTION_DAYS."""
    services.webhooks_purge()
