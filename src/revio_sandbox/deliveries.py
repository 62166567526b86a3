"""Deliveries: one row per (event, receiver), signed when sent, retried on Revio's schedule.

``emit`` freezes an object's body at an event and queues it for every subscribed webhook object (and a
purchase's success_callback) with the webhook faults applied; the EFT API queues its unsigned callbacks
through ``enqueue``. ``revio_sandbox.worker.DeliveryWorker`` sends what is ``due`` and records each
attempt here; the control API lists, replays and hurries them.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from revio_sandbox import jsonb, keys
from revio_sandbox.errors import general_error, not_found
from revio_sandbox.events import MAX_RETRIES, RETRY_GAPS_SECONDS
from revio_sandbox.faults import take_webhook_faults
from revio_sandbox.store import dump_json, load_json

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox


class Deliveries:
    """The delivery queue and its attempts, in the sandbox's store."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    def emit(self, obj: dict[str, Any], event_type: str, *, success_callback: str | None = None) -> None:
        """Enqueue one delivery per subscribed webhook (and the success_callback), applying faults.

        The body is frozen now: the object as it is at this event, plus ``event_type``, as jsonb text.
        """
        targets: list[tuple[str, str | None, str]] = [
            (f"webhook:{webhook_id}", webhook_id, url)
            for webhook_id, url in self.sandbox.webhooks.subscribers(event_type)
        ]
        if success_callback:
            targets.append((f"callback:{success_callback}", None, success_callback))
        if not targets:
            return
        body_obj = copy.deepcopy(obj)
        body_obj["event_type"] = event_type
        body = jsonb.dumps_bytes(body_obj)
        faults = take_webhook_faults(
            self.store,
            event_type=event_type,
            object_id=obj["id"],
            targets=[(key, webhook_id) for key, webhook_id, _ in targets],
        )
        self.enqueue(
            object_id=obj["id"],
            object_type=obj["type"],
            event_type=event_type,
            targets=targets,
            body=body,
            faults=faults,
            reserialized=lambda: _compact_json(body_obj),
        )

    def enqueue(
        self,
        *,
        object_id: str,
        object_type: str,
        event_type: str,
        targets: list[tuple[str, str | None, str]],
        body: bytes,
        faults: list[tuple[dict[str, Any], set[str]]],
        reserialized: Callable[[], bytes] | None,
    ) -> None:
        """Insert one delivery per (key, webhook id, url) target with the webhook faults applied.

        ``reserialized`` gives the other bytes of a signed body; None means an unsigned delivery (an EFT
        callback), for which bad_signature and reserialize mean nothing.
        """
        now = time.time()
        for key, webhook_id, url in targets:
            row_fields: dict[str, Any] = {
                "object_id": object_id,
                "object_type": object_type,
                "event_type": event_type,
                "target": key,
                "webhook_id": webhook_id,
                "url": url,
                "body": body,
                "signed_body": None,
                "bad_signature": 0,
                "status": "pending",
                "next_attempt_at": now,
                "created_at": now,
            }
            applied: list[str] = []
            copies = 1
            for spec, covered in faults:
                if key not in covered:
                    continue
                action = spec["action"]
                applied.append(action)
                if action == "duplicate":
                    copies = max(copies, spec["copies"])
                elif action == "reorder":
                    # Held back until the next delivery of this object to this target completes.
                    row_fields["status"] = "held"
                    row_fields["next_attempt_at"] = now + spec["hold_seconds"]
                elif action == "delay":
                    row_fields["next_attempt_at"] = now + spec["delay_ms"] / 1000
                elif action == "drop":
                    row_fields["status"] = "dropped"
                elif action == "bad_signature" and reserialized is not None:
                    row_fields["bad_signature"] = 1
                elif action == "reserialize" and reserialized is not None:
                    # Same object, different bytes (compact json.dumps, insertion order).
                    row_fields["body"] = reserialized()
                    if spec["signed_over"] == "original":
                        row_fields["signed_body"] = body
            row_fields["faults"] = dump_json(applied)
            for _ in range(copies):
                self._insert(row_fields)
        self.sandbox.on_change()

    def _insert(self, fields: dict[str, Any]) -> int:
        columns = ", ".join(fields)
        placeholders = ", ".join(f":{name}" for name in fields)
        cursor = self.store.execute(
            f"INSERT INTO deliveries ({columns}) VALUES ({placeholders})",  # noqa: S608 - internal names
            fields,
        )
        return int(cursor.lastrowid or 0)

    def due(self, now: float, busy_targets: set[tuple[str, str]]) -> list[sqlite3.Row]:
        """Pending deliveries that may be attempted now: due, and first in line for their
        (object, target) chain so each receiver sees an object's events in order."""
        rows = self.store.fetchall(
            """
            SELECT d.* FROM deliveries d
            WHERE d.status = 'pending' AND d.next_attempt_at <= ?
              AND NOT EXISTS (
                SELECT 1 FROM deliveries e
                WHERE e.object_id = d.object_id AND e.target = d.target
                  AND e.status = 'pending' AND e.id < d.id
              )
            ORDER BY d.id
            """,
            (now,),
        )
        return [r for r in rows if (r["object_id"], r["target"]) not in busy_targets]

    def signature(self, row: sqlite3.Row) -> str | None:
        """The X-Signature for a delivery attempt, signed now with the target's current key.

        ``None`` means the webhook object was deleted, so the delivery is abandoned.
        """
        if row["fixed_signature"]:
            return str(row["fixed_signature"])
        if str(row["target"]).startswith("eft:"):
            # EFT callbacks are unsigned ("" = no X-Signature header); abandoned once unregistered.
            return "" if self.sandbox.eft.registration_exists(str(row["target"])) else None
        private_key = (
            self.sandbox.company_private_key()
            if row["webhook_id"] is None
            else self.sandbox.webhooks.private_key(str(row["webhook_id"]))
        )
        if private_key is None:
            return None
        signed = bytes(row["signed_body"] if row["signed_body"] is not None else row["body"])
        if row["bad_signature"]:
            signed += b" "  # a well-formed signature over other bytes, so verification fails
        return keys.sign(private_key, signed)

    def abandon(self, delivery_id: int, reason: str) -> None:
        with self.store.transaction():
            self.store.execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = ?, "
                "faults = json_insert(faults, '$[#]', ?) "
                "WHERE id = ?",
                (time.time(), reason, delivery_id),
            )

    def record_attempt(
        self,
        delivery_id: int,
        *,
        attempted_at: float,
        url: str,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        signature: str,
        request_headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
        response_body: str | None = None,
    ) -> None:
        """Record one attempt (what was sent, what the receiver answered) and decide: delivered (2xx),
        retry later, or give up after 8 retries."""
        with self.store.transaction():
            row = self.store.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
            if row is None or row["status"] != "pending":
                return  # reset meanwhile
            self.store.execute(
                "INSERT INTO delivery_attempts "
                "(delivery_id, attempted_at, url, status_code, error, duration_ms, signature, "
                "request_headers, response_headers, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    delivery_id,
                    attempted_at,
                    url,
                    status_code,
                    error,
                    duration_ms,
                    signature,
                    None if request_headers is None else dump_json(request_headers),
                    None if response_headers is None else dump_json(response_headers),
                    response_body,
                ),
            )
            count = int(row["attempt_count"]) + 1
            now = time.time()
            if status_code is not None and 200 <= status_code < 300:
                status, next_at = "delivered", row["next_attempt_at"]
            elif count > MAX_RETRIES:
                status, next_at = "failed", row["next_attempt_at"]
            else:
                status = "pending"
                next_at = attempted_at + RETRY_GAPS_SECONDS[count - 1] * self.sandbox.settings.time_scale
            self.store.execute(
                "UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at = ?, finished_at = ? "
                "WHERE id = ?",
                (status, count, next_at, now if status != "pending" else None, delivery_id),
            )
            if status != "pending":
                # A delivery held back by the reorder fault goes out right after the next one is done.
                self.store.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ? "
                    "WHERE status = 'held' AND object_id = ? AND target = ? AND id < ?",
                    (now, row["object_id"], row["target"], delivery_id),
                )

    def find(
        self,
        *,
        object_id: str | None = None,
        event_type: str | None = None,
        status: str | None = None,
        target: str | None = None,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        for column, value in (("object_id", object_id), ("event_type", event_type), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if target is not None:
            clauses.append(
                "(target = ? OR webhook_id = ?"
                " OR (? = 'callback' AND webhook_id IS NULL AND target NOT LIKE 'eft:%')"
                " OR (? = 'eft' AND target LIKE 'eft:%'))"
            )
            params += [target, target, target, target]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.store.fetchall(f"SELECT * FROM deliveries {where} ORDER BY id", tuple(params))  # noqa: S608
        return self._with_attempts(rows)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest deliveries with their attempts, newest first (dashboard)."""
        rows = self.store.fetchall("SELECT * FROM deliveries ORDER BY id DESC LIMIT ?", (limit,))
        return self._with_attempts(rows)

    def _with_attempts(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        attempts: dict[int, list[dict[str, Any]]] = {}
        if rows:
            ids = [r["id"] for r in rows]
            marks = ", ".join("?" for _ in ids)
            for a in self.store.fetchall(
                f"SELECT * FROM delivery_attempts WHERE delivery_id IN ({marks}) ORDER BY id",  # noqa: S608
                tuple(ids),
            ):
                attempts.setdefault(a["delivery_id"], []).append(_attempt_public(a))
        return [_delivery_public(r, attempts.get(r["id"], [])) for r in rows]

    def resend(self, delivery_id: int) -> dict[str, Any]:
        """Control API (the dashboard's Resend): put a delivery back in the queue, due now, whatever its
        status; the next attempt is signed afresh with the target's current key and joins its attempts
        (a failed one retries on the rest of the schedule). ``replay`` is the attack: same signature."""
        with self.store.transaction():
            if self.store.fetchone("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)) is None:
                raise not_found()
            self.store.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, finished_at = NULL "
                "WHERE id = ?",
                (time.time(), delivery_id),
            )
        self.sandbox.on_change()
        return self.get(delivery_id)

    def replay(self, delivery_id: int) -> dict[str, Any]:
        """Control API: send a recorded delivery again, same body and same signature (a replay attack)."""
        with self.store.transaction():
            row = self.store.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
            if row is None:
                raise not_found()
            last = self.store.fetchone(
                "SELECT signature FROM delivery_attempts WHERE delivery_id = ? ORDER BY id DESC LIMIT 1",
                (delivery_id,),
            )
            signature = str(last["signature"]) if last else self.signature(row)
            if signature is None:
                raise general_error("The delivery's webhook no longer exists.", "webhook_deleted", 409)
            now = time.time()
            new_id = self._insert(
                {
                    **{
                        k: row[k]
                        for k in ("object_id", "object_type", "event_type", "target", "webhook_id", "url")
                    },
                    "body": row["body"],
                    "signed_body": row["signed_body"],
                    "fixed_signature": signature,
                    "faults": dump_json(["replay"]),
                    "status": "pending",
                    "next_attempt_at": now,
                    "created_at": now,
                    "replay_of": delivery_id,
                }
            )
        self.sandbox.on_change()
        return self.get(new_id)

    def get(self, delivery_id: int) -> dict[str, Any]:
        row = self.store.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        if row is None:
            raise not_found()
        attempts = self.find(object_id=row["object_id"])
        for item in attempts:
            if item["id"] == delivery_id:
                return item
        raise not_found()

    def retry_now(self) -> int:
        """Control API: make every waiting retry (and held delivery) due immediately."""
        with self.store.transaction():
            changed = self.store.execute(
                "UPDATE deliveries SET next_attempt_at = ?, status = 'pending' "
                "WHERE status IN ('pending', 'held')",
                (time.time(),),
            ).rowcount
        self.sandbox.on_change()
        return changed

    def tick(self, now: float) -> None:
        """Held deliveries whose hold has run out go out (the reorder fault's upper bound)."""
        with self.store.transaction():
            self.store.execute(
                "UPDATE deliveries SET status = 'pending' WHERE status = 'held' AND next_attempt_at <= ?",
                (now,),
            )


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _attempt_public(row: sqlite3.Row) -> dict[str, Any]:
    def json_or_none(value: str | None) -> Any:
        return None if value is None else load_json(value)

    return {
        "attempted_at": row["attempted_at"],
        "url": row["url"],
        "status_code": row["status_code"],
        "error": row["error"],
        "duration_ms": row["duration_ms"],
        "signature": row["signature"],
        # None for attempts recorded before the sandbox kept them.
        "request_headers": json_or_none(row["request_headers"]),
        "response_headers": json_or_none(row["response_headers"]),
        "response_body": row["response_body"],
    }


def _delivery_public(row: sqlite3.Row, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object_id": row["object_id"],
        "object_type": row["object_type"],
        "event_type": row["event_type"],
        "target": (
            "eft"
            if str(row["target"]).startswith("eft:")
            else "callback"
            if row["webhook_id"] is None
            else "webhook"
        ),
        "webhook_id": row["webhook_id"],
        "url": row["url"],
        "status": row["status"],
        "attempt_count": row["attempt_count"],
        "next_attempt_at": row["next_attempt_at"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "faults": load_json(row["faults"]),
        "replay_of": row["replay_of"],
        "body": bytes(row["body"]).decode("utf-8"),
        "signed_body": None if row["signed_body"] is None else bytes(row["signed_body"]).decode("utf-8"),
        "attempts": attempts,
    }
