"""Purchases (the gateway's ``/purchases/``): created by the API, paid, declined or cancelled on the
checkout page or through the control API, past ``due`` overdue or expired (README facts 2 and 5).

Every change is saved in the same transaction as the events it emits (``Deliveries.emit``).
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

from revio_sandbox.errors import general_error, not_found
from revio_sandbox.store import dump_json, load_json
from revio_sandbox.validation import clean_purchase_create, products_total

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox

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


def set_status(obj: dict[str, Any], status: str, now: int) -> None:
    """Move a purchase to ``status``, recorded in its status_history."""
    obj["status"] = status
    obj["status_history"].append({"status": status, "timestamp": now})
    obj["updated_on"] = now


class PurchasesApi:
    """The purchases of the sandbox's one brand, on its store and event machinery."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    def create(self, payload: Any, *, client_ip: str = "") -> dict[str, Any]:
        """A new purchase, shaped key for key like the platform's signed fixture."""
        data = clean_purchase_create(payload, brand_id=self.sandbox.brand_id)
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
            "brand_id": self.sandbox.brand_id,
            "company_id": self.sandbox.company_id,
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
            "checkout_url": f"{self.sandbox.settings.public_url}/p/{purchase_id}/",
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
            self.sandbox.deliveries.emit(purchase, "purchase.created")
        return purchase

    def load(self, purchase_id: str) -> dict[str, Any] | None:
        row = self.store.fetchone("SELECT data FROM purchases WHERE id = ?", (purchase_id,))
        return None if row is None else dict(load_json(row["data"]))

    def save(self, purchase: dict[str, Any]) -> None:
        self.store.execute(
            "UPDATE purchases SET status = ?, due = ?, data = ? WHERE id = ?",
            (purchase["status"], purchase["due"], dump_json(purchase), purchase["id"]),
        )

    def require(self, purchase_id: str) -> dict[str, Any]:
        purchase = self.load(purchase_id)
        if purchase is None:
            raise not_found()
        if self._expire_if_due(purchase, time.time()):
            self.save(purchase)
        return purchase

    def _expire_if_due(self, purchase: dict[str, Any], now: float) -> bool:
        """Past ``due``, an unpaid purchase becomes ``overdue`` (still payable) or, with
        ``due_strict``, ``expired`` (README fact 2). No event: the platform's Event enum has neither a
        ``purchase.overdue`` nor a ``purchase.expired``."""
        if (
            purchase["status"] in NOT_YET_DUE_STATUSES
            and purchase["due"] is not None
            and purchase["due"] <= now
        ):
            strict = bool(purchase["purchase"].get("due_strict"))
            set_status(purchase, "expired" if strict else "overdue", int(now))
            return True
        return False

    def get(self, purchase_id: str) -> dict[str, Any]:
        with self.store.transaction():
            return self.require(purchase_id)

    def peek(self, purchase_id: str) -> dict[str, Any]:
        """The stored purchase without applying expiry (control API)."""
        purchase = self.load(purchase_id)
        if purchase is None:
            raise not_found()
        return purchase

    def by_reference(self, reference: str | None) -> list[dict[str, Any]]:
        """Control API: the stored purchases carrying our ``reference`` (oldest first)."""
        if not reference:
            raise general_error("Give ?reference=<your reference>.", "invalid")
        rows = self.store.fetchall(
            "SELECT data FROM purchases WHERE json_extract(data, '$.reference') = ? ORDER BY seq",
            (reference,),
        )
        return [dict(load_json(r["data"])) for r in rows]

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest stored purchases, newest first, read without applying expiry (dashboard)."""
        rows = self.store.fetchall("SELECT data FROM purchases ORDER BY seq DESC LIMIT ?", (limit,))
        return [dict(load_json(r["data"])) for r in rows]

    def view(self, purchase_id: str) -> dict[str, Any]:
        """The checkout page was opened: ``created`` becomes ``viewed`` (event purchase.viewed)."""
        with self.store.transaction():
            purchase = self.require(purchase_id)
            if purchase["status"] == "created":
                now = int(time.time())
                purchase["viewed_on"] = now
                set_status(purchase, "viewed", now)
                self.save(purchase)
                self.sandbox.deliveries.emit(purchase, "purchase.viewed")
            return purchase

    def _open(self, purchase_id: str, action: str) -> dict[str, Any]:
        purchase = self.require(purchase_id)
        if purchase["status"] not in OPEN_PURCHASE_STATUSES:
            raise general_error(
                f"Purchase cannot be {action}: its status is {purchase['status']}.",
                f"purchase_{'cancel' if action == 'cancelled' else 'payment'}_error",
            )
        return purchase

    def pay(self, purchase_id: str) -> dict[str, Any]:
        """A successful payment: status ``paid``, payment filled, ``purchase.paid`` + success_callback."""
        with self.store.transaction():
            purchase = self._open(purchase_id, "paid")
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
            set_status(purchase, "paid", now)
            self.save(purchase)
            self.sandbox.deliveries.emit(
                purchase, "purchase.paid", success_callback=purchase["success_callback"] or None
            )
            return purchase

    def decline(self, purchase_id: str) -> dict[str, Any]:
        """A failed attempt: status ``error`` plus a failed attempt; the purchase can still be paid."""
        with self.store.transaction():
            purchase = self._open(purchase_id, "declined")
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
            set_status(purchase, "error", now)
            self.save(purchase)
            self.sandbox.deliveries.emit(purchase, "purchase.payment_failure")
            return purchase

    def cancel(self, purchase_id: str, *, idempotent: bool = False) -> dict[str, Any]:
        """Cancel an unpaid purchase (``purchase.cancelled``); an already cancelled one is returned
        unchanged when ``idempotent`` (the API), anything else settled is a 400."""
        with self.store.transaction():
            purchase = self.require(purchase_id)
            if idempotent and purchase["status"] == "cancelled":
                return purchase
            purchase = self._open(purchase_id, "cancelled")
            set_status(purchase, "cancelled", int(time.time()))
            self.save(purchase)
            self.sandbox.deliveries.emit(purchase, "purchase.cancelled")
            return purchase

    def expire(self, purchase_id: str) -> dict[str, Any]:
        """Control API: move ``due`` to now, so the purchase becomes ``overdue`` (or ``expired`` with
        ``due_strict``)."""
        with self.store.transaction():
            purchase = self.require(purchase_id)
            if purchase["status"] not in NOT_YET_DUE_STATUSES:
                raise general_error(
                    f"Purchase cannot pass its due date: its status is {purchase['status']}.",
                    "purchase_payment_error",
                )
            purchase["due"] = int(time.time())
            self._expire_if_due(purchase, time.time())
            self.save(purchase)
            return purchase

    def tick(self, now: float) -> None:
        """Unpaid purchases whose ``due`` has passed become overdue or expired."""
        for row in self.store.fetchall(
            "SELECT id FROM purchases WHERE status IN ('created', 'viewed', 'error') AND due <= ?",
            (int(now),),
        ):
            with self.store.transaction():
                self.require(row["id"])
