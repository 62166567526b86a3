"""Fixtures for webhook tests: real RSA signatures, either ours (crafted events) or the sandbox's."""

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import cache

from revio_sandbox.testing import SandboxProcess
from wallet.transactions.tests.conftest import eft, fund  # noqa: F401 - fixtures, used by name


def jsonb(value: Any) -> bytes:
    """Serialise like Revio (PostgreSQL jsonb text): keys by length then bytewise, ', ' and ': '."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return b"{" + b", ".join(json.dumps(k).encode() + b": " + jsonb(v) for k, v in items) + b"}"
    if isinstance(value, list):
        return b"[" + b", ".join(jsonb(v) for v in value) + b"]"
    return json.dumps(value).encode()


@dataclass
class Signer:
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def signer(rsa_key: rsa.RSAPrivateKey, settings: Any, revio: SandboxProcess) -> Signer:
    """Pin our own key as Revio's company key, so tests can sign any event they need."""
    signer = Signer(rsa_key)
    settings.REVIO_PUBLIC_KEY = signer.public_pem
    settings.REVIO_WEBHOOK_PUBLIC_KEY = ""
    settings.REVIO_WEBHOOK_ID = ""
    return signer


@pytest.fixture
def event_body() -> Callable[..., bytes]:
    def make(**fields: Any) -> bytes:
        now = int(time.time())
        event = {
            "id": "3b0f6c2e-8d1a-4f5e-9c77-1a2b3c4d5e6f",
            "type": "purchase",
            "event_type": "purchase.paid",
            "status": "paid",
            "reference": "not-ours",
            "updated_on": now,
            "created_on": now - 60,
        }
        event.update(fields)
        return jsonb(event)

    return make


@dataclass
class RevioWebhook:
    sandbox: SandboxProcess
    webhook_id: str
    url: str


@pytest.fixture
def revio_webhook(revio: SandboxProcess, live_server: Any, settings: Any) -> Iterator[RevioWebhook]:
    """A Revio Webhook object (all events) pointing at this test's live server; keys fetched from Revio.
    EFT_PAYMENT callbacks of the EFT payments API are registered for the live server too."""
    url = f"{live_server.url}/api/v1/webhooks/revio"
    with revio.api_client() as client:
        created = client.post(
            "webhooks/", json={"title": "wallet tests", "all_events": True, "callback": url}
        )
        created.raise_for_status()
        webhook_id = created.json()["id"]
    revio.eft_register_callback(f"{url}/eft")
    settings.PUBLIC_BASE_URL = live_server.url  # success_callback deliveries come here too
    settings.REVIO_WEBHOOK_ID = webhook_id
    settings.REVIO_PUBLIC_KEY = ""
    settings.REVIO_WEBHOOK_PUBLIC_KEY = ""
    cache.clear()
    yield RevioWebhook(sandbox=revio, webhook_id=webhook_id, url=url)
    with revio.api_client() as client:
        client.delete(f"webhooks/{webhook_id}/")
    revio.control.eft_delete_callbacks(url_prefix=live_server.url)
    # success_callback deliveries still in flight would reach the live server while the test database is
    # being emptied (a deadlock with the TRUNCATE): wait until none is pending for this server.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pending = [
            d for d in revio.control.deliveries(status="pending") if d["url"].startswith(live_server.url)
        ]
        if not pending:
            break
        time.sleep(0.1)
    time.sleep(0.2)  # the last answered request's thread finishes its own transaction


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
