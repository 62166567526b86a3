"""What the company account offers and holds: payment methods and the balance.

Evidence (docs/sandbox-guesses.md): ``GET /payment_methods/`` answers ``available_payment_methods`` and
friends (PHP SDK ``PaymentMethods``); ``GET /account/json/balance/`` answers a map of currency to Balance
(the OpenAPI ``BalanceByCurrency``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from revio_sandbox.errors import REQUIRED, field_errors
from revio_sandbox.store import load_json

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox

# The card brands the sandbox's checkout pays with (it fills payment_method "visa").
CARD_METHODS = ("mastercard", "visa")
METHOD_NAMES = {"mastercard": "Mastercard", "visa": "Visa"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# EFT payment states and what they mean for the company balance (INFERRED: the OpenAPI Balance has a
# `pending_outgoing`, "amount currently pending withdrawal"; docs/sandbox-guesses.md "Balance").
EFT_PENDING = ("NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "CUTOFF")
EFT_PAID_OUT = ("COMPLETED", "DISPUTED")
EFT_CURRENCY = "ZAR"  # the EFT API moves rand only (amountCents)


class AccountApi:
    """Payment methods and the company balance, read from the sandbox's store."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    def payment_methods(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /payment_methods/?brand_id=&currency=``: the card methods the sandbox's checkout offers.
        The filters ``recurring``, ``skip_capture`` and ``preauthorization`` leave none (it has neither)."""
        errors: dict[str, Any] = {}
        brand_id = (query.get("brand_id") or [""])[0]
        currency = (query.get("currency") or [""])[0]
        if not brand_id:
            errors["brand_id"] = [REQUIRED]
        elif brand_id != self.sandbox.brand_id:
            errors["brand_id"] = [f'Invalid pk "{brand_id}" - object does not exist.']
        if not currency:
            errors["currency"] = [REQUIRED]
        elif not _CURRENCY.match(currency):
            errors["currency"] = ['Currency must be an ISO 4217 code such as "ZAR".']
        if errors:
            raise field_errors(errors)
        wanted = {
            key for key in ("recurring", "skip_capture", "preauthorization") if query.get(key) == ["true"]
        }
        methods = [] if wanted else list(CARD_METHODS)
        return {
            "available_payment_methods": methods,
            "by_country": {"any": methods},
            "country_names": {"any": "Other"},
            "names": {m: METHOD_NAMES[m] for m in methods},
            "card_methods": methods,
        }

    def balance(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /account/json/balance/``: the company balance by currency.

        Moved by paid purchases (gross +amount, fee_sell +fee), refunds and chargebacks (gross -), and
        EFT payments (pending_outgoing while open, gross - once COMPLETED, nothing once failed or
        returned). ``from``/``to`` (a past balance) are not supported: 400 rather than a wrong figure.
        """
        unsupported: dict[str, Any] = {
            key: ["The sandbox cannot answer a past balance."] for key in ("from", "to") if key in query
        }
        if unsupported:
            raise field_errors(unsupported)
        sums: dict[str, dict[str, int]] = {}

        def bucket(currency: str) -> dict[str, int]:
            return sums.setdefault(currency, {"gross": 0, "fee": 0, "pending": 0})

        for row in self.store.fetchall("SELECT data FROM purchases"):
            payment = load_json(row["data"]).get("payment")
            if payment:
                entry = bucket(payment["currency"])
                entry["gross"] += int(payment["amount"])
                entry["fee"] += int(payment["fee_amount"])
        for row in self.store.fetchall("SELECT currency, amount FROM payments WHERE status = 'done'"):
            bucket(row["currency"])["gross"] -= int(row["amount"])
        for row in self.store.fetchall("SELECT status, data FROM eft_payments"):
            amount = int(load_json(row["data"])["amountCents"])
            if row["status"] in EFT_PENDING:
                bucket(EFT_CURRENCY)["pending"] += amount
            elif row["status"] in EFT_PAID_OUT:
                bucket(EFT_CURRENCY)["gross"] -= amount
        currencies = query.get("currency") or sorted(sums)
        result: dict[str, Any] = {}
        for currency in currencies:
            entry = sums.get(currency, {"gross": 0, "fee": 0, "pending": 0})
            balance = entry["gross"] - entry["fee"]
            result[currency] = {
                "balance": balance,
                "fee_sell": entry["fee"],
                "reserved": 0,
                "gross_balance": entry["gross"],
                "pending_outgoing": entry["pending"],
                "available_balance": balance - entry["pending"],
            }
        return result
