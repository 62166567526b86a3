"""The accounts API: one view per operation, each a single call to a service or selector."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from wallet.accounts import four_eyes, selectors, services
from wallet.accounts.errors import (
    FourEyesError,
    InvalidCredentialsError,
    InvalidResetTokenError,
    NotAnAdminError,
    TokenInvalidError,
)
from wallet.accounts.http import serializers as s
from wallet.accounts.lockout import AccountLockedError, AccountLoginRateLimitedError
from wallet.accounts.models import User
from wallet.accounts.permissions import IsAdminRole
from wallet.core.errors import NotFoundError
from wallet.core.http.pagination import NewestFirstCursorPagination
from wallet.core.http.throttling import PerClientIp, PerUser, client_ip, limits
from wallet.notifications import public as notifications


def _validated(serializer_class: type[Any], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _client_ip(request: Request) -> str | None:
    """The client's address, by the rule the rate limits use (TRUSTED_PROXY_COUNT)."""
    return client_ip(request)


class AuthRegisterApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = limits(("register_ip", PerClientIp))

    # One answer whether the email is new or taken, so the endpoint does not tell which emails have accounts.
    ACCEPTED = (
        "If this email can be registered, the account is ready: sign in. Otherwise we have emailed its owner."
    )

    @extend_schema(
        tags=["auth"],
        request=s.CredentialsInputSerializer,
        responses={202: s.RegistrationAcceptedOutputSerializer},
        description=(
            "Creates an account with the user role, or, for an email that already has one, creates nothing "
            "and emails that account's owner. Always 202 with the same body (no account enumeration); sign "
            "in with /auth/token next. A password the validators refuse is a 400 either way."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.CredentialsInputSerializer, request)
        services.user_register(email=data["email"], password=data["password"], ip=_client_ip(request))
        return Response({"message": self.ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class AuthTokenApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    # Per address here; per account only failed logins count (accounts/lockout.py), never a bare request.
    throttle_classes = limits(("login_ip", PerClientIp))
    documented_errors = (InvalidCredentialsError, AccountLockedError)

    @extend_schema(
        tags=["auth"], request=s.CredentialsInputSerializer, responses={200: s.TokenPairOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.CredentialsInputSerializer, request)
        try:
            pair = services.token_pair_obtain(
                email=data["email"], password=data["password"], ip=_client_ip(request)
            )
        except AccountLoginRateLimitedError as exc:  # the API's usual 429 rate_limited, with Retry-After
            raise Throttled(wait=exc.details["retry_after_seconds"]) from exc
        return Response(s.TokenPairOutputSerializer(pair).data)


class AuthTokenRefreshApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = limits(("refresh_ip", PerClientIp))
    documented_errors = (TokenInvalidError,)

    @extend_schema(
        tags=["auth"],
        request=s.RefreshInputSerializer,
        responses={200: s.TokenPairOutputSerializer},
        description="Rotates the refresh token: the one sent is revoked, and reusing it later gives 401.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.RefreshInputSerializer, request)
        pair = services.token_pair_refresh(refresh=data["refresh"])
        return Response(s.TokenPairOutputSerializer(pair).data)


class AuthLogoutApi(APIView):
    # Holding the refresh token is proof enough to revoke it; an expired access token must not block logout.
    authentication_classes = ()
    permission_classes = (AllowAny,)
    documented_errors = (TokenInvalidError,)

    @extend_schema(
        tags=["auth"],
        request=s.RefreshInputSerializer,
        responses={204: OpenApiResponse(description="The refresh token is revoked.")},
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.RefreshInputSerializer, request)
        services.token_revoke(refresh=data["refresh"], ip=_client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuthPasswordResetApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "password_reset"

    # One answer for every email, so the endpoint cannot tell anyone which emails have accounts.
    ACCEPTED = "If an account exists for this email, a password-reset link is on its way."

    @extend_schema(
        tags=["auth"],
        request=s.PasswordResetInputSerializer,
        responses={202: s.PasswordResetAcceptedOutputSerializer},
        description=(
            "Emails a single-use reset link (valid for PASSWORD_RESET_TIMEOUT, one hour by default) if an "
            "active account has this email. Always 202 with the same body. Rate-limited per client."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordResetInputSerializer, request)
        services.password_reset_request(email=data["email"], ip=_client_ip(request))
        return Response({"message": self.ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class AuthPasswordResetConfirmApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "password_reset_confirm"
    documented_errors = (InvalidResetTokenError,)

    @extend_schema(
        tags=["auth"],
        request=s.PasswordResetConfirmInputSerializer,
        responses={204: OpenApiResponse(description="The password is set; every session has ended.")},
        description=(
            "Sets a new password with the token from the reset email. The token then stops working, and "
            "every refresh and access token issued before is revoked: sign in again with the new password."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordResetConfirmInputSerializer, request)
        services.password_reset_confirm(
            token=data["token"], new_password=data["new_password"], ip=_client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(tags=["me"], responses={200: s.UserOutputSerializer})
    def get(self, request: Request) -> Response:
        assert isinstance(request.user, User)  # noqa: S101 - IsAuthenticated guarantees it
        return Response(s.UserOutputSerializer(request.user).data)


class MePasswordApi(APIView):
    # Each attempt runs Argon2 and tests a guess at the current password: bounded per user and per address.
    throttle_classes = limits(("password_change_user", PerUser), ("password_change_ip", PerClientIp))

    @extend_schema(
        tags=["me"],
        request=s.PasswordChangeInputSerializer,
        responses={200: s.TokenPairOutputSerializer},
        description="Changes the password, ends every other session, and returns a fresh token pair.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordChangeInputSerializer, request)
        assert isinstance(request.user, User)  # noqa: S101 - IsAuthenticated guarantees it
        pair = services.user_change_password(
            user=request.user,
            current_password=data["current_password"],
            new_password=data["new_password"],
            ip=_client_ip(request),
        )
        return Response(s.TokenPairOutputSerializer(pair).data)


class MeNotificationsApi(APIView):
    @extend_schema(tags=["me"], responses={200: s.NotificationPreferencesSerializer})
    def get(self, request: Request) -> Response:
        assert isinstance(request.user, User)  # noqa: S101 - IsAuthenticated guarantees it
        preferences = notifications.notification_preference_get(user_id=request.user.id)
        return Response(s.NotificationPreferencesSerializer(preferences).data)

    @extend_schema(
        tags=["me"],
        request=s.NotificationPreferencesUpdateInputSerializer,
        responses={200: s.NotificationPreferencesSerializer},
        description="Turns optional emails on or off. Essential and security emails are always sent.",
    )
    def patch(self, request: Request) -> Response:
        data = _validated(s.NotificationPreferencesUpdateInputSerializer, request)
        assert isinstance(request.user, User)  # noqa: S101 - IsAuthenticated guarantees it
        preferences = notifications.notification_preference_update(
            user_id=request.user.id, now=timezone.now(), **data
        )
        return Response(s.NotificationPreferencesSerializer(preferences).data)


class AdminUserListApi(APIView):
    permission_classes = (IsAdminRole,)
    pagination_class = NewestFirstCursorPagination  # also tells the schema the list is paginated

    @extend_schema(tags=["admin"], responses={200: s.AdminUserOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.user_list(), request, view=self)
        rows = s.AdminUserOutputSerializer(page, many=True).data  # type: ignore[arg-type]
        return paginator.get_paginated_response(rows)


class AdminUserDetailApi(APIView):
    permission_classes = (IsAdminRole,)
    documented_errors = (FourEyesError, NotAnAdminError)

    @extend_schema(tags=["admin"], responses={200: s.AdminUserOutputSerializer})
    def get(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(user_id=user_id)
        if user is None:
            raise NotFoundError()
        return Response(s.AdminUserOutputSerializer(user).data)

    @extend_schema(
        tags=["admin"],
        request=s.AdminUserUpdateInputSerializer,
        responses={
            200: s.AdminUserOutputSerializer,
            202: OpenApiResponse(
                s.AdminUserOutputSerializer,
                description="Admin grant proposed: it waits for a second admin. The role is unchanged.",
            ),
        },
    )
    def patch(self, request: Request, user_id: str) -> Response:
        data = _validated(s.AdminUserUpdateInputSerializer, request)
        assert isinstance(request.user, User)  # noqa: S101 - IsAdminRole guarantees it
        actor, ip = request.user, _client_ip(request)
        role, duty = data.pop("role", None), data.pop("admin_duty", None)
        granting = role == User.Role.ADMIN or (role is None and duty is not None)
        try:
            if granting:
                if data:
                    services.user_update(user_id=user_id, actor=actor, ip=ip, **data)
                outcome = four_eyes.admin_grant_request(
                    user_id=user_id, actor=actor, duty=duty or User.Duty.OPERATIONS, now=timezone.now(), ip=ip
                )
                code = status.HTTP_202_ACCEPTED if outcome.pending else status.HTTP_200_OK
                return Response(s.AdminUserOutputSerializer(outcome.user).data, status=code)
            user = services.user_update(user_id=user_id, actor=actor, ip=ip, role=role, **data)
        except User.DoesNotExist as exc:
            raise NotFoundError() from exc
        return Response(s.AdminUserOutputSerializer(user).data)
