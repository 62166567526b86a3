"""Encryption of personal data at rest (bank details), with Fernet from `cryptography`.

FIELD_ENCRYPTION_KEYS holds one or more Fernet keys; the first encrypts, all decrypt, so keys can be
rotated by putting a new key first and re-encrypting at leisure.
"""

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise RuntimeError("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_json(value: dict[str, Any]) -> str:
    token = _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(json.dumps(value).encode())
    return token.decode()


def decrypt_json(token: str) -> dict[str, Any]:
    data = json.loads(_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()))
    if not isinstance(data, dict):
        raise ValueError("encrypted value is not an object")
    return data


def mask_account_number(number: str) -> str:
    """Only the last four digits are ever shown: in responses, logs and the admin."""
    return "•" * max(len(number) - 4, 0) + number[-4:]
