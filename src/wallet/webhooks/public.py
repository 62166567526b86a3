"""Webhooks: Revio's event deliveries, verified, logged once, and applied through the wallet's services."""

from wallet.webhooks.selectors import ReportedObject, webhook_objects_reported_between
from wallet.webhooks.services import (
    eft_callback_receive,
    webhook_process,
    webhook_receive,
    webhook_replay,
    webhooks_sweep,
)

__all__ = [
    "ReportedObject",
    "eft_callback_receive",
    "webhook_objects_reported_between",
    "webhook_process",
    "webhook_receive",
    "webhook_replay",
    "webhooks_sweep",
]
