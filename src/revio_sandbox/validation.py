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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        price = item.get("price")
        if price is None:
            problems["price"] = [REQUIRED]
        elif not _is_int(price):
            problems["price"] = ["A valid integer is required."]
        elif price < 1:
            problems["price"] = ["Ensure this value is greater than or equal to 1."]
        quantity = Decimal(1)
        if item.get("quantity") is not None:
            try:
                quantity = Decimal(str(item["quantity"]))
                if quantity <= 0 or not quantity.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                problems["quantity"] = ["A valid number is required."]
        discount = item.get("discount", 0)
        if not _is_int(discount) or discount < 0:
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


def clean_purchase_create(payload: Any, *, brand_id: str) -> dict[str, Any]:
    """Validate a ``POST /purchases/`` body; return the cleaned fields."""
    data = require_object(payload)
    errors: Errors = {}
    out: dict[str, Any] = {}

    if data.get("brand_id") in (None, ""):
        errors["brand_id"] = [REQUIRED]
    elif data["brand_id"] != brand_id:
        errors["brand_id"] = [f'Invalid pk "{data["brand_id"]}" - object does not exist.']

    client_id = data.get("client_id")
    client = data.get("client")
    if client_id is not None:
        try:
            out["client_id"] = str(uuid.UUID(str(client_id)))
        except ValueError:
            errors["client_id"] = ["Must be a valid UUID."]
    if client is None and client_id is None:
        errors["client"] = {"email": [REQUIRED]}
    elif client is not None:
        if not isinstance(client, dict):
            errors["client"] = {"non_field_errors": ["Invalid data. Expected a dictionary."]}
        else:
            client_errors: Errors = {}
            _clean_email(client.get("email"), errors=client_errors, required=client_id is None)
            for key in ("full_name", "phone", "personal_code", "country", "bank_account", "bank_code"):
                _clean_string(client.get(key), limit=256, errors=client_errors, field=key)
            if client_errors:
                errors["client"] = client_errors
            out["client"] = {k: v for k, v in client.items() if isinstance(k, str)}

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
    if total_override is not None and (not _is_int(total_override) or total_override < 1):
        purchase_errors["total_override"] = ["A valid integer is required."]
    out["total_override"] = total_override
    out["notes"] = purchase.get("notes", "") if isinstance(purchase.get("notes", ""), str) else ""
    out["metadata"] = purchase.get("metadata")
    if purchase_errors:
        errors["purchase"] = purchase_errors

    out["reference"] = _clean_string(
        data.get("reference"), limit=REFERENCE_MAX, errors=errors, field="reference"
    )
    for key in ("success_redirect", "failure_redirect", "cancel_redirect", "success_callback"):
        out[key] = _clean_url(data.get(key), errors=errors, field=key)

    due = data.get("due")
    if due is not None and (not _is_int(due) or due < 0):
        errors["due"] = ["A valid integer is required."]
        due = None
    out["due"] = due
    for flag in ("send_receipt", "skip_capture", "force_recurring"):
        out[flag] = bool(data.get(flag, False))

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
            bad = {
                str(i): [f'"{e}" is not a valid choice.']
                for i, e in enumerate(events)
                if e not in known_events
            }
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
