"""Request validation for the API subset, producing Revio-style per-field errors.

Each ``clean_*`` function returns normalised data or raises ``ApiError`` (400) whose body nests errors
under the field names the request used, as Django REST framework does.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from revio_sandbox.errors import REQUIRED, ApiError, field_errors, general_error

Errors = dict[str, Any]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DIGITS = re.compile(r"^[0-9]+$")

URL_MAX = 500
REFERENCE_MAX = 128
TITLE_MAX = 100


def _max_length(limit: int) -> str:
    return f"Ensure this field has no more than {limit} characters."


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise general_error("Invalid data. Expected a dictionary.", "invalid")
    return payload


def _clean_string(
    value: Any, *, limit: int, errors: Errors, field: str, required: bool = False
) -> str | None:
    if value is None or value == "":
        if required:
            errors[field] = [REQUIRED if value is None else "This field may not be blank."]
        return None
    if not isinstance(value, str):
        errors[field] = ["Not a valid string."]
        return None
    if len(value) > limit:
        errors[field] = [_max_length(limit)]
        return None
    return value


def _clean_url(value: Any, *, errors: Errors, field: str) -> str | None:
    text = _clean_string(value, limit=URL_MAX, errors=errors, field=field)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors[field] = ["Enter a valid URL."]
        return None
    return text


def _clean_email(value: Any, *, errors: Errors, required: bool) -> str | None:
    text = _clean_string(value, limit=254, errors=errors, field="email", required=required)
    if text is not None and not _EMAIL.match(text):
        errors["email"] = ["Enter a valid email address."]
        return None
    return text


def _clean_currency(value: Any, *, errors: Errors) -> str:
    if value is None:
        return "ZAR"  # the brand's default currency in the sandbox
    if not isinstance(value, str) or not _CURRENCY.match(value):
        errors["currency"] = ['Currency must be an ISO 4217 code such as "ZAR".']
        return "ZAR"
    return value


def whole_number(value: Any) -> int | None:
    """An integer, or a float with a zero fraction (the platform's own plugin sends ``2000.0``,
    revio-platform README fact 5); anything else (bool, ``150.5``, ``"150"``) is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _clean_products(value: Any, errors: Errors) -> list[dict[str, Any]]:
    if value is None:
        errors["products"] = [REQUIRED]
        return []
    if not isinstance(value, list):
        errors["products"] = ['Expected a list of items but got type "%s".' % type(value).__name__]  # noqa: UP031
        return []
    if not value:
        errors["products"] = ["Ensure this field has at least 1 elements."]
        return []
    cleaned: list[dict[str, Any]] = []
    item_errors: list[Errors] = []
    for item in value:
        problems: Errors = {}
        if not isinstance(item, dict):
            item_errors.append({"non_field_errors": ["Invalid data. Expected a dictionary."]})
            continue
        name = _clean_string(item.get("name"), limit=256, errors=problems, field="name", required=True)
        price = whole_number(item.get("price"))
        if item.get("price") is None:
            problems["price"] = [REQUIRED]
        elif price is None:
            problems["price"] = ["A valid integer is required."]
        elif price < 0:
            problems["price"] = ["Ensure this value is greater than or equal to 0."]
        quantity = Decimal(1)
        if item.get("quantity") is not None:
            try:
                quantity = Decimal(str(item["quantity"]))
                if quantity <= 0 or not quantity.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                problems["quantity"] = ["A valid number is required."]
        discount = whole_number(item.get("discount", 0))
        if discount is None or discount < 0:
            problems["discount"] = ["A valid integer is required."]
        item_errors.append(problems)
        if not problems:
            cleaned.append(
                {
                    "name": name,
                    "price": price,
                    "quantity": f"{quantity:.4f}",
                    "discount": discount,
                    "tax_percent": str(item.get("tax_percent", "0.00")),
                    "category": str(item.get("category", "")),
                }
            )
    if any(item_errors):
        errors["products"] = item_errors
    return cleaned


