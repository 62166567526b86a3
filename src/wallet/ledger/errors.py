"""Errors the ledger raises."""

from wallet.core.errors import ApplicationError


class InsufficientFundsError(ApplicationError):
    """Raised when a reservation asks for more than the available balance."""

    code = "insufficient_funds"
    http_status = 409
    default_message = "The available balance is too low for this withdrawal."


class UnbalancedJournalError(Exception):
    """A journal whose entries do not sum to zero: a programming error, never shown to a user."""
