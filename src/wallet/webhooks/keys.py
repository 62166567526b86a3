"""Verifying Revio's X-Signature: base64 of an RSA PKCS#1 v1.5 SHA-256 signature over the raw body.

Two keys can sign a delivery (revio-api.md §4): the company key (success_callback deliveries) and our
Webhook object's own key (account-level deliveries). Each is pinned in settings or fetched from Revio and
cached in the shared cache. When verification fails and some key was fetched, the keys are fetched again,
at most once per WEBHOOK_KEY_REFETCH_SECONDS across all processes: a rotation at Revio heals by itself,
and forged requests cannot make us hammer Revio.
"""

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.cache import cache

from wallet.core import metrics
from wallet.core.errors import ServiceUnavailableError
from wallet.revio.public import RevioError, get_client
from wallet.webhooks.errors import SignatureInvalidError, SignatureMissingError

logger = logging.getLogger(__name__)


def _cache_key(kind: str) -> str:
    # Per Revio account and webhook, so changing either never reuses another's keys.
    source = f"{settings.REVIO_BASE_URL}|{settings.REVIO_WEBHOOK_ID}"
    return f"webhooks:revio-keys:{kind}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class NamedKey:
    name: str  # "company" or "webhook"
    pem: str


class KeysUnavailableError(ServiceUnavailableError):
    code = "webhook_keys_unavailable"
    default_message = "Revio's signing keys could not be fetched; the delivery cannot be checked now."


@lru_cache(maxsize=16)
def _load(pem: str) -> rsa.RSAPublicKey:
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Revio's signing key is not an RSA key")
    return key


def _pinned() -> list[NamedKey]:
    keys = []
    if settings.REVIO_PUBLIC_KEY:
        keys.append(NamedKey("company", settings.REVIO_PUBLIC_KEY))
    if settings.REVIO_WEBHOOK_PUBLIC_KEY:
        keys.append(NamedKey("webhook", settings.REVIO_WEBHOOK_PUBLIC_KEY))
    return keys


def _fetchable() -> list[str]:
    names = [] if settings.REVIO_PUBLIC_KEY else ["company"]
    if not settings.REVIO_WEBHOOK_PUBLIC_KEY and settings.REVIO_WEBHOOK_ID:
        names.append("webhook")
    return names


def _fetched(*, refresh: bool) -> list[NamedKey]:
    names = _fetchable()
    if not names:
        return []
    cached = None if refresh else cache.get(_cache_key("pems"))
    if cached is not None:
        return [NamedKey(name, pem) for name, pem in cached]
    client = get_client()
    fetched: list[tuple[str, str]] = []
    try:
        for name in names:
            pem = (
                client.public_key()
                if name == "company"
                else client.webhook_public_key(settings.REVIO_WEBHOOK_ID)
            )
            fetched.append((name, pem))
    except RevioError as exc:
        logger.warning("could not fetch Revio's signing keys: %s", exc)
        raise KeysUnavailableError() from exc
    cache.set(_cache_key("pems"), fetched, timeout=settings.WEBHOOK_KEY_CACHE_SECONDS)
    metrics.increment("webhook_key_fetches")
    return [NamedKey(name, pem) for name, pem in fetched]


def _verifies(key: NamedKey, signature: bytes, body: bytes) -> bool:
    try:
        _load(key.pem).verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_verify(*, body: bytes, header: str | None) -> str:
    """Check the X-Signature header over the raw body; return the name of the key that verified it.

    :raises SignatureMissingError: no header.
    :raises SignatureInvalidError: not base64, or no key verifies it.
    :raises KeysUnavailableError: keys had to be fetched and Revio could not be reached.
    """
    if not header:
        raise SignatureMissingError()
    try:
        signature = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalidError("The X-Signature header is not base64.") from exc
    keys = _pinned() + _fetched(refresh=False)
    for key in keys:
        if _verifies(key, signature, body):
            return key.name
    # A rotation at Revio? Fetch again, but only once per interval whoever asks (cache.add is atomic).
    if _fetchable() and cache.add(
        _cache_key("refetch-gate"), 1, timeout=settings.WEBHOOK_KEY_REFETCH_SECONDS
    ):
        logger.info("webhook signature did not verify; fetching Revio's keys again")
        for key in _fetched(refresh=True):
            if _verifies(key, signature, body):
                return key.name
    raise SignatureInvalidError()
