"""Money after a purchase: refunds, chargebacks and the operations the sandbox always refuses.

Evidence (docs/sandbox-guesses.md names it per behaviour): ``POST /purchases/{id}/refund/`` with an
optional ``amount`` answers a **Payment** (revio-platform README fact 3; the platform's C# model
``Payment``: ``related_to`` = ``{type: "purchase", id}``); a refused refund is 400 ``__all__``
``purchase_refund_error``; capture/release/charge refuse with ``purchase_capture_error`` /
``purchase_release_error`` / ``purchase_charge_error`` (the Node SDK's ``PaymentApi`` docs);
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

from revio_sandbox.errors import REQUIRED, ApiError, field_errors, general_error
from revio_sandbox.faults import fault_add, take_refund_fault
from revio_sandbox.purchases import set_status
from revio_sandbox.store import dump_json, load_json
from revio_sandbox.validation import require_object, whole_number

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox


def _amount_option(payload: Any) -> int | None:
    """The optional ``amount`` (minor units, >= 1) of a refund or chargeback body."""
    data = require_object(payload)
    if data.get("amount") is None:
        return None
    amount = whole_number(data["amount"])
    if amount is None:
        raise field_errors({"amount": ["A valid integer is required."]})
    if amount < 1:
        raise field_errors({"amount": ["Ensure this value is greater than or equal to 1."]})
    return amount


class PaymentsApi:
    """Refunds and chargebacks, on the sandbox's store and event machinery."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    # -- refunds and chargebacks ------------------------------------------------------------------

    def refund(self, purchase_id: str, payload: Any) -> dict[str, Any]:
        """``POST /purchases/{id}/refund/``: a Payment (``status: "success"``), or 400
        ``purchase_refund_error``; after ``slow_refunds_next`` the Purchase in ``pending_refund``."""
        amount = _amount_option(payload)
        return self._take_back(purchase_id, amount, kind="refund")

    def slow_refunds_next(self, count: Any, seconds: Any = None) -> dict[str, Any]:
        """Control API: the next ``count`` refunds wait for the acquirer: the API answers the Purchase in
        ``pending_refund`` (event ``purchase.pending_refund``) and the refund completes ``seconds`` later
        (default: the payout delay) with ``payment.refunded``, as README fact 3 / revio-api 2.6 describe."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise general_error("count must be an integer >= 1", "invalid")
        if seconds is None:
            seconds = self.sandbox.settings.payout_delay
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise general_error("seconds must be a number >= 0", "invalid")
        return fault_add(self.store, "refund", {"action": "pending", "count": count, "seconds": seconds})

    def complete_pending(self, payment_id: str, now: float) -> None:
        """A pending refund's acquirer answered: the Payment exists, ``payment.refunded`` goes out and the
        purchase leaves ``pending_refund`` (``refunded`` if nothing is left, else ``paid``)."""
        row = self.store.fetchone("SELECT * FROM payments WHERE id = ? AND status = 'pending'", (payment_id,))
        if row is None:
            return
        stamp = int(now)
        payment = dict(load_json(row["data"]))
        payment["payment"].update(paid_on=stamp, remote_paid_on=stamp)
        payment["updated_on"] = stamp
        history = [*load_json(row["history"]), {"status": "success", "timestamp": stamp}]
        self.store.execute(
            "UPDATE payments SET status = 'done', due_at = NULL, data = ?, history = ? WHERE id = ?",
            (dump_json(payment), dump_json(history), payment_id),
        )
        purchase = self.sandbox.purchases.peek(str(row["purchase_id"]))
        if purchase["status"] == "pending_refund":
            set_status(purchase, "refunded" if not purchase["refundable_amount"] else "paid", stamp)
            self.sandbox.purchases.save(purchase)
        self.sandbox.deliveries.emit(payment, "payment.refunded")

    def tick(self, now: float) -> None:
        """Pending refunds whose acquirer has answered complete, oldest first."""
        for row in self.store.fetchall(
            "SELECT id FROM payments WHERE status = 'pending' AND due_at <= ? ORDER BY due_at", (now,)
        ):
            with self.store.transaction():
                self.complete_pending(row["id"], now)

    def chargeback(self, purchase_id: str, payload: Any) -> dict[str, Any]:
        """Control API: the card holder's bank takes (part of) a paid purchase back."""
        amount = _amount_option(payload)
        return self._take_back(purchase_id, amount, kind="chargeback")

    def _take_back(self, purchase_id: str, amount: int | None, *, kind: str) -> dict[str, Any]:
        code = f"purchase_{kind}_error"
        with self.store.transaction():
            purchase = self.sandbox.purchases.require(purchase_id)
            remaining = int(purchase["refundable_amount"])
            if purchase["status"] != "paid" or remaining < 1:
                raise general_error(
                    f"Purchase cannot take a {kind}: its status is {purchase['status']} and "
                    f"{remaining} is refundable.",
                    code,
                )
            amount = remaining if amount is None else amount
            if amount > remaining:
                raise general_error(
                    f"The {kind} amount {amount} is more than the refundable amount {remaining}.", code
                )
            now = int(time.time())
            slow_rule = take_refund_fault(self.store) if kind == "refund" else None
            slow = slow_rule is not None
            left = remaining - amount
            purchase["refundable_amount"] = left
            purchase["refund_availability"] = "partial_only" if left else "none"
            purchase["transaction_data"]["attempts"].insert(
                0,
                {
                    "type": kind,
                    "successful": True,
                    "amount": amount,
                    "processing_time": now,
                    "error": None,
                },
            )
            purchase["updated_on"] = now
            if slow:
                set_status(purchase, "pending_refund", now)
            elif not left:
                # Fully refunded or charged back: the status says so (README fact 3).
                set_status(purchase, "refunded" if kind == "refund" else "chargeback", now)
            self.sandbox.purchases.save(purchase)
            payment = self._payment_new(purchase, amount, kind=kind, now=now)
            self.store.execute(
                "INSERT INTO payments "
                "(id, purchase_id, kind, amount, currency, status, due_at, data, history) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    payment["id"],
                    purchase_id,
                    kind,
                    amount,
                    payment["payment"]["currency"],
                    "pending" if slow else "done",
                    now + float(slow_rule["seconds"]) if slow_rule is not None else None,
                    dump_json(payment),
                    dump_json([{"status": "pending" if slow else "success", "timestamp": now}]),
                ),
            )
            if slow:
                # The acquirer is still working: the answer is the Purchase, not a Payment (README fact 3).
                self.sandbox.deliveries.emit(purchase, "purchase.pending_refund")
                self.sandbox.on_change()
                return purchase
            self.sandbox.deliveries.emit(
                payment, "payment.refunded" if kind == "refund" else "payment.charged_back"
            )
            return payment

    def _payment_new(self, purchase: dict[str, Any], amount: int, *, kind: str, now: int) -> dict[str, Any]:
        """A Payment object (the platform's C# ``Payment`` model), plus top-level ``status`` and
        ``amount`` as the production plugin reads them (README fact 3)."""
        currency = purchase["purchase"]["currency"]
        return {
            "id": str(uuid.uuid4()),
            "type": "payment",
            "status": "success",
            "amount": amount,
            "is_test": True,
            "brand_id": purchase["brand_id"],
            "company_id": purchase["company_id"],
            "user_id": None,
            "client": copy.deepcopy(purchase["client"]),
            "reference": purchase["reference"],
            "reference_generated": f"SBX{now % 10**8:08d}{secrets.randbelow(100):02d}",
            "related_to": {"type": "purchase", "id": purchase["id"]},
            "payment": {
                "is_outgoing": True,
                # "refund" is in the OpenAPI's TransactionProduct enum; "chargeback" is INFERRED.
                "payment_type": kind,
                "amount": amount,
                "currency": currency,
                "net_amount": amount,
                "fee_amount": 0,
                "pending_amount": 0,
                "pending_unfreeze_on": None,
                "description": "",
                "paid_on": now,
                "remote_paid_on": now,
            },
            "transaction_data": {
                "flow": "api",
                "extra": {},
                "country": purchase["transaction_data"].get("country", ""),
                "attempts": [],
                "payment_method": purchase["transaction_data"].get("payment_method", ""),
            },
            "created_on": now,
            "updated_on": now,
        }

    def payments_for(self, purchase_id: str) -> list[dict[str, Any]]:
        """The purchase's completed refund and chargeback Payments (a pending refund has none yet)."""
        rows = self.store.fetchall(
            "SELECT data FROM payments WHERE purchase_id = ? AND status = 'done' ORDER BY seq", (purchase_id,)
        )
        return [dict(load_json(r["data"])) for r in rows]

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest refunds and chargebacks, pending ones too, each with its status history
        (dashboard). ``status`` is the Payment's: ``pending`` until the acquirer answers, then ``success``."""
        rows = self.store.fetchall("SELECT * FROM payments ORDER BY seq DESC LIMIT ?", (limit,))
        return [
            {
                "id": row["id"],
                "kind": row["kind"],
                "purchase_id": row["purchase_id"],
                "amount": row["amount"],
                "currency": row["currency"],
                "status": "pending" if row["status"] == "pending" else "success",
                "status_history": load_json(row["history"]),
                "payment": load_json(row["data"]),
            }
            for row in rows
        ]

    # -- operations the sandbox cannot perform on its purchases ------------------------------------

    def refuse(self, purchase_id: str, operation: str, payload: Any) -> dict[str, Any]:
        """capture/release need a ``hold`` purchase, charge a recurring token, delete_recurring_token a
        token purchase. The sandbox makes none of those (no skip_capture hold, no saved cards), so a
        known purchase always gets the platform's 400 (unknown ids 404, like every purchase route)."""
        status = self.sandbox.purchases.get(purchase_id)["status"]  # 404 for an unknown id
        if operation == "charge":
            token = require_object(payload).get("recurring_token")
            if token in (None, ""):
                raise field_errors({"recurring_token": [REQUIRED]})
            raise general_error(
                f"Purchase cannot be charged: {token!r} is not a recurring token.", "purchase_charge_error"
            )
        if operation == "delete_recurring_token":
            raise general_error("Purchase is not a recurring token.", "purchase_recurring_token_delete_error")
        raise general_error(
            f"Purchase cannot be {'captured' if operation == 'capture' else 'released'}: its status is "
            f"{status}, not hold.",
            f"purchase_{operation}_error",
        )


__all__ = ["ApiError", "PaymentsApi"]