def products_total(products: list[dict[str, Any]]) -> int:
    """Sum price x quantity - discount over the products, rounded half-up to whole minor units."""
    total = Decimal(0)
    for product in products:
        total += Decimal(product["price"]) * Decimal(product["quantity"]) - Decimal(product["discount"])
    return int(total.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


# Purchase fields echoed as sent, with the defaults the platform's signed fixture shows
# (../shared/revio-platform/signed-callback.body.json).
PURCHASE_ECHO_DEFAULTS: dict[str, Any] = {
    "language": "en",
    "timezone": "UTC",
    "notes": "",
    "email_message": "",
}
TOP_ECHO_DEFAULTS: dict[str, Any] = {"platform": "api", "creator_agent": ""}
CLIENT_FULL_NAME_MAX = 128  # revio-platform README fact 5


def _clean_client(data: dict[str, Any], errors: Errors, out: dict[str, Any]) -> None:
    """``client.email`` or ``client_id``: one is required, not both (README fact 5)."""
    client_id, client = data.get("client_id"), data.get("client")
    if client_id is not None:
        try:
            out["client_id"] = str(uuid.UUID(str(client_id)))
        except ValueError:
            errors["client_id"] = ["Must be a valid UUID."]
    if client is not None and not isinstance(client, dict):
        errors["client"] = {"non_field_errors": ["Invalid data. Expected a dictionary."]}
        return
    client = client or {}
    has_email = client.get("email") not in (None, "")
    if client_id is not None and has_email:
        errors["non_field_errors"] = ["Give either client.email or client_id, not both."]
    client_errors: Errors = {}
    _clean_email(client.get("email"), errors=client_errors, required=client_id is None)
    _clean_string(
        client.get("full_name"), limit=CLIENT_FULL_NAME_MAX, errors=client_errors, field="full_name"
    )
    for key in ("phone", "personal_code", "country", "bank_account", "bank_code"):
        _clean_string(client.get(key), limit=256, errors=client_errors, field=key)
    if client_errors:
        errors["client"] = client_errors
    out["client"] = {k: v for k, v in client.items() if isinstance(k, str)}


def _echo(source: dict[str, Any], defaults: dict[str, Any], errors: Errors) -> dict[str, Any]:
    echoed: dict[str, Any] = {}
    for key, default in defaults.items():
        value = source.get(key, default)
        if value is None:
            value = default
        if not isinstance(value, str):
            errors[key] = ["Not a valid string."]
            continue
        echoed[key] = value
    return echoed


def clean_purchase_create(payload: Any, *, brand_id: str) -> dict[str, Any]:
    """Validate a ``POST /purchases/`` body; return the cleaned fields. Unknown fields are ignored."""
    data = require_object(payload)
    errors: Errors = {}
    out: dict[str, Any] = {}

    if data.get("brand_id") in (None, ""):
        errors["brand_id"] = [REQUIRED]
    elif data["brand_id"] != brand_id:
        errors["brand_id"] = [f'Invalid pk "{data["brand_id"]}" - object does not exist.']
    _clean_client(data, errors, out)

    purchase = data.get("purchase")
    purchase_errors: Errors = {}
    if purchase is None:
        purchase_errors["products"] = [REQUIRED]
        purchase = {}
    elif not isinstance(purchase, dict):
        errors["purchase"] = {"non_field_errors": ["Invalid data. Expected a dictionary."]}
        purchase = {}
    out["currency"] = _clean_currency(purchase.get("currency"), errors=purchase_errors)
    if "products" in purchase or not purchase_errors:
        out["products"] = _clean_products(purchase.get("products"), purchase_errors)
    total_override = purchase.get("total_override")
    if total_override is not None:
        total_override = whole_number(total_override)
        if total_override is None or total_override < 0:
            purchase_errors["total_override"] = ["A valid integer is required."]
    out["total_override"] = total_override
    due_strict = purchase.get("due_strict", False)
    if not isinstance(due_strict, bool):
        purchase_errors["due_strict"] = ["Must be a valid boolean."]
    out["due_strict"] = due_strict is True  # README fact 2: defaults to false
    out["purchase_echo"] = _echo(purchase, PURCHASE_ECHO_DEFAULTS, purchase_errors)
    if purchase_errors:
        errors["purchase"] = purchase_errors

    reference = data.get("reference")
    if whole_number(reference) is not None and not isinstance(reference, float):
        reference = str(reference)  # an integer reference is accepted (README fact 5), stored as text
    out["reference"] = _clean_string(reference, limit=REFERENCE_MAX, errors=errors, field="reference")
    for key in ("success_redirect", "failure_redirect", "cancel_redirect", "success_callback"):
        out[key] = _clean_url(data.get(key), errors=errors, field=key)

    due = data.get("due")
    if due is not None:
        due = whole_number(due)
        if due is None or due < 0:
            errors["due"] = ["A valid integer is required."]
            due = None
    out["due"] = due
    for flag in ("send_receipt", "skip_capture", "force_recurring"):
        out[flag] = bool(data.get(flag, False))
    out["top_echo"] = _echo(data, TOP_ECHO_DEFAULTS, errors)

    if errors:
        raise field_errors(errors)
    return out


def clean_webhook(payload: Any, *, partial: bool, known_events: frozenset[str]) -> dict[str, Any]:
    """Validate a Webhook create (``partial=False``) or PATCH (``partial=True``) body."""
    data = require_object(payload)
    errors: Errors = {}
    out: dict[str, Any] = {}
    if "title" in data or not partial:
        out["title"] = _clean_string(
            data.get("title"), limit=TITLE_MAX, errors=errors, field="title", required=True
        )
    if "callback" in data or not partial:
        if data.get("callback") in (None, ""):
            errors["callback"] = [REQUIRED]
        else:
            out["callback"] = _clean_url(data.get("callback"), errors=errors, field="callback")
    if "all_events" in data:
        if not isinstance(data["all_events"], bool):
            errors["all_events"] = ["Must be a valid boolean."]
        else:
            out["all_events"] = data["all_events"]
    if "events" in data:
        events = data["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            errors["events"] = ["Expected a list of event names."]
        else:
            bad = [f'"{e}" is not a valid choice.' for e in events if e not in known_events]
            if bad:
                errors["events"] = bad
            else:
                out["events"] = list(dict.fromkeys(events))
    if not partial and not out.get("all_events") and not out.get("events") and "events" not in errors:
        errors["events"] = ["Choose at least one event or set all_events to true."]
    if errors:
        raise field_errors(errors)
    return out


__all__ = ["ApiError", "clean_purchase_create", "clean_webhook", "products_total"]
