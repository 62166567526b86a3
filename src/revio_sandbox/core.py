"""The sandbox's domain: purchases, webhook objects, keys and the events they emit.

Every state change goes through here, is written to SQLite, and enqueues signed deliveries (rows in
``deliveries``) that ``revio_sandbox.delivery.DeliveryWorker`` sends in the background. All methods are
synchronous and run on the event-loop thread; none of them awaits inside a transaction.
"""

from __future__ import annotations

import copy
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from revio_sandbox import jsonb, keys
from revio_sandbox.errors import ApiError, general_error, not_found
from revio_sandbox.events import ALL_EVENTS, MAX_RETRIES, RETRY_GAPS_SECONDS
from revio_sandbox.faults import take_webhook_faults
from revio_sandbox.store import STATE_TABLES, Store, dump_json, load_json
from revio_sandbox.validation import (
    clean_purchase_create,
    clean_webhook,
    products_total,
)

# Purchase statuses from which the customer can still pay, decline or cancel. `error` is not terminal:
# a declined customer may try again on the checkout page; `overdue` (past `due` without due_strict) can
# still be paid (README fact 2).
OPEN_PURCHASE_STATUSES = ("created", "viewed", "error", "overdue")
# Statuses that become overdue/expired when `due` passes.
NOT_YET_DUE_STATUSES = ("created", "viewed", "error")
DEFAULT_PURCHASE_LIFETIME_SECONDS = 3600  # `due` when the request leaves it out (README fact 2)
FEE_PERCENT = 3  # fee_amount on a paid purchase; Revio's own example shows 450 on 15000 (INFERRED)

# The Client fields of a purchase, with the empty values the platform's signed fixture shows
# (../shared/revio-platform/signed-callback.body.json); keys a caller sends beyond these are ignored.
CLIENT_DEFAULTS: dict[str, Any] = {
    "cc": [],
    "bcc": [],
    "city": "",
    "email": "",
    "phone": "",
    "country": "",
    "zip_code": "",
    "bank_code": "",
    "full_name": "",
    "brand_name": "",
    "legal_name": "",
    "tax_number": "",
    "client_type": None,
    "bank_account": "",
    "personal_code": "",
    "shipping_city": "",
    "street_address": "",
    "shipping_country": "",
    "shipping_zip_code": "",
    "registration_number": "",
    "shipping_street_address": "",
}
ISSUER_DETAILS: dict[str, Any] = {
    "website": "",
    "brand_name": "Revio sandbox",
    "legal_city": "",
    "legal_name": "Revio sandbox",
    "tax_number": "",
    "bank_accounts": [{"bank_code": "", "bank_account": ""}],
    "legal_country": "ZA",
    "legal_zip_code": "",
    "registration_number": "",
    "legal_street_address": "",
}

PAGE_SIZE = 20


@dataclass(frozen=True)
class RuntimeSettings:
    """Settings the domain needs at run time (the server's CLI options minus host/port)."""

    public_url: str
    time_scale: float = 1.0
    payout_delay: float = 2.0  # wall-clock seconds an EFT payment takes to reach its outcome
    delivery_timeout: float = 10.0
    # When set, every /_sandbox/ call but health needs "Authorization: Bearer <token>" (F9).
    control_token: str | None = None


