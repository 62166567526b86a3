"""Fault rules set through the control API: HTTP faults on API calls and webhook delivery faults.

A rule has a ``count``; each call or event it applies to uses one, and the rule is deleted at zero.
Rules live in SQLite with everything else, so they also survive a restart and are cleared by a reset.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Any

from revio_sandbox.errors import ApiError, general_error
from revio_sandbox.store import Store, dump_json, load_json

HTTP_ACTIONS = ("error", "error_after", "hang", "slow", "hang_after")
WEBHOOK_ACTIONS = ("duplicate", "reorder", "delay", "drop", "bad_signature", "reserialize")

# Names of the API endpoints, usable as the ``endpoint`` of an HTTP fault.
ENDPOINT_NAMES = (
    "purchases.create",
    "purchases.get",
    "purchases.cancel",
    "purchases.refund",
    "purchases.capture",
    "purchases.release",
    "purchases.charge",
    "purchases.delete_recurring_token",
    "payment_methods",
    "account.balance",
    "public_key",
    "webhooks.create",
    "webhooks.list",
    "webhooks.get",
    "webhooks.update",
    "webhooks.partial_update",
    "webhooks.delete",
    # The EFT payments API (revio_sandbox.eft)
    "eft.token",
    "eft.payments.create",
    "eft.payments.get",
    "eft.payments.list",
    "eft.callbacks.register",
    "eft.callbacks.test",
)


def _bad(message: str) -> ApiError:
    return general_error(message, "invalid_fault")


def _number(spec: dict[str, Any], key: str, default: float, *, minimum: float = 0) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise _bad(f"{key} must be a number >= {minimum}")
    return float(value)


def _count(spec: dict[str, Any]) -> int:
    count = spec.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _bad("count must be an integer >= 1")
    return count


def clean_http_fault(spec: Any) -> dict[str, Any]:
    """Check and fill defaults of an HTTP fault rule."""
    if not isinstance(spec, dict):
        raise _bad("expected a JSON object")
    action = spec.get("action", "error")
    if action not in HTTP_ACTIONS:
        raise _bad(f"action must be one of {', '.join(HTTP_ACTIONS)}")
    endpoint, match = spec.get("endpoint"), spec.get("match")
    if (endpoint is None) == (match is None):
        raise _bad('give exactly one of "endpoint" (a name) or "match" (e.g. "POST /api/v1/purchases/*")')
    if endpoint is not None and endpoint not in ENDPOINT_NAMES:
        raise _bad(f"endpoint must be one of {', '.join(ENDPOINT_NAMES)}")
    if match is not None and not isinstance(match, str):
        raise _bad("match must be a string")
    clean: dict[str, Any] = {"action": action, "endpoint": endpoint, "match": match, "count": _count(spec)}
    if action in ("error", "error_after"):
        # error: answer at once, nothing processed. error_after: process fully (the object is created,
        # its events go out), then answer this instead, like a proxy timing out on a slow upstream.
        status = spec.get("status", 500 if action == "error" else 502)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise _bad("status must be an HTTP error status (400-599)")
        clean["status"] = status
        if "retry_after" in spec and spec["retry_after"] is not None:
            clean["retry_after"] = int(_number(spec, "retry_after", 1))
        else:
            clean["retry_after"] = 1 if status in (429, 503) else None
        clean["html"] = bool(spec.get("html", False))
        body = spec.get("body")
        if body is not None and not isinstance(body, str):
            raise _bad("body must be a string (sent as is)")
        clean["body"] = body
    elif action in ("hang", "hang_after"):
        clean["seconds"] = _number(spec, "seconds", 30.0)
        then = spec.get("then", "drop")
        if then not in ("answer", "drop"):
            raise _bad('then must be "answer" or "drop"')
        clean["then"] = then
    else:
        clean["delay_ms"] = int(_number(spec, "delay_ms", 1000))
    return clean


def clean_webhook_fault(spec: Any) -> dict[str, Any]:
    """Check and fill defaults of a webhook delivery fault rule."""
    if not isinstance(spec, dict):
        raise _bad("expected a JSON object")
    action = spec.get("action")
    if action not in WEBHOOK_ACTIONS:
        raise _bad(f"action must be one of {', '.join(WEBHOOK_ACTIONS)}")
    clean: dict[str, Any] = {"action": action, "count": _count(spec)}
    for key in ("event_type", "object_id", "target"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise _bad(f"{key} must be a string")
        clean[key] = value
    if action == "duplicate":
        clean["copies"] = int(_number(spec, "copies", 2, minimum=2))
    elif action == "reorder":
        clean["hold_seconds"] = _number(spec, "hold_seconds", 10.0)
    elif action == "delay":
        clean["delay_ms"] = int(_number(spec, "delay_ms", 2000))
    elif action == "reserialize":
        signed_over = spec.get("signed_over", "sent")
        if signed_over not in ("sent", "original"):
            raise _bad('signed_over must be "sent" or "original"')
        clean["signed_over"] = signed_over
    return clean


def fault_add(store: Store, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    with store.transaction():
        cursor = store.execute(
            "INSERT INTO faults (kind, spec, remaining, created_at) VALUES (?, ?, ?, ?)",
            (kind, dump_json(spec), spec["count"], time.time()),
        )
    return {"id": cursor.lastrowid, "kind": kind, "remaining": spec["count"], **spec}


def fault_list(store: Store) -> list[dict[str, Any]]:
    rows = store.fetchall("SELECT * FROM faults ORDER BY id")
    return [
        {"id": r["id"], "kind": r["kind"], **load_json(r["spec"]), "remaining": r["remaining"]} for r in rows
    ]


def fault_delete(store: Store, fault_id: int | None = None) -> int:
    with store.transaction():
        if fault_id is None:
            return store.execute("DELETE FROM faults").rowcount
        return store.execute("DELETE FROM faults WHERE id = ?", (fault_id,)).rowcount


def _use(store: Store, fault_id: int, remaining: int) -> None:
    if remaining <= 1:
        store.execute("DELETE FROM faults WHERE id = ?", (fault_id,))
    else:
        store.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (fault_id,))


def take_http_fault(store: Store, *, name: str, method: str, path: str) -> dict[str, Any] | None:
    """Return (and use one count of) the oldest HTTP fault matching this call, if any."""
    line = f"{method} {path}"
    with store.transaction():
        for row in store.fetchall("SELECT * FROM faults WHERE kind = 'http' ORDER BY id"):
            spec = load_json(row["spec"])
            if spec["endpoint"] == name or (spec["match"] and fnmatch.fnmatchcase(line, spec["match"])):
                _use(store, row["id"], row["remaining"])
                return dict(spec)
    return None


def take_refund_fault(store: Store) -> dict[str, Any] | None:
    """Return (and use one count of) the oldest "slow refund" rule, if any."""
    with store.transaction():
        row = store.fetchone("SELECT * FROM faults WHERE kind = 'refund' ORDER BY id LIMIT 1")
        if row is None:
            return None
        _use(store, row["id"], row["remaining"])
        return dict(load_json(row["spec"]))


def take_webhook_faults(
    store: Store, *, event_type: str, object_id: str, targets: list[tuple[str, str | None]]
) -> list[tuple[dict[str, Any], set[str]]]:
    """Return the webhook faults that apply to one event, each with the delivery targets it covers.

    ``targets`` are ``(target key, webhook id or None)`` pairs. A rule's ``target`` filter is
    ``"webhook"`` (any webhook object), ``"callback"`` (the success_callback), ``"eft"`` (EFT payment
    callbacks, whose target keys start with ``eft:``) or a webhook id.
    One event uses one count of every rule it matches, however many targets it fans out to.
    """
    found: list[tuple[dict[str, Any], set[str]]] = []
    with store.transaction():
        for row in store.fetchall("SELECT * FROM faults WHERE kind = 'webhook' ORDER BY id"):
            spec = load_json(row["spec"])
            if spec["event_type"] and not fnmatch.fnmatchcase(event_type, spec["event_type"]):
                continue
            if spec["object_id"] and spec["object_id"] != object_id:
                continue
            covered = {
                key
                for key, webhook_id in targets
                if spec["target"] is None
                or (spec["target"] == "webhook" and webhook_id is not None)
                or (spec["target"] == "callback" and webhook_id is None and not key.startswith("eft:"))
                or (spec["target"] == "eft" and key.startswith("eft:"))
                or spec["target"] == webhook_id
            }
            if covered:
                _use(store, row["id"], row["remaining"])
                found.append((spec, covered))
    return found
