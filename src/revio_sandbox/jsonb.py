"""Serialise JSON the way PostgreSQL prints ``jsonb``, which is how Revio writes callback bodies.

PostgreSQL stores object keys sorted by byte length first and then bytewise, and prints with ``", "`` and
``": "`` separators. Receivers must verify the signature over the raw bytes, so the sandbox reproduces
this exactly instead of using ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any


def _key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode("utf-8")
    return (len(encoded), encoded)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for index, key in enumerate(sorted(value, key=_key_order)):
            if index:
                out.append(", ")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(": ")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(", ")
            _write(item, out)
        out.append("]")
    else:
        # Scalars: json.dumps already matches PostgreSQL for strings (raw UTF-8, \uXXXX for control
        # characters), ints, booleans and null.
        out.append(json.dumps(value, ensure_ascii=False))


def dumps(value: Any) -> str:
    """Return ``value`` as PostgreSQL ``jsonb`` text."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def dumps_bytes(value: Any) -> bytes:
    """Return ``value`` as UTF-8 encoded PostgreSQL ``jsonb`` text (the exact bytes that get signed)."""
    return dumps(value).encode("utf-8")