class Sandbox:
    """The emulated gateway: one brand, one company key, any number of webhook objects."""

    def __init__(self, store: Store, settings: RuntimeSettings) -> None:
        self.store = store
        self.settings = settings
        # Set by the delivery worker so new deliveries and EFT payment steps are picked up at once.
        self.on_change: Callable[[], None] = lambda: None
        from revio_sandbox.eft import EftApi  # here: eft.py needs this module's Sandbox for its types

        self.eft = EftApi(self)
        from revio_sandbox.payments import PaymentsApi

        self.payments = PaymentsApi(self)

    # -- identity and keys ------------------------------------------------------------------------

    def ensure_identity(self, *, api_key: str | None, brand_id: str | None) -> tuple[str, str, bool]:
        """Store the given (or a generated) api key and brand id and make the company key if missing.

        Returns ``(api_key, brand_id, api_key_was_generated)``.
        """
        generated = False
        with self.store.transaction():
            if api_key:
                self.store.meta_set("api_key", api_key)
            elif self.store.meta_get("api_key") is None:
                # Looks like a Revio test secret key so people recognise it; any string works.
                self.store.meta_set("api_key", "sandbox_sk_" + secrets.token_urlsafe(24))
                generated = True
            if brand_id:
                self.store.meta_set("brand_id", brand_id)
            elif self.store.meta_get("brand_id") is None:
                self.store.meta_set("brand_id", str(uuid.uuid4()))
            if self.store.meta_get("company_id") is None:
                self.store.meta_set("company_id", str(uuid.uuid4()))
            if self.store.meta_get("company_private_key") is None:
                self.store.meta_set("company_private_key", keys.generate_private_key_pem())
            self.eft.ensure_credentials()
        return self.api_key, self.brand_id, generated

    def _meta(self, key: str) -> str:
        value = self.store.meta_get(key)
        if value is None:
            raise RuntimeError(f"sandbox identity not initialised ({key} missing)")
        return value

    @property
    def api_key(self) -> str:
        return self._meta("api_key")

    @property
    def brand_id(self) -> str:
        return self._meta("brand_id")

    @property
    def company_id(self) -> str:
        return self._meta("company_id")

    def company_public_key(self) -> str:
        return keys.public_key_pem(self._meta("company_private_key"))

    def company_rotate_key(self) -> str:
        """Replace the company key pair; the old key signs nothing from now on."""
        with self.store.transaction():
            self.store.meta_set("company_private_key", keys.generate_private_key_pem())
        return self.company_public_key()

    def reset(self, *, regenerate_keys: bool = False, keep_webhooks: bool = False) -> None:
        """Clear purchases, payments, EFT payments, deliveries and faults (and webhooks unless kept).

        The api key, brand id and company id always stay. Keys stay unless ``regenerate_keys``.
        """
        with self.store.transaction():
            for table in STATE_TABLES:
                self.store.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            if not keep_webhooks:
                self.store.execute("DELETE FROM webhooks")
            self.eft.reset(keep_callbacks=keep_webhooks)
            if regenerate_keys:
                self.store.meta_set("company_private_key", keys.generate_private_key_pem())
                for row in self.store.fetchall("SELECT id FROM webhooks"):
                    self._webhook_set_key(row["id"], keys.generate_private_key_pem())

    # -- purchases --------------------------------------------------------------------------------

    def purchase_create(self, payload: Any, *, client_ip: str = "") -> dict[str, Any]:
        """A new purchase, shaped key for key like the platform's signed fixture."""
        data = clean_purchase_create(payload, brand_id=self.brand_id)
        now = int(time.time())
        purchase_id = str(uuid.uuid4())
        total = (
            data["total_override"] if data["total_override"] is not None else products_total(data["products"])
        )
        sent_client = data.get("client", {})
        client = {key: sent_client.get(key, default) for key, default in CLIENT_DEFAULTS.items()}
        purchase: dict[str, Any] = {
            "id": purchase_id,
            "type": "purchase",
            "status": "created",
            "status_history": [{"status": "created", "timestamp": now}],
            "is_test": True,
            "brand_id": self.brand_id,
            "company_id": self.company_id,
            "user_id": None,
            "client_id": data.get("client_id"),
            "client": client,
            "purchase": {
                "debt": 0,
                "total": total,
                "currency": data["currency"],
                "products": data["products"],
                **data["purchase_echo"],  # language, timezone, notes, email_message as sent
                "due_strict": data["due_strict"],
                "total_override": data["total_override"],
                "shipping_options": [],
                "subtotal_override": None,
                "total_tax_override": None,
                "payment_method_details": {},
                "request_client_details": [],
                "total_discount_override": None,
            },
            "payment": None,
            "transaction_data": {
                "flow": "payform",
                "extra": {},
                "country": "",
                "attempts": [],
                "payment_method": "",
            },
            "reference": data["reference"] or "",
            "reference_generated": f"SBX{now % 10**8:08d}{secrets.randbelow(100):02d}",
            "created_on": now,
            "updated_on": now,
            "issued": time.strftime("%Y-%m-%d", time.gmtime(now)),
            # README fact 2: due defaults to creation + 3,600 s (the signed fixture shows it).
            "due": data["due"] if data["due"] is not None else now + DEFAULT_PURCHASE_LIFETIME_SECONDS,
            "viewed_on": None,
            "checkout_url": f"{self.settings.public_url}/p/{purchase_id}/",
            "invoice_url": None,
            "direct_post_url": None,
            "success_redirect": data["success_redirect"] or "",
            "failure_redirect": data["failure_redirect"] or "",
            "cancel_redirect": data["cancel_redirect"] or "",
            "success_callback": data["success_callback"] or "",
            "send_receipt": data["send_receipt"],
            "skip_capture": data["skip_capture"],
            "force_recurring": data["force_recurring"],
            "is_recurring_token": False,
            "recurring_token": None,
            "marked_as_paid": False,
            "order_id": None,
            "product": "purchases",
            **data["top_echo"],  # platform, creator_agent as sent
            "created_from_ip": client_ip,
            "issuer_details": copy.deepcopy(ISSUER_DETAILS),
            "billing_template_id": None,
            "currency_conversion": None,
            "payment_method_whitelist": None,
            "refund_availability": "none",
            "refundable_amount": 0,
        }
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO purchases (id, status, due, data) VALUES (?, ?, ?, ?)",
                (purchase_id, "created", purchase["due"], dump_json(purchase)),
            )
            self._emit(purchase, "purchase.created")
        return purchase

    def _purchase_load(self, purchase_id: str) -> dict[str, Any] | None:
        row = self.store.fetchone("SELECT data FROM purchases WHERE id = ?", (purchase_id,))
        return None if row is None else dict(load_json(row["data"]))

    def _purchase_save(self, purchase: dict[str, Any]) -> None:
        self.store.execute(
            "UPDATE purchases SET status = ?, due = ?, data = ? WHERE id = ?",
            (purchase["status"], purchase["due"], dump_json(purchase), purchase["id"]),
        )

    def _purchase_require(self, purchase_id: str) -> dict[str, Any]:
        purchase = self._purchase_load(purchase_id)
        if purchase is None:
            raise not_found()
        if self._purchase_expire_if_due(purchase, time.time()):
            self._purchase_save(purchase)
        return purchase

    def _purchase_expire_if_due(self, purchase: dict[str, Any], now: float) -> bool:
        """Past ``due``, an unpaid purchase becomes ``overdue`` (still payable) or, with
        ``due_strict``, ``expired`` (README fact 2). No event: the platform's Event enum has neither a
        ``purchase.overdue`` nor a ``purchase.expired``."""
        if (
            purchase["status"] in NOT_YET_DUE_STATUSES
            and purchase["due"] is not None
            and purchase["due"] <= now
        ):
            strict = bool(purchase["purchase"].get("due_strict"))
            _set_status(purchase, "expired" if strict else "overdue", int(now))
            return True
        return False

    def purchase_get(self, purchase_id: str) -> dict[str, Any]:
        with self.store.transaction():
            return self._purchase_require(purchase_id)

    def purchase_peek(self, purchase_id: str) -> dict[str, Any]:
        """The stored purchase without applying expiry (control API)."""
        purchase = self._purchase_load(purchase_id)
        if purchase is None:
            raise not_found()
        return purchase

    def purchases_by_reference(self, reference: str | None) -> list[dict[str, Any]]:
        """Control API: the stored purchases carrying our ``reference`` (oldest first)."""
        if not reference:
            raise general_error("Give ?reference=<your reference>.", "invalid")
        rows = self.store.fetchall(
            "SELECT data FROM purchases WHERE json_extract(data, '$.reference') = ? ORDER BY seq",
            (reference,),
        )
        return [dict(load_json(r["data"])) for r in rows]

    def purchase_view(self, purchase_id: str) -> dict[str, Any]:
        """The checkout page was opened: ``created`` becomes ``viewed`` (event purchase.viewed)."""
        with self.store.transaction():
            purchase = self._purchase_require(purchase_id)
            if purchase["status"] == "created":
                now = int(time.time())
                purchase["viewed_on"] = now
                _set_status(purchase, "viewed", now)
                self._purchase_save(purchase)
                self._emit(purchase, "purchase.viewed")
            return purchase

    def _purchase_open(self, purchase_id: str, action: str) -> dict[str, Any]:
        purchase = self._purchase_require(purchase_id)
        if purchase["status"] not in OPEN_PURCHASE_STATUSES:
            raise general_error(
                f"Purchase cannot be {action}: its status is {purchase['status']}.",
                f"purchase_{'cancel' if action == 'cancelled' else 'payment'}_error",
            )
        return purchase

    def purchase_pay(self, purchase_id: str) -> dict[str, Any]:
        """A successful payment: status ``paid``, payment filled, ``purchase.paid`` + success_callback."""
        with self.store.transaction():
            purchase = self._purchase_open(purchase_id, "paid")
            now = int(time.time())
            total = purchase["purchase"]["total"]
            fee = (total * FEE_PERCENT + 50) // 100
            purchase["payment"] = {
                "is_outgoing": False,
                "payment_type": "purchase",
                "amount": total,
                "currency": purchase["purchase"]["currency"],
                "net_amount": total - fee,
                "fee_amount": fee,
                "pending_amount": 0,
                "pending_unfreeze_on": None,
                "description": "",
                "paid_on": now,
                "remote_paid_on": now,
            }
            purchase["transaction_data"].update(
                payment_method="visa",
                country="ZA",
                extra={"masked_pan": "444433******1111", "card_brand": "visa", "three_d_secure": False},
            )
            purchase["transaction_data"]["attempts"].insert(
                0,
                {
                    "type": "execute",
                    "successful": True,
                    "payment_method": "visa",
                    "country": "ZA",
                    "client_ip": "",
                    "processing_time": now,
                    "error": None,
                },
            )
            purchase["refund_availability"] = "all"
            purchase["refundable_amount"] = total
            _set_status(purchase, "paid", now)
            self._purchase_save(purchase)
            self._emit(purchase, "purchase.paid", success_callback=purchase["success_callback"] or None)
            return purchase

    def purchase_decline(self, purchase_id: str) -> dict[str, Any]:
        """A failed attempt: status ``error`` plus a failed attempt; the purchase can still be paid."""
        with self.store.transaction():
            purchase = self._purchase_open(purchase_id, "declined")
            now = int(time.time())
            purchase["transaction_data"].update(payment_method="visa", country="ZA")
            purchase["transaction_data"]["attempts"].insert(
                0,
                {
                    "type": "execute",
                    "successful": False,
                    "payment_method": "visa",
                    "country": "ZA",
                    "client_ip": "",
                    "processing_time": now,
                    "error": {"code": "card_declined", "message": "The card was declined (sandbox)."},
                },
            )
            _set_status(purchase, "error", now)
            self._purchase_save(purchase)
            self._emit(purchase, "purchase.payment_failure")
            return purchase

    def purchase_cancel(self, purchase_id: str, *, idempotent: bool = False) -> dict[str, Any]:
        """Cancel an unpaid purchase (``purchase.cancelled``); an already cancelled one is returned
        unchanged when ``idempotent`` (the API), anything else settled is a 400."""
        with self.store.transaction():
            purchase = self._purchase_require(purchase_id)
            if idempotent and purchase["status"] == "cancelled":
                return purchase
            purchase = self._purchase_open(purchase_id, "cancelled")
            _set_status(purchase, "cancelled", int(time.time()))
            self._purchase_save(purchase)
            self._emit(purchase, "purchase.cancelled")
            return purchase

    def purchase_expire(self, purchase_id: str) -> dict[str, Any]:
        """Control API: move ``due`` to now, so the purchase becomes ``overdue`` (or ``expired`` with
        ``due_strict``)."""
        with self.store.transaction():
            purchase = self._purchase_require(purchase_id)
            if purchase["status"] not in NOT_YET_DUE_STATUSES:
                raise general_error(
                    f"Purchase cannot pass its due date: its status is {purchase['status']}.",
                    "purchase_payment_error",
                )
            purchase["due"] = int(time.time())
            self._purchase_expire_if_due(purchase, time.time())
            self._purchase_save(purchase)
            return purchase

    # -- webhook objects --------------------------------------------------------------------------

    def _webhook_load(self, webhook_id: str) -> tuple[dict[str, Any], str]:
        row = self.store.fetchone("SELECT data, private_key FROM webhooks WHERE id = ?", (webhook_id,))
        if row is None:
            raise not_found()
        return dict(load_json(row["data"])), str(row["private_key"])

    def _webhook_set_key(self, webhook_id: str, private_key: str) -> None:
        data, _ = self._webhook_load(webhook_id)
        data["public_key"] = keys.public_key_pem(private_key)
        self.store.execute(
            "UPDATE webhooks SET data = ?, private_key = ? WHERE id = ?",
            (dump_json(data), private_key, webhook_id),
        )

    def webhook_create(self, payload: Any) -> dict[str, Any]:
        clean = clean_webhook(payload, partial=False, known_events=ALL_EVENTS)
        now = int(time.time())
        private_key = keys.generate_private_key_pem()
        webhook = {
            "id": str(uuid.uuid4()),
            "type": "webhook",
            "title": clean["title"],
            "all_events": clean.get("all_events", False),
            "events": clean.get("events", []),
            "callback": clean["callback"],
            "public_key": keys.public_key_pem(private_key),
            "created_on": now,
            "updated_on": now,
        }
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO webhooks (id, private_key, data) VALUES (?, ?, ?)",
                (webhook["id"], private_key, dump_json(webhook)),
            )
        return webhook

    def webhook_get(self, webhook_id: str) -> dict[str, Any]:
        return self._webhook_load(webhook_id)[0]

    def webhook_list(self, page: int, page_url: Callable[[int], str]) -> dict[str, Any]:
        page = max(page, 1)
        total = self.store.fetchone("SELECT COUNT(*) AS n FROM webhooks")
        count = int(total["n"]) if total else 0
        rows = self.store.fetchall(
            "SELECT data FROM webhooks ORDER BY seq LIMIT ? OFFSET ?", (PAGE_SIZE, (page - 1) * PAGE_SIZE)
        )
        return {
            "results": [load_json(r["data"]) for r in rows],
            "next": page_url(page + 1) if page * PAGE_SIZE < count else None,
            "previous": page_url(page - 1) if page > 1 else None,
        }

    def webhook_update(self, webhook_id: str, payload: Any, *, partial: bool) -> dict[str, Any]:
        with self.store.transaction():
            webhook, _ = self._webhook_load(webhook_id)
            clean = clean_webhook(payload, partial=partial, known_events=ALL_EVENTS)
            if not partial:
                webhook.update(all_events=False, events=[])
            webhook.update(clean)
            webhook["updated_on"] = int(time.time())
            self.store.execute("UPDATE webhooks SET data = ? WHERE id = ?", (dump_json(webhook), webhook_id))
            return webhook

    def webhook_delete(self, webhook_id: str) -> None:
        with self.store.transaction():
            self._webhook_load(webhook_id)
            self.store.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    def webhook_rotate_key(self, webhook_id: str) -> dict[str, Any]:
        """Control API: give a webhook a new key pair; the old key signs nothing from now on."""
        with self.store.transaction():
            self._webhook_set_key(webhook_id, keys.generate_private_key_pem())
            return self._webhook_load(webhook_id)[0]

    def webhook_ensure(self, *, callback: str, title: str = "Wallet backend (sandbox)") -> dict[str, Any]:
        """Return the all-events webhook pointing at ``callback``, creating it if needed (``init``)."""
        for row in self.store.fetchall("SELECT data FROM webhooks ORDER BY seq"):
            webhook = load_json(row["data"])
            if webhook["callback"] == callback and webhook["all_events"]:
                return dict(webhook)
        return self.webhook_create({"title": title, "callback": callback, "all_events": True})

    # -- events and deliveries --------------------------------------------------------------------

    def _emit(self, obj: dict[str, Any], event_type: str, *, success_callback: str | None = None) -> None:
        """Enqueue one delivery per subscribed webhook (and the success_callback), applying faults.

        The body is frozen now: the object as it is at this event, plus ``event_type``, as jsonb text.
        """
        targets: list[tuple[str, str | None, str]] = []
        for row in self.store.fetchall("SELECT id, data FROM webhooks ORDER BY seq"):
            webhook = load_json(row["data"])
            if webhook["all_events"] or event_type in webhook["events"]:
                targets.append((f"webhook:{row['id']}", row["id"], webhook["callback"]))
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
        self._enqueue_deliveries(
            object_id=obj["id"],
            object_type=obj["type"],
            event_type=event_type,
            targets=targets,
            body=body,
            faults=faults,
            reserialized=lambda: _compact_json(body_obj),
        )

    def _enqueue_deliveries(
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
                self._delivery_insert(row_fields)
        self.on_change()

    def _delivery_insert(self, fields: dict[str, Any]) -> int:
        columns = ", ".join(fields)
        placeholders = ", ".join(f":{name}" for name in fields)
        cursor = self.store.execute(
            f"INSERT INTO deliveries ({columns}) VALUES ({placeholders})",  # noqa: S608 - internal names
            fields,
        )
        return int(cursor.lastrowid or 0)

    def deliveries_due(self, now: float, busy_targets: set[tuple[str, str]]) -> list[sqlite3.Row]:
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

    def delivery_signature(self, row: sqlite3.Row) -> str | None:
        """The X-Signature for a delivery attempt, signed now with the target's current key.

        ``None`` means the webhook object was deleted, so the delivery is abandoned.
        """
        if row["fixed_signature"]:
            return str(row["fixed_signature"])
        if str(row["target"]).startswith("eft:"):
            # EFT callbacks are unsigned ("" = no X-Signature header); abandoned once unregistered.
            return "" if self.eft.registration_exists(str(row["target"])) else None
        if row["webhook_id"] is None:
            private_key = self._meta("company_private_key")
        else:
            found = self.store.fetchone("SELECT private_key FROM webhooks WHERE id = ?", (row["webhook_id"],))
            if found is None:
                return None
            private_key = str(found["private_key"])
        signed = bytes(row["signed_body"] if row["signed_body"] is not None else row["body"])
        if row["bad_signature"]:
            signed += b" "  # a well-formed signature over other bytes, so verification fails
        return keys.sign(private_key, signed)

    def delivery_abandon(self, delivery_id: int, reason: str) -> None:
        with self.store.transaction():
            self.store.execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = ?, "
                "faults = json_insert(faults, '$[#]', ?) "
                "WHERE id = ?",
                (time.time(), reason, delivery_id),
            )

    def delivery_record_attempt(
        self,
        delivery_id: int,
        *,
        attempted_at: float,
        url: str,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        signature: str,
    ) -> None:
        """Record one attempt and decide: delivered (2xx), retry later, or give up after 8 retries."""
        with self.store.transaction():
            row = self.store.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
            if row is None or row["status"] != "pending":
                return  # reset meanwhile
            self.store.execute(
                "INSERT INTO delivery_attempts "
                "(delivery_id, attempted_at, url, status_code, error, duration_ms, "
                "signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery_id, attempted_at, url, status_code, error, duration_ms, signature),
            )
            count = int(row["attempt_count"]) + 1
            now = time.time()
            if status_code is not None and 200 <= status_code < 300:
                status, next_at = "delivered", row["next_attempt_at"]
            elif count > MAX_RETRIES:
                status, next_at = "failed", row["next_attempt_at"]
            else:
                status = "pending"
                next_at = attempted_at + RETRY_GAPS_SECONDS[count - 1] * self.settings.time_scale
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

    def delivery_list(
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
        attempts: dict[int, list[dict[str, Any]]] = {}
        if rows:
            ids = [r["id"] for r in rows]
            marks = ", ".join("?" for _ in ids)
            for a in self.store.fetchall(
                f"SELECT * FROM delivery_attempts WHERE delivery_id IN ({marks}) ORDER BY id",  # noqa: S608
                tuple(ids),
            ):
                attempts.setdefault(a["delivery_id"], []).append(
                    {
                        "attempted_at": a["attempted_at"],
                        "url": a["url"],
                        "status_code": a["status_code"],
                        "error": a["error"],
                        "duration_ms": a["duration_ms"],
                        "signature": a["signature"],
                    }
                )
        return [_delivery_public(r, attempts.get(r["id"], [])) for r in rows]

    def delivery_replay(self, delivery_id: int) -> dict[str, Any]:
        """Control API: send a recorded delivery again, same body and same signature (a replay attack)."""
        with self.store.transaction():
            row = self.store.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
            if row is None:
                raise not_found()
            last = self.store.fetchone(
                "SELECT signature FROM delivery_attempts WHERE delivery_id = ? ORDER BY id DESC LIMIT 1",
                (delivery_id,),
            )
            signature = str(last["signature"]) if last else self.delivery_signature(row)
            if signature is None:
                raise general_error("The delivery's webhook no longer exists.", "webhook_deleted", 409)
            now = time.time()
            new_id = self._delivery_insert(
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
        self.on_change()
        return self.delivery_get(new_id)

    def delivery_get(self, delivery_id: int) -> dict[str, Any]:
        row = self.store.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        if row is None:
            raise not_found()
        attempts = self.delivery_list(object_id=row["object_id"])
        for item in attempts:
            if item["id"] == delivery_id:
                return item
        raise not_found()

    def deliveries_retry_now(self) -> int:
        """Control API: make every waiting retry (and held delivery) due immediately."""
        with self.store.transaction():
            changed = self.store.execute(
                "UPDATE deliveries SET next_attempt_at = ?, status = 'pending' "
                "WHERE status IN ('pending', 'held')",
                (time.time(),),
            ).rowcount
        self.on_change()
        return changed

    # -- background steps -------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Run time-driven changes: EFT payment steps, due dates, pending refunds, held deliveries."""
        for row in self.store.fetchall(
            "SELECT id, next_step FROM eft_payments "
            "WHERE next_step IS NOT NULL AND next_step_at <= ? ORDER BY next_step_at",
            (now,),
        ):
            with self.store.transaction():
                self.eft.step(row["id"], row["next_step"], now)
        for row in self.store.fetchall(
            "SELECT id FROM purchases WHERE status IN ('created', 'viewed', 'error') AND due <= ?",
            (int(now),),
        ):
            with self.store.transaction():
                self._purchase_require(row["id"])
        for row in self.store.fetchall(
            "SELECT id FROM payments WHERE status = 'pending' AND due_at <= ? ORDER BY due_at", (now,)
        ):
            with self.store.transaction():
                self.payments.complete_pending(row["id"], now)
        with self.store.transaction():
            self.store.execute(
                "UPDATE deliveries SET status = 'pending' WHERE status = 'held' AND next_attempt_at <= ?",
                (now,),
            )

    def next_wakeup(self) -> float | None:
        """The earliest time something is scheduled (a delivery attempt, an EFT step, a pending refund)."""
        row = self.store.fetchone(
            "SELECT MIN(t) AS t FROM ("
            " SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status IN ('pending', 'held')"
            " UNION ALL SELECT MIN(next_step_at) FROM eft_payments WHERE next_step IS NOT NULL"
            " UNION ALL SELECT MIN(due_at) FROM payments WHERE status = 'pending')"
        )
        return None if row is None or row["t"] is None else float(row["t"])


def _set_status(obj: dict[str, Any], status: str, now: int) -> None:
    obj["status"] = status
    obj["status_history"].append({"status": status, "timestamp": now})
    obj["updated_on"] = now


def _compact_json(value: Any) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


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


__all__ = ["ApiError", "RuntimeSettings", "Sandbox"]
