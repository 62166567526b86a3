"""Accounts: who the users are, how they authenticate (JWT), what role and duty they have, and the rule for
four-eyes decisions (four_eyes_check: corrections today, refunds and withdrawal resolutions later).

Other apps import from here only.
"""

from wallet.accounts.errors import FourEyesError, InvalidCredentialsError, NotAnAdminError, TokenInvalidError
from wallet.accounts.four_eyes import admin_duty_check, four_eyes_check
from wallet.accounts.lockout import AccountLockedError, AccountLoginRateLimitedError
from wallet.accounts.models import User
from wallet.accounts.permissions import IsAdminRole
from wallet.accounts.selectors import user_get

Duty = User.Duty


def credentials_check(*, email: str, password: str, ip: str | None, channel: str) -> User:
    """The login check (lockout, per-account failure limit, password, audit): for step-up re-checks of
    the current password (a withdrawal to a new bank account). Imported when called: the services import
    apps that import this module."""
    from wallet.accounts.services import credentials_check as check

    return check(email=email, password=password, ip=ip, channel=channel)


__all__ = [
    "AccountLockedError",
    "AccountLoginRateLimitedError",
    "Duty",
    "FourEyesError",
    "InvalidCredentialsError",
    "IsAdminRole",
    "NotAnAdminError",
    "TokenInvalidError",
    "User",
    "admin_duty_check",
    "credentials_check",
    "four_eyes_check",
    "user_get",
]
