"""Account writes: registration, tokens (issue, rotate, revoke), password change and reset, and roles.

Token mechanics are djangorestframework-simplejwt's; these services add what it leaves to the caller:
rotation that lets exactly one of many concurrent refreshes win, and revocation on password change.

Password-reset tokens are Django's PasswordResetTokenGenerator tokens, sent as "<uidb64>.<token>": uidb64 is
the user id, base64url-encoded; token is "<timestamp>-<HMAC>" over the user id, the password hash, the last
login and the email, keyed with SECRET_KEY. A token therefore stops working once the password changes (used
once) and after PASSWORD_RESET_TIMEOUT seconds, and nothing about it is stored on our side.
"""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from wallet.accounts import lockout
from wallet.accounts.errors import (
    FourEyesError,
    InvalidCredentialsError,
    InvalidResetTokenError,
    TokenInvalidError,
)
from wallet.accounts.models import User, normalize_email
from wallet.audit import public as audit
from wallet.core.errors import ValidationFailedError
from wallet.notifications import public as notifications

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def user_register(*, email: str, password: str, ip: str | None = None) -> None:
    """Create an account with the `user` role; for an email that already has one, email its owner instead.

    The caller answers both alike (202, one body), so registration does not tell anyone which emails have
    accounts: both branches hash the password once, and neither says which it took. The owner's notice is
    sent at most once an hour per account, so the endpoint cannot be used to flood their inbox.

    :raises ValidationFailedError: the password fails the password validators (said whatever the email).
    """
    email = normalize_email(email)
    _validate_new_password(password=password, user=User(email=email))
    try:
        with transaction.atomic():
            existing = User.objects.filter(email=email).first()
            if existing is None:
                User.objects.create_user(email=email, password=password)
                return
    except IntegrityError:  # a concurrent registration of the same email won the race
        existing = User.objects.filter(email=email).first()
    make_password(password)  # the hash the other branch computes, so both take about as long
    if existing is not None and cache.add(_registration_notice_key(existing.id), 1, timeout=3600):
        with transaction.atomic():
            notifications.notification_record_security(
                user_id=existing.id, event=notifications.REGISTRATION_ATTEMPT, context={}
            )
        audit.audit_record(
            action=audit.AuditAction.USER_REGISTRATION_REFUSED,
            subject=existing,
            ip=ip,
            details={"email": email},
        )


def _registration_notice_key(user_id: uuid.UUID) -> str:
    return f"registration_notice:{user_id}"


def token_pair_obtain(*, email: str, password: str, ip: str | None = None) -> TokenPair:
    """Check the credentials and issue an access and a refresh token. Both outcomes are audited.

    :raises InvalidCredentialsError: unknown email, wrong password or inactive account (indistinguishable).
    :raises AccountLockedError: too many failures for this account from this address (lockout.py).
    :raises AccountLoginRateLimitedError: too many failures for this account from anywhere (lockout.py).
    """
    user = credentials_check(email=email, password=password, ip=ip, channel="api")
    return _token_pair_for(user)


def credentials_check(
    *, email: str, password: str, ip: str | None, channel: str, require_admin: bool = False
) -> User:
    """The one login check, for the API and the console alike: lockout and per-account failure limit first
    (before any password hash is computed), then the password; both outcomes and any lockout audited.

    With `require_admin` (the console) a non-admin's right password counts as a failure, indistinguishably.

    :raises InvalidCredentialsError, AccountLockedError, AccountLoginRateLimitedError: see token_pair_obtain.
    """
    email = normalize_email(email)
    lockout.lockout_check(email=email, ip=ip)
    lockout.account_failures_check(email=email)
    user = authenticate(username=email, password=password)
    if not isinstance(user, User) or (require_admin and not user.is_staff):
        audit.audit_record(
            action=audit.AuditAction.LOGIN_FAILED,
            ip=ip,
            details={"email": email, **({"channel": channel} if channel != "api" else {})},
        )
        pair_locked = lockout.lockout_record_failure(email=email, ip=ip)
        account_limited = lockout.account_failure_record(email=email)
        if pair_locked or account_limited:
            audit.audit_record(
                action=audit.AuditAction.LOGIN_LOCKED_OUT,
                ip=ip,
                details={
                    "email": email,
                    "channel": channel,
                    # the pair (account and address) is locked for minutes; the account alone for the window
                    "scope": "account_and_address" if pair_locked else "account",
                    "lockout_minutes": settings.LOGIN_LOCKOUT_MINUTES,
                    "account_limit": settings.RATE_LIMITS.get("login_account"),
                },
            )
        raise InvalidCredentialsError()
    lockout.lockout_clear(email=email, ip=ip)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    audit.audit_record(
        action=audit.AuditAction.LOGIN_SUCCEEDED,
        actor=user,
        subject=user,
        ip=ip,
        details={"channel": channel} if channel != "api" else None,
    )
    return user


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
def token_revoke(*, refresh: str, ip: str | None = None) -> None:
    """Revoke a refresh token (logout). Revoking one already revoked is a no-op.

    :raises TokenInvalidError: the token is malformed or expired.
    """
    try:
        outstanding = _outstanding_token_locked(refresh)
    except _AlreadyRevokedError:
        return
    BlacklistedToken.objects.create(token=outstanding)
    audit.audit_record(
        action=audit.AuditAction.LOGOUT, actor=outstanding.user, subject=outstanding.user, ip=ip
    )


