"""Email backends for tests, at the email-backend seam."""

import time
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends import locmem


class SlowLocmemBackend(locmem.EmailBackend):
    """Django's in-memory outbox, taking a while per message, so concurrent senders overlap."""

    delay_seconds = 0.3

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        time.sleep(self.delay_seconds)
        return int(super().send_messages(messages))
