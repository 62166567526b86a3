"""JWT authentication for the API: simplejwt's checks, with the user read by a fixed statement."""

import uuid
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from wallet.accounts.selectors import user_get_for_token


# simplejwt's own AuthenticationFailed (not DRF's): its body carries the code the API reports, e.g.
# password_changed.
class WalletJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication (signature, expiry, token type) with the same user checks: the user
    exists, is active, and its password has not changed since the token was issued (CHECK_REVOKE_TOKEN).

    Only the read differs: it runs on every authenticated request, so it comes from the cache when it can
    (accounts.selectors.user_get_for_token), and the revoke claim is compared with the cached fingerprint
    of the password hash.
    """

    def get_user(self, validated_token: Token) -> Any:
        try:
            user_id = uuid.UUID(str(validated_token[api_settings.USER_ID_CLAIM]))
        except (KeyError, ValueError) as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        found = user_get_for_token(user_id=user_id)
        if found is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        user, password_fingerprint = found
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if (
            api_settings.CHECK_REVOKE_TOKEN
            and validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) != password_fingerprint
        ):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        return user


class WalletJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of WalletJWTAuthentication: simplejwt's bearer scheme (jwtAuth)."""

    target_class = "wallet.accounts.http.authentication.WalletJWTAuthentication"