@transaction.atomic
def user_change_password(
    *, user: User, current_password: str, new_password: str, ip: str | None = None
) -> TokenPair:
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
    _revoke_refresh_tokens(user)
    audit.audit_record(action=audit.AuditAction.PASSWORD_CHANGED, actor=user, subject=user, ip=ip)
    logger.info("password changed for user %s; refresh tokens revoked", user.pk)
    return _token_pair_for(user)


def password_reset_request(*, email: str, ip: str | None = None) -> None:
    """Queue the password-reset work for this email; the request itself does the same work for every email.

    Which emails have accounts must not show in the answer nor in its timing, so the request path only
    enqueues (on commit) a task that looks the account up and, for an active one, records the emailed link
    (password_reset_prepare).
    """
    email = normalize_email(email)

    def enqueue_password_reset() -> None:  # a named function: Django logs its name if it fails
        from wallet.accounts.tasks import password_reset_prepare_task

        password_reset_prepare_task.delay(email=email, ip=ip)

    transaction.on_commit(enqueue_password_reset, robust=True)


def password_reset_prepare(*, email: str, ip: str | None = None) -> None:
    """Email a single-use, time-limited password-reset link if an active account has this email (a task).

    For an unknown or inactive email, or an account without a usable password, nothing is sent. The email
    goes through the notifications outbox: recorded here, sent after commit.
    """
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    audit.audit_record(
        action=audit.AuditAction.PASSWORD_RESET_REQUESTED,
        subject=user,
        ip=ip,
        details={"email": normalize_email(email), "account_found": user is not None},
    )
    if user is None or not user.has_usable_password():
        logger.info("password reset requested for no active account")
        return
    token = password_reset_token_make(user=user)
    reset_url = settings.FRONTEND_URL.rstrip("/") + f"/reset-password?token={token}"
    with transaction.atomic():
        notifications.notification_record_password_reset(user_id=user.id, reset_url=reset_url)
    logger.info("password reset link recorded for user %s", user.pk)


def password_reset_token_make(*, user: User) -> str:
    """The "<uidb64>.<token>" string a reset link carries (see the module docstring)."""
    return f"{urlsafe_base64_encode(force_bytes(user.pk))}.{default_token_generator.make_token(user)}"


