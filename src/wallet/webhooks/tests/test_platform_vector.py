"""Parity with the platform: our verifier accepts a callback exactly as Revio's platform signed it, and
refuses it with any single byte changed.

The vector (fixtures/signed-callback.*) is the platform's own: a `purchase.created` body of 2,209 bytes, its
X-Signature and the public key that verifies it (RSA 2048, PKCS#1 v1.5, SHA-256 over the raw body), from
CHIP's PHP SDK tests (../shared/revio-platform/README.md). Keys are pinned, so nothing is fetched.
"""

import random
from pathlib import Path
from typing import Any

import pytest

from wallet.webhooks.errors import SignatureInvalidError
from wallet.webhooks.keys import signature_verify

FIXTURES = Path(__file__).parent / "fixtures"
BODY = (FIXTURES / "signed-callback.body.json").read_bytes()
SIGNATURE = (FIXTURES / "signed-callback.signature.b64").read_text().strip()
PUBLIC_KEY = (FIXTURES / "signed-callback.public-key.pem").read_text()
SEED = 20_2026


@pytest.fixture
def platform_key(settings: Any) -> None:
    settings.REVIO_PUBLIC_KEY = PUBLIC_KEY
    settings.REVIO_WEBHOOK_PUBLIC_KEY = ""
    settings.REVIO_WEBHOOK_ID = ""


def test_the_platforms_signed_callback_verifies(platform_key: None) -> None:
    assert len(BODY) == 2_209  # the exact bytes, as the platform sent them: no trailing newline
    assert not BODY.endswith(b"\n")
    assert signature_verify(body=BODY, header=SIGNATURE) == "company"


def test_any_single_byte_changed_is_refused(platform_key: None, report_figure: Any) -> None:
    """Every position, twice: its lowest bit flipped, and replaced by a seeded random other byte."""
    rng = random.Random(SEED)
    refused = 0
    for position in range(len(BODY)):
        original = BODY[position]
        other = rng.choice([value for value in range(256) if value not in (original, original ^ 1)])
        for replacement in (original ^ 1, other):
            mutated = BODY[:position] + bytes([replacement]) + BODY[position + 1 :]
            with pytest.raises(SignatureInvalidError):
                signature_verify(body=mutated, header=SIGNATURE)
            refused += 1
    assert refused == 2 * 2_209
    report_figure(f"platform signed-callback vector: accepted as sent; {refused:,} one-byte changes refused")
