"""Strict JSON for request bodies: UTF-8 only, bounded nesting, no lone surrogates.

Python's json module reads UTF-16 and UTF-32 bytes, recurses once per nesting level (1,500 levels raise
RecursionError) and accepts `\\ud800`, a string no UTF-8 encoder, Redis key or PostgreSQL text column takes.
Each of those was a 500 (and a Sentry event) for one small request; here each is a 400 in the API's error
shape. RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8.
"""

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]  # DRF 3.16+


class JsonBodyError(ValueError):
    """The body is not UTF-8 JSON this API accepts; the message says why (no body content in it)."""


def _refuse_constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not JSON.")


def loads_json(body: bytes) -> Any:
    """Parse a request body. :raises JsonBodyError: not UTF-8, not JSON, too deep, or lone surrogates."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonBodyError("The body is not UTF-8.") from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise JsonBodyError("The body is nested too deeply.") from exc
    except ValueError as exc:  # JSONDecodeError, or our own from parse_constant
        raise JsonBodyError("The body is not valid JSON.") from exc
    _check_shape(data, max_depth=settings.API_MAX_JSON_DEPTH)
    return data


def _check_shape(data: Any, *, max_depth: int) -> None:
    """Walk without recursion: nesting depth, and every string (keys too) must encode as UTF-8."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise JsonBodyError(f"The body is nested deeper than {max_depth} levels.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise JsonBodyError("The body holds a lone surrogate (\\ud800-\\udfff).") from exc


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with loads_json's rules; the body is already bounded by BodySizeLimitMiddleware."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        if encoding.lower().replace("_", "-") not in {"utf-8", "utf8"}:
            raise ParseError("Send JSON as UTF-8.")
        try:
            return loads_json(stream.read())
        except JsonBodyError as exc:
            raise ParseError(str(exc)) from exc
