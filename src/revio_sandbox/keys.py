"""RSA key pairs and X-Signature signing (PKCS#1 v1.5 over SHA-256, base64), as Revio signs callbacks.

The sandbox makes 2048-bit keys: Revio's platform documents 3072-bit in one place and 2048-bit in an
SDK test; 2048 keeps key generation fast in tests (listed in docs/sandbox-guesses.md).
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_SIZE_BITS = 2048


def generate_private_key_pem() -> str:
    """Make a new RSA private key and return it as an unencrypted PKCS#8 PEM string."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE_BITS)
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


@lru_cache(maxsize=64)
def _load_private_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the stored signing key is not an RSA key")
    return key


def public_key_pem(private_key_pem: str) -> str:
    """Return the SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``) of a private key."""
    return (
        _load_private_key(private_key_pem)
        .public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )


def sign(private_key_pem: str, data: bytes) -> str:
    """Return the ``X-Signature`` value: standard base64 of an RSA PKCS#1 v1.5 SHA-256 signature."""
    signature = _load_private_key(private_key_pem).sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")
