"""Webhooks: Revio's event deliveries, verified, logged once, and applied through the wallet's services."""

from wallet.webhooks.services import (
    eft_callback_receive,
    webhook_process,
    webhook_receive,
    webhook_replay,
    webhooks_sweep,
)

__all__ = ["eft_callback_receive", "webhook_process", "webhook_receive", "webhook_replay", "webhooks_sweep"]
