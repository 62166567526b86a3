"""The sandbox: one brand, one company key, and the components that hold its state.

``Sandbox`` composes them, each a class over the same SQLite store: ``purchases`` (purchases.py),
``payments`` (refunds and chargebacks, payments.py), ``account`` (payment methods and the company
balance, account.py), ``webhooks`` (webhook objects, webhooks.py), ``deliveries`` (the signed delivery
queue, deliveries.py) and ``eft`` (the EFT payments API, eft.py). Every state change is written to SQLite
in one transaction with the deliveries it enqueues, which ``revio_sandbox.worker.DeliveryWorker`` sends in
the background. All methods are synchronous and run on the event-loop thread; none of them awaits inside
a transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from revio_sandbox import keys
from revio_sandbox.account import AccountApi
from revio_sandbox.deliveries import Deliveries
from revio_sandbox.eft import EftApi
from revio_sandbox.errors import ApiError
from revio_sandbox.faults import ENDPOINT_NAMES, HTTP_ACTIONS, WEBHOOK_ACTIONS, fault_list
from revio_sandbox.payments import PaymentsApi
from revio_sandbox.purchases import PurchasesApi
from revio_sandbox.store import STATE_TABLES, Store
from revio_sandbox.webhooks import WebhooksApi

OVERVIEW_LIMIT = 100  # of each kind of object on the dashboard


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
        self.webhooks = WebhooksApi(self)
        self.deliveries = Deliveries(self)
        self.purchases = PurchasesApi(self)
        self.payments = PaymentsApi(self)
        self.account = AccountApi(self)
        self.eft = EftApi(self)

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

    def company_private_key(self) -> str:
        """The key that signs success_callback deliveries (webhook objects have their own)."""
        return self._meta("company_private_key")

    def company_public_key(self) -> str:
        return keys.public_key_pem(self.company_private_key())

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
            self.webhooks.reset(keep=keep_webhooks, regenerate_keys=regenerate_keys)
            self.eft.reset(keep_callbacks=keep_webhooks)
            if regenerate_keys:
                self.store.meta_set("company_private_key", keys.generate_private_key_pem())

    # -- the dashboard ----------------------------------------------------------------------------

    def overview(self, limit: int = OVERVIEW_LIMIT) -> dict[str, Any]:
        """Everything the dashboard shows, newest first (``limit`` of each kind): purchases, refunds and
        chargebacks, EFT payments, deliveries with their attempts, the active faults, the company
        balance, plus the fault actions and endpoint names its fault form offers. No secrets."""
        return {
            "purchases": self.purchases.recent(limit),
            "payments": self.payments.recent(limit),
            "eft_payments": self.eft.payments_recent(limit),
            "deliveries": self.deliveries.recent(limit),
            "faults": fault_list(self.store),
            "balance": self.account.balance({}),
            "fault_catalogue": {
                "http_actions": list(HTTP_ACTIONS),
                "webhook_actions": list(WEBHOOK_ACTIONS),
                "endpoints": list(ENDPOINT_NAMES),
            },
        }

    # -- background steps -------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Run time-driven changes: EFT payment steps, due dates, pending refunds, held deliveries."""
        self.eft.tick(now)
        self.purchases.tick(now)
        self.payments.tick(now)
        self.deliveries.tick(now)

    def next_wakeup(self) -> float | None:
        """The earliest time something is scheduled (a delivery attempt, an EFT step, a pending refund)."""
        row = self.store.fetchone(
            "SELECT MIN(t) AS t FROM ("
            " SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status IN ('pending', 'held')"
            " UNION ALL SELECT MIN(next_step_at) FROM eft_payments WHERE next_step IS NOT NULL"
            " UNION ALL SELECT MIN(due_at) FROM payments WHERE status = 'pending')"
        )
        return None if row is None or row["t"] is None else float(row["t"])


__all__ = ["ApiError", "RuntimeSettings", "Sandbox"]
