"""Serialiser and signature parity with the platform's own signed callback (revio-platform README,
"Test vectors"): the sandbox writes the exact bytes the platform sent, and its signatures verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from revio_sandbox import jsonb, keys
from revio_sandbox.tests.support import signature_valid

VECTORS = Path(__file__).resolve().parent / "vectors"
BODY = (VECTORS / "signed-callback.body.json").read_bytes()
SIGNATURE = (VECTORS / "signed-callback.signature.b64").read_text().strip()
PUBLIC_KEY = (VECTORS / "signed-callback.public-key.pem").read_text()


def test_the_vector_is_what_the_readme_describes() -> None:
    assert len(BODY) == 2209
    assert not BODY.endswith(b"\n")


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_the_event_serialiser_reproduces_the_platforms_bytes() -> None:
    parsed = json.loads(BODY)
    assert jsonb.dumps_bytes(parsed) == BODY
    # Whatever order the sandbox builds an object in, the bytes come out in jsonb's order.
    assert jsonb.dumps_bytes(_reversed_keys(parsed)) == BODY


def test_other_serialisers_do_not() -> None:
    # Why the order matters: sorted or compact JSON gives other bytes, so a signature over them fails.
    parsed = json.loads(BODY)
    assert json.dumps(parsed, sort_keys=True).encode() != BODY
    assert json.dumps(parsed, separators=(",", ":")).encode() != BODY
    assert json.dumps(_reversed_keys(parsed)).encode() != BODY


def test_the_platforms_signature_verifies_and_any_changed_byte_fails() -> None:
    assert signature_valid(PUBLIC_KEY, SIGNATURE, BODY)
    for position in (0, 1, len(BODY) // 2, len(BODY) - 1):
        tampered = bytearray(BODY)
        tampered[position] ^= 0x01
        assert not signature_valid(PUBLIC_KEY, SIGNATURE, bytes(tampered))


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    return keys.generate_private_key_pem()


def test_the_sandbox_signer_and_a_verifier_round_trip(private_key_pem: str) -> None:
    body = jsonb.dumps_bytes({**json.loads(BODY), "event_type": "purchase.paid"})
    signature = keys.sign(private_key_pem, body)
    assert len(base64.b64decode(signature)) == keys.KEY_SIZE_BITS // 8
    public_pem = keys.public_key_pem(private_key_pem)
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert signature_valid(public_pem, signature, body)
    assert not signature_valid(public_pem, signature, body + b" ")
    assert not signature_valid(PUBLIC_KEY, signature, body)  # another key: fails
