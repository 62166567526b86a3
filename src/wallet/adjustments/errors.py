"""Errors the corrections flow raises."""

from wallet.core.errors import ApplicationError


class FourEyesError(ApplicationError):
    """Raised when an admin tries to decide their own proposal, or one that moves their own money."""

    code = "four_eyes_required"
    http_status = 403
    default_message = "A different admin must decide this correction."


class NotAnAdminError(ApplicationError):
    code = "admin_required"
    http_status = 403
    default_message = "Only an active admin may propose or decide corrections."


class ProposalNotPendingError(ApplicationError):
    code = "adjustment_not_pending"
    http_status = 409
    default_message = "This correction has already been decided."


class ProposalExpiredError(ApplicationError):
    code = "adjustment_expired"
    http_status = 409
    default_message = "This correction proposal has expired; propose it again if it is still needed."
