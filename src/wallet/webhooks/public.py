"""Webhooks: Revio's event deliveries, verified, logged once, and applied through the wallet's services."""

from wallet.webhooks.selectors import (
    ReportedObject,
    WebhookLogFigures,
    webhook_log_figures,
    webhook_objects_reported_between,
)
from wallet.webhooks.services import (
    eft_callback_receive,
    webhook_process,
    webhook_receive,
    webhook_replay,
    webhooks_sweep,
)

__all__ = [
    "ReportedObject",
    "WebhookLogFigures",
    "eft_callback_receive",
    "webhook_log_figures",
    "webhook_objects_reported_between",
    "webhook_process",
    "webhook_receive",
    "webhook_replay",
    "webhooks_sweep",
]
