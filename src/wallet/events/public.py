"""Events: signed notifications of the wallet's facts for the client's backend, delivered at least once.

Other apps record an event inside the database transaction of the change it reports (the outbox); this
app signs and delivers it after commit, with retries, dead letters and replay. Other apps import from here
only.
"""

from wallet.events.catalogue import EVENT_TYPES
from wallet.events.services import event_record_for_transaction

__all__ = ["EVENT_TYPES", "event_record_for_transaction"]
