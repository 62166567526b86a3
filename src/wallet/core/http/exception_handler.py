"""DRF's exception handler, rewritten so every error has the shape {"error": {code, message, details}}."""

import logging
from typing import Any

import sentry_sdk
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework_simplejwt.exceptions import InvalidToken

from wallet.core.errors import ApplicationError
from wallet.core.http.responses import error_body

logger = logging.getLogger(__name__)

# DRF's own codes, renamed where the default says less than it could; the message is ours, one sentence.
_DRF_ERRORS: dict[type[drf_exceptions.APIException], tuple[str, str]] = {
    drf_exceptions.ParseError: ("malformed_json", "The request body is not valid JSON."),
    drf_exceptions.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    drf_exceptions.AuthenticationFailed: ("authentication_failed", "The credentials are not valid."),
    drf_exceptions.PermissionDenied: ("permission_denied", "You do not have permission to do this."),
    drf_exceptions.NotFound: ("not_found", "Not found."),
    drf_exceptions.MethodNotAllowed: ("method_not_allowed", "This method is not allowed here."),
    drf_exceptions.NotAcceptable: ("not_acceptable", "This API answers only in JSON."),
    drf_exceptions.UnsupportedMediaType: (
        "unsupported_media_type",
        "Send the request body as JSON (Content-Type: application/json).",
    ),
    drf_exceptions.Throttled: ("rate_limited", "Too many requests; slow down and retry later."),
}


def _plain(detail: Any) -> Any:
    """ErrorDetail objects (and nested lists/dicts of them) as plain JSON values."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(item) for item in detail]
    return str(detail)


def _validation_details(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {"fields": _plain(detail)}
    return {"fields": {"non_field_errors": _plain(detail if isinstance(detail, list) else [detail])}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)

    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = drf_exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    # DRF's handler sets the headers that matter (WWW-Authenticate, Retry-After, Allow).
    response = drf_exception_handler(exc, context)
    if response is None:
        # Unanticipated: a bug. Report it with its traceback and tell the caller nothing internal.
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        sentry_sdk.capture_exception(exc)
        return Response(
            error_body("internal_error", "Something went wrong on our side; it has been reported."),
            status=500,
        )

    assert isinstance(exc, drf_exceptions.APIException)  # noqa: S101 - DRF answered, so it is one
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = error_body(
            "validation_error", "The request has invalid fields.", _validation_details(exc.detail)
        )
    elif isinstance(exc, InvalidToken):
        response.data = error_body("token_not_valid", "The token is invalid or has expired.")
    else:
        code, message = _code_and_message(exc)
        details: dict[str, Any] = {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
            details["retry_after_seconds"] = int(wait + 0.999)
        response.data = error_body(code, message, details)
    return response


def _code_and_message(exc: drf_exceptions.APIException) -> tuple[str, str]:
    for exc_class in type(exc).__mro__:
        if exc_class in _DRF_ERRORS:
            code, message = _DRF_ERRORS[exc_class]
            # simplejwt's errors carry precise codes (user_inactive, password_changed) in a detail dict.
            if isinstance(exc.detail, dict) and "code" in exc.detail:
                code = str(exc.detail["code"])
                message = str(exc.detail.get("detail", message))
            return code, message
    detail = exc.detail if isinstance(exc.detail, str) else "The request could not be completed."
    return str(exc.default_code), str(detail)
