"""The Celery application: tasks are discovered in each app's tasks.py; the beat schedule lives here."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("wallet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs, all in one place. Each entry names a task with a stable name and explains its cadence.
app.conf.beat_schedule = {
    # Webhook retries with backoff, lost broker messages and events whose worker died: every 30 seconds,
    # so a retry is late by at most that much on top of its backoff.
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": 30.0},
    # Idempotency keys are kept at least IDEMPOTENCY_KEY_TTL_HOURS; purging daily keeps the table small.
    "idempotency-purge": {"task": "core.idempotency_purge", "schedule": crontab(minute=17, hour=3)},
    # Expired refresh tokens in the blacklist tables serve no purpose (simplejwt flushexpiredtokens).
    "jwt-flush-expired": {"task": "accounts.flush_expired_tokens", "schedule": crontab(minute=27, hour=3)},
    # Emails whose send task was lost after commit (after NOTIFICATION_SWEEP_GRACE_SECONDS), and retries
    # whose backoff has passed: every minute, the granularity of the retry backoff.
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 60.0},
}
