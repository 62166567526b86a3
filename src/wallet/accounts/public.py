"""Accounts: who the users are, how they authenticate (JWT) and what role they have.

Other apps import from here only.
"""

from wallet.accounts.errors import EmailTakenError, InvalidCredentialsError, TokenInvalidError
from wallet.accounts.http.permissions import IsAdminRole
from wallet.accounts.selectors import user_get

__all__ = ["EmailTakenError", "InvalidCredentialsError", "IsAdminRole", "TokenInvalidError", "user_get"]
