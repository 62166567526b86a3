"""Errors the accounts services raise, each with its API code and status."""

from wallet.core.errors import ApplicationError


class InvalidCredentialsError(ApplicationError):
    """Raised when an email and password do not match an active account; never says which part failed."""

    code = "invalid_credentials"
    http_status = 401
    default_message = "The email or password is incorrect."


class TokenInvalidError(ApplicationError):
    """Raised for a refresh token that is malformed, expired, revoked or already rotated."""

    code = "token_not_valid"
    http_status = 401
    default_message = "The token is invalid, expired or already used."


class InvalidResetTokenError(ApplicationError):
    """Raised for a reset token that is malformed, expired, already used or not for an active user."""

    code = "invalid_token"
    http_status = 400
    default_message = "The password-reset link is invalid, expired or already used; ask for a new one."


class FourEyesError(ApplicationError):
    """Raised when a decision needs a second admin independent of the proposer, and this one is not."""

    code = "four_eyes_required"
    http_status = 403
    default_message = "A different admin, not nominated by the proposer, must decide this."


class NotAnAdminError(ApplicationError):
    """Raised when the actor is not an active admin with the duty the action needs."""

    code = "admin_required"
    http_status = 403
    default_message = "Only an active admin with the required duty may do this."


class AdminGrantNotPendingError(ApplicationError):
    code = "admin_grant_not_pending"
    http_status = 409
    default_message = "This admin grant has already been decided or has expired."
