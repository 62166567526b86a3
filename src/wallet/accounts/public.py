"""Accounts: who the users are, how they authenticate (JWT), what role and duty they have, and the rule for
four-eyes decisions (four_eyes_check: corrections today, refunds and withdrawal resolutions later).

Other apps import from here only.
"""

from wallet.accounts.errors import FourEyesError, InvalidCredentialsError, NotAnAdminError, TokenInvalidError
from wallet.accounts.four_eyes import admin_duty_check, four_eyes_check
from wallet.accounts.models import User
from wallet.accounts.permissions import IsAdminRole
from wallet.accounts.selectors import user_get

Duty = User.Duty

__all__ = [
    "Duty",
    "FourEyesError",
    "InvalidCredentialsError",
    "IsAdminRole",
    "NotAnAdminError",
    "TokenInvalidError",
    "User",
    "admin_duty_check",
    "four_eyes_check",
    "user_get",
]
