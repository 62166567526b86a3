"""Errors in the platform's shape (revio-platform README fact 4).

Every 4xx body is Django-form style: each key (``__all__`` or a field name) maps to a **list** of
``{"message", "code"}`` objects, as the platform's Java SDK types it (``ApiErrors`` =
``Map<String, List<ApiError>>``). A flat map cannot hold nested objects, so nested request fields are
flattened into dotted keys: ``client.email``, ``purchase.products.0.price`` (the dotted form is the
sandbox's guess; docs/sandbox-guesses.md). Validation code builds the nested shape with plain messages
and ``field_errors`` flattens it here.
"""

from __future__ import annotations

from typing import Any

REQUIRED = "This field is required."
ALL = "__all__"

# Django's codes for the messages the sandbox's validators use; anything else is "invalid".
_CODES = (
    (REQUIRED, "required"),
    ("This field may not be blank.", "blank"),
    ("Ensure this field has no more than", "max_length"),
    ("Ensure this field has at least", "min_length"),
    ("Ensure this value is greater than or equal to", "min_value"),
    ("Ensure this value is less than or equal to", "max_value"),
    ("object does not exist", "does_not_exist"),
    ("is not a valid choice", "invalid_choice"),
    ("Expected a list", "not_a_list"),
)


class ApiError(Exception):
    """An error the API answers with: an HTTP status, a JSON body and optional extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def code_for(message: str) -> str:
    for fragment, code in _CODES:
        if fragment in message:
            return code
    return "invalid"


def flatten_errors(errors: Any, path: str = "") -> dict[str, list[dict[str, str]]]:
    """Turn nested ``{field: [message, ...] | {subfield: ...} | [{...}, ...]}`` into the flat form."""
    flat: dict[str, list[dict[str, str]]] = {}

    def add(key: str, message: str) -> None:
        flat.setdefault(key or ALL, []).append({"message": message, "code": code_for(message)})

    if isinstance(errors, dict):
        for key, value in errors.items():
            # An object-level error of a nested object belongs to the object's own key.
            child = path if key in ("non_field_errors", ALL) else (f"{path}.{key}" if path else str(key))
            for sub_key, items in flatten_errors(value, child).items():
                flat.setdefault(sub_key, []).extend(items)
    elif isinstance(errors, list):
        for index, item in enumerate(errors):
            if isinstance(item, str):
                add(path, item)
            elif item:  # a list of per-item error dicts (products); empty dicts are items without errors
                for sub_key, items in flatten_errors(item, f"{path}.{index}").items():
                    flat.setdefault(sub_key, []).extend(items)
    elif isinstance(errors, str):
        add(path, errors)
    return flat


def general_error(
    message: str, code: str, status: int = 400, headers: dict[str, str] | None = None
) -> ApiError:
    return ApiError(status, {ALL: [{"message": message, "code": code}]}, headers)


def field_errors(errors: dict[str, Any]) -> ApiError:
    return ApiError(400, flatten_errors(errors))


def not_found() -> ApiError:
    return general_error("Not found.", "not_found", status=404)


def unauthorized(message: str) -> ApiError:
    # A Bearer challenge like Django REST framework's TokenAuthentication sends with its 401s.
    return general_error(message, "authentication_failed", status=401, headers={"WWW-Authenticate": "Bearer"})
