"""The Celery application: tasks are discovered in each app's tasks.py; the beat schedule lives here."""

import os

from celery import Celery
from celery.schedules import crontab

# Read straight from the settings module (it only reads the environment): Django is not set up here yet.
from config.settings.integrations import reconciliation as reconciliation_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("wallet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs, all in one place. Each entry names a task with a stable name and explains its cadence.
app.conf.beat_schedule = {
    # The periodic drain (docs/adr/0021): webhook retries with backoff, events whose nudge was lost and events
    # whose worker died; every 10 seconds, so a retry is late by at most that much on top of its backoff.
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": 10.0},
    # Finished webhook log rows and rejections older than WEBHOOK_LOG_RETENTION_DAYS (issue 17 F1).
    "webhooks-purge": {"task": "webhooks.purge", "schedule": crontab(minute=47, hour=3)},
    # Correction proposals nobody decided in time are marked expired (they are refused either way).
    "adjustments-expire": {"task": "adjustments.expire", "schedule": crontab(minute="*/15")},
    # Idempotency keys are kept at least IDEMPOTENCY_KEY_TTL_HOURS; purging daily keeps the table small.
    "idempotency-purge": {"task": "core.idempotency_purge", "schedule": crontab(minute=17, hour=3)},
    # Expired refresh tokens in the blacklist tables serve no purpose (simplejwt flushexpiredtokens).
    "jwt-flush-expired": {"task": "accounts.flush_expired_tokens", "schedule": crontab(minute=27, hour=3)},
    # Emails whose send task was lost after commit (after NOTIFICATION_SWEEP_GRACE_SECONDS), and retries
    # whose backoff has passed: every minute, the granularity of the retry backoff.
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 60.0},
    # Stuck deposits and withdrawals: looked up at Revio and applied; each transaction also backs off on
    # its own (5 min, 1 h, then daily), so the cadence only bounds how late a due check can be.
    "reconciliation-recover-stuck": {
        "task": "reconciliation.recover_stuck",
        "schedule": float(reconciliation_settings.RECONCILIATION_RECOVERY_INTERVAL_SECONDS),
    },
    # Yesterday's deposits and withdrawals against Revio's objects, once a day after midnight UTC.
    "reconciliation-provider-daily": {
        "task": "reconciliation.provider_daily",
        "schedule": crontab(minute=37, hour=2),
    },
    # The ledger's invariants: often enough that a violation is seen within minutes, cheap enough to run.
    "reconciliation-check-invariants": {
        "task": "reconciliation.check_invariants",
        "schedule": float(reconciliation_settings.RECONCILIATION_INVARIANTS_INTERVAL_SECONDS),
    },
    # Payouts queued while Revio's circuit breaker was open: sent once it closes (each exactly once).
    "payouts-send-queued": {"task": "payouts.send_queued", "schedule": 60.0},
    # Outgoing events: retries past their backoff (30 s and up), first deliveries whose task was lost and
    # deliveries whose worker died; every 30 seconds, like the webhook sweep.
    "events-sweep": {"task": "events.sweep", "schedule": 30.0},
}
