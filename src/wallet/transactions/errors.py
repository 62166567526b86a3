"""Errors of deposits and withdrawals, each with its API code."""

from wallet.core.errors import ApplicationError


class IllegalTransitionError(ApplicationError):
    """Raised when a status change is not in the state machine (states.py); nothing was changed."""

    code = "illegal_transition"
    http_status = 409
    default_message = "This transaction cannot move to that status."


class WithdrawalLimitError(ApplicationError):
    """Raised when a withdrawal would break a risk limit (per withdrawal, per day, open at once)."""

    code = "withdrawal_limit_exceeded"
    http_status = 409
    default_message = "This withdrawal is over a limit."


class ProviderMismatchError(ApplicationError):
    """Raised when Revio's object disagrees with ours (amount, currency, reference): flagged for review."""

    code = "provider_mismatch"
    http_status = 409
    default_message = "The payment provider's record does not match ours; an operator will review it."


class DepositNotStartedError(ApplicationError):
    """Revio refused to create the purchase; the deposit is marked failed and nothing can be paid."""

    code = "provider_error"
    http_status = 502
    default_message = "The payment provider refused to start this deposit; nothing was charged."
    created_resource = True


class DepositProviderUnavailableError(DepositNotStartedError):
    code = "provider_unavailable"
    http_status = 503
    default_message = "The payment provider is unavailable; nothing was charged. Try again shortly."


class DepositOutcomeUnknownError(ApplicationError):
    """Revio did not answer in time; the deposit stays pending until reconciliation settles it."""

    code = "provider_timeout"
    http_status = 502
    created_resource = True
    default_message = (
        "The payment provider did not answer in time. The deposit stays pending; nothing is charged "
        "unless it is paid."
    )


class StepUpRequiredError(ApplicationError):
    """A withdrawal to a bank account this user has not withdrawn to before needs their current password
    (issue 17 F10, docs/adr/0017-withdrawal-step-up.md); nothing was reserved."""

    code = "step_up_required"
    http_status = 403
    default_message = "A withdrawal to a new bank account needs your current password in step_up_password."


class StepUpFailedError(ApplicationError):
    """The step-up password was wrong (counted by the login lockout); nothing was reserved."""

    code = "step_up_failed"
    http_status = 403
    default_message = "The password is not correct."
