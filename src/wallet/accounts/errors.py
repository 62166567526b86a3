"""Errors the accounts services raise, each with its API code and status."""

from wallet.core.errors import ApplicationError


class EmailTakenError(ApplicationError):
    """Raised when registering an email that already has an account (in any letter case)."""

    code = "email_taken"
    http_status = 409
    default_message = "An account with this email already exists."


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
