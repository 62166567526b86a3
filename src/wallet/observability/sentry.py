"""Sentry's before_send: bank details and credentials never leave the process.

Scrubs, anywhere in the event (request headers, bodies, query strings, cookies, local variables of stack
frames, breadcrumbs, extra data): values under sensitive keys (Authorization, X-Signature, cookies,
access/refresh tokens, passwords, API keys, account numbers), and anything in free text that looks like a
bearer token, a JWT or a bank account number.
"""

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentry_sdk.types import Event

FILTERED = "[Filtered]"

SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "http_authorization",
        "x-signature",
        "http_x_signature",
        "cookie",
        "http_cookie",
        "set-cookie",
        "access",
        "refresh",
        "token",
        "access_token",
        "refresh_token",
        "password",
        "current_password",
        "new_password",
        "api_key",
        "secret",
        "account_number",
        "account_number_encrypted",
        "bank_account",
        "signing_key",
    }
)
_KEY_FRAGMENTS = ("password", "secret", "token", "signature", "account_number", "api_key", "authorization")

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
# Bank account numbers: runs of 6 to 17 digits (South African accounts can be as short as 6), not part of
# a longer number or a UUID's hex run. Some amounts and branch codes are filtered too; that is the price.
_ACCOUNT_NUMBER = re.compile(r"(?<![\w-])\d{6,17}(?![\w-])")
_QUERY_SECRET = re.compile(r"(?i)((?:token|refresh|access|account_?number|signature)=)[^&\s]+")
# Keys compared without case, "_" or "-": accountNumber (Revio's EFT API), account-number and
# ACCOUNT_NUMBER are one key.
_NORMALISED_KEYS = frozenset(key.replace("_", "").replace("-", "") for key in SENSITIVE_KEYS)
_NORMALISED_FRAGMENTS = tuple(fragment.replace("_", "") for fragment in _KEY_FRAGMENTS)


def _sensitive(key: object) -> bool:
    name = str(key).lower().replace("_", "").replace("-", "")
    return name in _NORMALISED_KEYS or any(fragment in name for fragment in _NORMALISED_FRAGMENTS)


def scrub_text(text: str) -> str:
    text = _JWT.sub(FILTERED, text)
    text = _BEARER.sub(r"\1 " + FILTERED, text)
    text = _QUERY_SECRET.sub(r"\1" + FILTERED, text)
    return _ACCOUNT_NUMBER.sub(FILTERED, text)


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: FILTERED if _sensitive(key) else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        # Header lists in Sentry events are [name, value] pairs.
        if len(value) == 2 and isinstance(value[0], str) and _sensitive(value[0]):
            return [value[0], FILTERED]
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def before_send(event: "Event", hint: dict[str, Any]) -> "Event":
    """Sentry hook for errors and transactions: returns the event with secrets replaced."""
    scrubbed: Event = scrub(event)
    return scrubbed


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub(crumb)
    return scrubbed
