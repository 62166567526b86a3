"""The Celery application: tasks are discovered in each app's tasks.py; the beat schedule lives here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("wallet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs, all in one place. Each entry names a task with a stable name and explains its cadence.
app.conf.beat_schedule = {}
