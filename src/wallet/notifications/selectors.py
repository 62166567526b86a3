"""Notification reads."""

import uuid
from dataclasses import dataclass

from wallet.notifications.models import NotificationPreference


@dataclass(frozen=True)
class NotificationPreferences:
    """A user's email preferences, as other apps and the API see them."""

    transaction_emails: bool


def notification_preference_get(*, user_id: uuid.UUID) -> NotificationPreferences:
    """The user's preferences; the defaults (every email on) when they never changed them."""
    stored = (
        NotificationPreference.objects.filter(user_id=user_id)
        .values_list("transaction_emails", flat=True)
        .first()
    )
    return NotificationPreferences(transaction_emails=True if stored is None else stored)
