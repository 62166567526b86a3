"""The signature scheme (docs/events.md): HMAC-SHA256 over "<timestamp>.<raw body>" with the secret.

    Wallet-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]

One v1 per secret that currently signs: the newest, and during a rotation's grace period the previous one
too, so a receiver verifying with either secret accepts the delivery.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Wallet-Signature"
EVENT_ID_HEADER = "Wallet-Event-Id"
EVENT_TYPE_HEADER = "Wallet-Event-Type"
SECRET_PREFIX = "whsec_"


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, secrets_in_use: list[str], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={signature(secret=s, timestamp=timestamp, body=body)}" for s in secrets_in_use)
    return ",".join(parts)
