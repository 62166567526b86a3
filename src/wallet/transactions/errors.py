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


class DebtOutstandingError(ApplicationError):
    """Raised when a user who owes the wallet money (Balance.debt > 0: a payout clawed back after it was
    refunded, a chargeback) asks to withdraw; nothing changed. A deposit settles the debt first."""

    code = "debt_outstanding"
    http_status = 409
    default_message = "You owe the wallet money; settle it with a deposit before withdrawing."


class ResolutionNotPendingError(ApplicationError):
    """Raised when a withdrawal resolution was already approved or rejected; nothing changed."""

    code = "resolution_not_pending"
    http_status = 409
    default_message = "This resolution has already been decided."


class ResolutionNotApplicableError(ApplicationError):
    """Raised when a withdrawal cannot be resolved by an operator (its outcome is known, it was never sent,
    or Revio's record contradicts the proposal); nothing changed."""

    code = "resolution_not_applicable"
    http_status = 409
    default_message = "This withdrawal cannot be resolved this way."


class RefundNotAllowedError(ApplicationError):
    """Only a credited (completed) deposit can be refunded; nothing changed."""

    code = "refund_not_allowed"
    http_status = 409
    default_message = "Only a completed deposit can be refunded."


class RefundExceedsRefundableError(ApplicationError):
    """The refund would take back more than is left of the deposit (refunds and chargebacks so far)."""

    code = "refund_exceeds_refundable"
    http_status = 409
    default_message = "This refund is more than is left to refund of the deposit."


class RefundNotProposedError(ApplicationError):
    """The refund is not waiting for approval (approved or rejected already, or never needed it)."""

    code = "refund_not_proposed"
    http_status = 409
    default_message = "This refund is not waiting for approval."


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
