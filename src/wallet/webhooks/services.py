"""Revio webhooks: intake (verify, log, deduplicate), processing (apply through the wallet), retries, replay.

The webhook log is the queue of record. Intake (wallet.webhooks.intake) stores each verified event once and
nudges the drain after commit (at most one Celery message per short window, not one per event); the drain
(wallet.webhooks.processing) claims due events in batches with a lease and applies each with its handler
(wallet.webhooks.handlers), which re-reads the object from Revio (the body is a trigger, Revio's current
state is the truth) and calls the wallet's state-guarded services. See docs/adr/0021.

This module gathers the service names the app's views, admin, tasks and tests use (other apps use
wallet.webhooks.public). `_enqueue` (the nudge) is the one seam to the broker: intake and replay look it up
here at call time, so a test can replace it and play the worker (webhook_process of the event).
"""

from wallet.webhooks.handlers import event_dispatch
from wallet.webhooks.intake import (
    Received,
    _account_numbers_masked,
    eft_callback_receive,
    webhook_receive,
)
from wallet.webhooks.models import EFT_OBJECT_TYPE
from wallet.webhooks.processing import (
    _claim,
    webhook_process,
    webhook_replay,
    webhooks_drain,
    webhooks_purge,
    webhooks_sweep,
)
from wallet.webhooks.processing import (
    nudge as _enqueue,
)

__all__ = [
    "EFT_OBJECT_TYPE",
    "Received",
    "_account_numbers_masked",
    "_claim",
    "_enqueue",
    "eft_callback_receive",
    "event_dispatch",
    "webhook_process",
    "webhook_receive",
    "webhook_replay",
    "webhooks_drain",
    "webhooks_purge",
    "webhooks_sweep",
]