@transaction.atomic
def password_reset_confirm(*, token: str, new_password: str, ip: str | None = None) -> None:
    """Set a new password with a reset token, and revoke every refresh token of the user.

    Access tokens carry a hash of the password, so those issued before stop working too. The token stops
    working with the password change; a new password that fails the validators leaves it usable.

    :raises InvalidResetTokenError: the token is malformed, expired, already used or its user inactive.
    :raises ValidationFailedError: the new password fails the password validators.
    """
    user = _user_for_reset_token(token)
    _validate_new_password(password=new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    _revoke_refresh_tokens(user)
    audit.audit_record(action=audit.AuditAction.PASSWORD_RESET_COMPLETED, actor=user, subject=user, ip=ip)
    logger.info("password reset for user %s; refresh tokens revoked", user.pk)


@transaction.atomic
def user_update(
    *,
    user_id: str,
    role: str | None = None,
    is_active: bool | None = None,
    email: str | None = None,
    actor: User | None = None,
    ip: str | None = None,
) -> User:
    """Change a user's email, role or active flag (audited admin actions).

    Taking the admin role away is one admin's decision; giving it is not (four_eyes.admin_grant_request).
    Deactivating revokes the user's tokens. Changing the email revokes them too and tells the old address,
    so an admin cannot quietly point an account at a mailbox they read and reset its password.

    :raises User.DoesNotExist: no such user.
    :raises FourEyesError: the change would make the user an admin.
    :raises ValidationFailedError: the new email is invalid or belongs to another account.
    """
    user = User.objects.select_for_update().get(pk=user_id)
    changed: list[str] = []
    revoke = False
    if role is not None and role != user.role:
        if role == User.Role.ADMIN:
            raise FourEyesError("Granting the admin role needs a second admin's approval (an admin grant).")
        audit.audit_record(
            action=audit.AuditAction.USER_ROLE_CHANGED,
            actor=actor,
            subject=user,
            ip=ip,
            details={"email": user.email, "from": user.role, "to": role},
        )
        user.role = role
        user.admin_duty = User.Duty.OPERATIONS
        changed += ["role", "admin_duty"]
        revoke = True  # an admin session must not outlive the role
    if is_active is not None and is_active != user.is_active:
        audit.audit_record(
            action=audit.AuditAction.USER_ACTIVE_CHANGED,
            actor=actor,
            subject=user,
            ip=ip,
            details={"email": user.email, "from": user.is_active, "to": is_active},
        )
        user.is_active = is_active
        changed.append("is_active")
        revoke = revoke or not is_active
    if email is not None and normalize_email(email) != user.email:
        new_email = normalize_email(email)
        if User.objects.filter(email=new_email).exclude(pk=user.pk).exists():
            raise ValidationFailedError.for_fields({"email": ["Another account has this email."]})
        old_email = user.email
        audit.audit_record(
            action=audit.AuditAction.USER_EMAIL_CHANGED,
            actor=actor,
            subject=user,
            ip=ip,
            details={"from": old_email, "to": new_email},
        )
        # Sent to the old address (the outbox would otherwise use the current, new one).
        notifications.notification_record_security(
            user_id=user.id,
            event=notifications.EMAIL_CHANGED,
            context={"to": old_email, "new_email": new_email},
        )
        user.email = new_email
        changed.append("email")
        revoke = True
    if changed:
        try:
            with transaction.atomic():
                user.save(update_fields=changed)
        except IntegrityError as exc:  # the email was taken concurrently
            raise ValidationFailedError.for_fields({"email": ["Another account has this email."]}) from exc
    if revoke:
        _revoke_refresh_tokens(user)
    return user


@transaction.atomic
def user_create_by_admin(*, email: str, is_active: bool, actor: User, ip: str | None = None) -> User:
    """Create a user from the console: role `user`, no usable password (they set one through a reset that
    they request themselves), audited. The admin role is then granted with four eyes like any other.

    :raises ValidationFailedError: another account has this email.
    """
    email = normalize_email(email)
    if User.objects.filter(email=email).exists():
        raise ValidationFailedError.for_fields({"email": ["Another account has this email."]})
    user = User(email=email, role=User.Role.USER, is_active=is_active)
    user.set_unusable_password()
    user.save(force_insert=True)
    audit.audit_record(
        action=audit.AuditAction.USER_CREATED,
        actor=actor,
        subject=user,
        ip=ip,
        details={"email": email, "role": user.role, "is_active": is_active, "channel": "admin"},
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


def _revoke_refresh_tokens(user: User) -> None:
    """Blacklist every refresh token of the user still outstanding; the caller owns the transaction."""
    unrevoked = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in unrevoked], ignore_conflicts=True
    )


def _user_for_reset_token(raw: str) -> User:
    """The active user a reset token is for, row-locked, so two uses of one token cannot both succeed."""
    uidb64, _, token = raw.partition(".")
    try:
        user_id = uuid.UUID(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidResetTokenError() from exc
    user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
    # Checked under the lock: a concurrent use of the same token has changed the password by now.
    if user is None or not default_token_generator.check_token(user, token):
        raise InvalidResetTokenError()
    return user


def _token_pair_for(user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _validate_new_password(*, password: str, user: User, field: str = "password") -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailedError.for_fields({field: list(exc.messages)}) from exc
