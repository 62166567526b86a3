"""Revio-style API errors.

General errors are ``{"__all__": [{"message": ..., "code": ...}]}``; field errors are keyed by field
name, Django-REST style (``{"client": {"email": ["This field is required."]}}``).
"""

from __future__ import annotations

from typing import Any

REQUIRED = "This field is required."


class ApiError(Exception):
    """An error the API answers with: an HTTP status, a JSON body and optional extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def general_error(
    message: str, code: str, status: int = 400, headers: dict[str, str] | None = None
) -> ApiError:
    return ApiError(status, {"__all__": [{"message": message, "code": code}]}, headers)


def field_errors(errors: dict[str, Any]) -> ApiError:
    return ApiError(400, errors)


def not_found() -> ApiError:
    return general_error("Not found.", "not_found", status=404)


def unauthorized(message: str) -> ApiError:
    # A Bearer challenge like Django REST framework's TokenAuthentication sends with its 401s.
    return general_error(message, "authentication_failed", status=401, headers={"WWW-Authenticate": "Bearer"})
