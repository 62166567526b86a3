"""Account writes: registration, tokens (issue, rotate, revoke), password change and roles.

Token mechanics are djangorestframework-simplejwt's; these services add what it leaves to the caller:
rotation that lets exactly one of many concurrent refreshes win, and revocation on password change.
"""

import logging
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from wallet.accounts.errors import EmailTakenError, InvalidCredentialsError, TokenInvalidError
from wallet.accounts.models import User, normalize_email
from wallet.core.errors import ValidationFailedError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def user_register(*, email: str, password: str) -> User:
    """Create an account with the `user` role.

    :raises EmailTakenError: the email (in any letter case) already has an account.
    :raises ValidationFailedError: the password fails the password validators.
    """
    email = normalize_email(email)
    _validate_new_password(password=password, user=User(email=email))
    try:
        with transaction.atomic():
            if User.objects.filter(email=email).exists():
                raise EmailTakenError()
            return User.objects.create_user(email=email, password=password)
    except IntegrityError as exc:  # a concurrent registration of the same email won the race
        raise EmailTakenError() from exc


def token_pair_obtain(*, email: str, password: str) -> TokenPair:
    """Check the credentials and issue an access and a refresh token.

    :raises InvalidCredentialsError: unknown email, wrong password or inactive account (indistinguishable).
    """
    user = authenticate(username=normalize_email(email), password=password)
    if not isinstance(user, User):
        raise InvalidCredentialsError()
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return _token_pair_for(user)


@transaction.atomic
def token_pair_refresh(*, refresh: str) -> TokenPair:
    """Rotate a refresh token: the old one is revoked and a new pair issued.

    The outstanding-token row is locked, so of several concurrent refreshes of one token exactly one
    succeeds; the rest find it revoked.

    :raises TokenInvalidError: the token is malformed, expired, revoked, already rotated, or its user is gone.
    """
    outstanding = _outstanding_token_locked(refresh)
    user = outstanding.user
    token = RefreshToken(refresh, verify=False)  # type: ignore[arg-type]  # it takes the encoded str
    if (
        user is None
        or not user.is_active
        or token.get("hash_password") != get_md5_hash_password(user.password)
    ):
        raise TokenInvalidError()
    BlacklistedToken.objects.create(token=outstanding)
    return _token_pair_for(user)


@transaction.atomic
def token_revoke(*, refresh: str) -> None:
    """Revoke a refresh token (logout). Revoking one already revoked is a no-op.

    :raises TokenInvalidError: the token is malformed or expired.
    """
    try:
        outstanding = _outstanding_token_locked(refresh)
    except _AlreadyRevokedError:
        return
    BlacklistedToken.objects.create(token=outstanding)


@transaction.atomic
def user_change_password(*, user: User, current_password: str, new_password: str) -> TokenPair:
    """Change the password, revoke every refresh token of the user and issue a fresh pair.

    Access tokens carry a hash of the password (CHECK_REVOKE_TOKEN), so those issued before stop working too.

    :raises ValidationFailedError: the current password is wrong or the new one fails the validators.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.check_password(current_password):
        raise ValidationFailedError.for_fields({"current_password": ["The current password is incorrect."]})
    _validate_new_password(password=new_password, user=user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    unrevoked = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in unrevoked], ignore_conflicts=True
    )
    logger.info("password changed for user %s; refresh tokens revoked", user.pk)
    return _token_pair_for(user)


@transaction.atomic
def user_update(*, user_id: str, role: str | None = None, is_active: bool | None = None) -> User:
    """Change a user's role or active flag (an admin action). Deactivating revokes their refresh tokens.

    :raises User.DoesNotExist: no such user.
    """
    user = User.objects.select_for_update().get(pk=user_id)
    changed: list[str] = []
    if role is not None and role != user.role:
        user.role = role
        changed.append("role")
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changed.append("is_active")
    if changed:
        user.save(update_fields=changed)
    if "is_active" in changed and not user.is_active:
        unrevoked = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in unrevoked], ignore_conflicts=True
        )
    return user


class _AlreadyRevokedError(TokenInvalidError):
    pass


def _outstanding_token_locked(raw: str) -> OutstandingToken:
    try:
        # Checks signature, expiry and type; the blacklist check here is repeated below under the lock.
        token = RefreshToken(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        if "blacklisted" in str(exc):
            raise _AlreadyRevokedError() from exc
        raise TokenInvalidError() from exc
    outstanding = (
        OutstandingToken.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(jti=token["jti"])
        .first()
    )
    if outstanding is None:  # every refresh token this service issues is recorded when issued
        raise TokenInvalidError()
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        raise _AlreadyRevokedError()
    return outstanding


def _token_pair_for(user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _validate_new_password(*, password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailedError.for_fields({"password": list(exc.messages)}) from exc
