"""Celery entry points for transactions: each makes one service call and holds no logic.

They run on the "payouts" queue (CELERY_TASK_ROUTES: "payouts.*"), so a slow Revio delays payouts only,
never the API's threads, webhooks or emails.
"""

import uuid
from typing import Any

from celery import shared_task

from wallet.transactions import services


@shared_task(
    name="payouts.send",
    queue="payouts",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def withdrawal_payout_send_task(*, withdrawal_id: str, **kwargs: Any) -> None:
    """Send a new withdrawal's payout and apply Revio's answer. Safe to run more than once: the payout is
    claimed before it is sent, so a second run (a redelivered message, the sweep) sends nothing."""
    services.withdrawal_payout_send_by_id(withdrawal_id=uuid.UUID(withdrawal_id))
