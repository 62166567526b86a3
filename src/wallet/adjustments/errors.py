"""Errors the corrections flow raises."""

from wallet.accounts import public as accounts
from wallet.core.errors import ApplicationError

# The four-eyes rule and its errors are accounts' (accounts.public.four_eyes_check), shared by every app that
# needs a second admin; re-exported so callers of this app keep catching them from here.
FourEyesError = accounts.FourEyesError
NotAnAdminError = accounts.NotAnAdminError


class ProposalNotPendingError(ApplicationError):
    code = "adjustment_not_pending"
    http_status = 409
    default_message = "This correction has already been decided."


class ProposalExpiredError(ApplicationError):
    code = "adjustment_expired"
    http_status = 409
    default_message = "This correction proposal has expired; propose it again if it is still needed."
