"""Notifications: emails to users about their money and their account, sent exactly once per event.

Other apps record a notification inside the database transaction of the change it reports (the outbox);
this app sends it after commit. Other apps import from here only.
"""

from wallet.notifications.events import EMAIL_CHANGED, REGISTRATION_ATTEMPT
from wallet.notifications.selectors import NotificationPreferences, notification_preference_get
from wallet.notifications.services import (
    EmailSnapshot,
    TransactionFacts,
    email_snapshot_of,
    notification_preference_update,
    notification_record_for_transaction,
    notification_record_password_reset,
    notification_record_security,
)

__all__ = [
    "EMAIL_CHANGED",
    "REGISTRATION_ATTEMPT",
    "EmailSnapshot",
    "NotificationPreferences",
    "TransactionFacts",
    "email_snapshot_of",
    "notification_preference_get",
    "notification_preference_update",
    "notification_record_for_transaction",
    "notification_record_password_reset",
    "notification_record_security",
]
