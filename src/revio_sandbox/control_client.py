"""A typed client for the sandbox's control API (``/_sandbox/``), kept stable for the backend's tests
(``revio_sandbox.testing`` re-exports it next to ``SandboxProcess``; see docs/sandbox.md)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Literal, TypedDict

import httpx

ErrorStatus = Literal[429, 500, 502, 503, 504]
WebhookFaultAction = Literal["duplicate", "reorder", "delay", "drop", "bad_signature", "reserialize"]


class DeliveryAttempt(TypedDict):
    attempted_at: float
    url: str
    status_code: int | None
    error: str | None
    duration_ms: float
    signature: str
    # The headers sent, and the receiver's answer (headers, first 4 KiB of the body); None when no
    # answer came or the attempt predates them.
    request_headers: dict[str, str] | None
    response_headers: dict[str, str] | None
    response_body: str | None


class Delivery(TypedDict):
    """One event queued for one receiver (a webhook object or a success_callback)."""

    id: int
    object_id: str
    object_type: str
    event_type: str
    target: Literal["webhook", "callback", "eft"]
    webhook_id: str | None
    url: str
    status: Literal["pending", "held", "delivered", "failed", "dropped", "cancelled"]
    attempt_count: int
    next_attempt_at: float
    created_at: float
    finished_at: float | None
    faults: list[str]
    replay_of: int | None
    body: str
    signed_body: str | None
    attempts: list[DeliveryAttempt]


CONTROL_TOKEN_ENV = "REVIO_SANDBOX_CONTROL_TOKEN"


class SandboxControl:
    """Typed client for the sandbox control API (``/_sandbox/``). No API key is needed; when the
    sandbox runs with a control token, pass it (or set ``REVIO_SANDBOX_CONTROL_TOKEN``) and it is sent as
    ``Authorization: Bearer``."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        token = token if token is not None else os.environ.get(CONTROL_TOKEN_ENV) or None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=f"{self.base_url}/_sandbox/", timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    # -- state -------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "health"))

    def config(self) -> dict[str, Any]:
        """base_url, api_url, api_key, brand_id, company_id, company_public_key, time_scale, ..."""
        return dict(self._call("GET", "config"))

    def reset(self, *, regenerate_keys: bool = False, keep_webhooks: bool = False) -> None:
        """Delete purchases, payments, EFT payments, deliveries, faults (and webhooks unless kept). Keys
        stay unless ``regenerate_keys``; the api key and brand id always stay."""
        self._call("POST", "reset", json={"regenerate_keys": regenerate_keys, "keep_webhooks": keep_webhooks})

    # -- HTTP faults on the API ------------------------------------------------------------------

    def add_http_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a raw HTTP fault rule (see docs/sandbox.md); returns it with its ``id``."""
        return dict(self._call("POST", "faults/http", json=spec))

    def fail_next(
        self,
        endpoint: str,
        *,
        status: ErrorStatus | int = 500,
        count: int = 1,
        retry_after: int | None = None,
        html: bool = False,
    ) -> dict[str, Any]:
        """The next ``count`` calls to ``endpoint`` (a name like ``"purchases.create"``, or a pattern like
        ``"POST /api/v1/purchases/*"``; EFT names start with ``eft.``) answer ``status``; 429/503 carry
        ``Retry-After``."""
        return self._add_error_fault(endpoint, "error", status, count, retry_after, html)

    def error_after_next(
        self,
        endpoint: str,
        status: ErrorStatus | int = 502,
        *,
        count: int = 1,
        retry_after: int | None = None,
        html: bool = False,
        body: str | None = None,
    ) -> dict[str, Any]:
        """The next ``count`` calls to ``endpoint`` are processed in full (the object is created and its
        events go out) and then answer ``status`` instead: e.g. a 504 proxy page after the create
        succeeded. ``body`` is sent as is (``text/html`` with ``html``, else JSON)."""
        return self._add_error_fault(endpoint, "error_after", status, count, retry_after, html, body)

    def _add_error_fault(
        self,
        endpoint: str,
        action: str,
        status: int,
        count: int,
        retry_after: int | None,
        html: bool,
        body: str | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"action": action, "status": status, "count": count, "html": html}
        if retry_after is not None:
            spec["retry_after"] = retry_after
        if body is not None:
            spec["body"] = body
        return self.add_http_fault({**_endpoint_spec(endpoint), **spec})

    def hang_next(
        self, endpoint: str, *, seconds: float, then: Literal["drop", "answer"] = "drop", count: int = 1
    ) -> dict[str, Any]:
        """Hang before processing: nothing happens for ``seconds``; then drop the connection unanswered
        (the request had no effect) or process it and answer late."""
        spec = {"action": "hang", "seconds": seconds, "then": then, "count": count}
        return self.add_http_fault({**_endpoint_spec(endpoint), **spec})

    def slow_next(self, endpoint: str, *, delay_ms: int, count: int = 1) -> dict[str, Any]:
        """Answer normally, after ``delay_ms``."""
        return self.add_http_fault(
            {**_endpoint_spec(endpoint), "action": "slow", "delay_ms": delay_ms, "count": count}
        )

    def timeout_after_processing(
        self, endpoint: str, *, seconds: float, then: Literal["drop", "answer"] = "drop", count: int = 1
    ) -> dict[str, Any]:
        """Process the request (it takes effect), then hang ``seconds`` and drop or answer late."""
        spec = {"action": "hang_after", "seconds": seconds, "then": then, "count": count}
        return self.add_http_fault({**_endpoint_spec(endpoint), **spec})

    # -- webhook delivery faults -----------------------------------------------------------------

    def add_webhook_fault(
        self,
        action: WebhookFaultAction,
        *,
        count: int = 1,
        event_type: str | None = None,
        object_id: str | None = None,
        target: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Apply ``action`` to the next ``count`` matching events. ``event_type`` may be a glob
        (``"purchase.*"``); ``target`` is ``"webhook"``, ``"callback"`` or a webhook id. Options:
        ``copies`` (duplicate), ``hold_seconds`` (reorder), ``delay_ms`` (delay),
        ``signed_over`` = ``"sent"``/``"original"`` (reserialize)."""
        spec = {
            "action": action,
            "count": count,
            "event_type": event_type,
            "object_id": object_id,
            "target": target,
            **options,
        }
        return dict(self._call("POST", "faults/webhooks", json=spec))

    def duplicate_next_event(self, **filters: Any) -> dict[str, Any]:
        return self.add_webhook_fault("duplicate", **filters)

    def reorder_next_event(self, **filters: Any) -> dict[str, Any]:
        """Hold the next matching event back and send it right after the following one."""
        return self.add_webhook_fault("reorder", **filters)

    def delay_next_event(self, delay_ms: int, **filters: Any) -> dict[str, Any]:
        return self.add_webhook_fault("delay", delay_ms=delay_ms, **filters)

    def drop_next_event(self, **filters: Any) -> dict[str, Any]:
        return self.add_webhook_fault("drop", **filters)

    def bad_signature_next_event(self, **filters: Any) -> dict[str, Any]:
        return self.add_webhook_fault("bad_signature", **filters)

    def reserialize_next_event(
        self, signed_over: Literal["sent", "original"] = "sent", **filters: Any
    ) -> dict[str, Any]:
        """Send compact ``json.dumps`` bytes instead of jsonb text, signed over the bytes sent
        (a correct receiver accepts) or over the original jsonb bytes (a correct receiver rejects)."""
        return self.add_webhook_fault("reserialize", signed_over=signed_over, **filters)

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "faults")["results"])

    def clear_faults(self) -> int:
        return int(self._call("DELETE", "faults")["deleted"])

    def delete_fault(self, fault_id: int) -> None:
        self._call("DELETE", f"faults/{fault_id}")

    # -- settling objects without a browser ------------------------------------------------------

    def purchase(self, purchase_id: str) -> dict[str, Any]:
        """The stored purchase, read without side effects (the API would expire a past-due one)."""
        return dict(self._call("GET", f"purchases/{purchase_id}"))

    def purchases_by_reference(self, reference: str) -> list[dict[str, Any]]:
        """The stored purchases whose ``reference`` is ours (what a lookup after a lost answer needs)."""
        return list(self._call("GET", "purchases", params={"reference": reference})["results"])

    def purchase_refund(self, purchase_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund ``amount`` (default: all that is left) as the platform's dashboard would: the API's
        refund without the API's faults; answers the Payment (``payment.refunded`` is sent) or, after
        ``slow_refunds_next``, the Purchase in ``pending_refund``."""
        body = {} if amount is None else {"amount": amount}
        return dict(self._call("POST", f"purchases/{purchase_id}/refund", json=body))

    def purchase_chargeback(self, purchase_id: str, amount: int | None = None) -> dict[str, Any]:
        """The card holder's bank takes ``amount`` (default: all that is left) back from a paid purchase:
        returns the Payment (``payment.charged_back`` is sent; a full one moves the purchase to
        ``chargeback``)."""
        body = {} if amount is None else {"amount": amount}
        return dict(self._call("POST", f"purchases/{purchase_id}/chargeback", json=body))

    def slow_refunds_next(self, count: int = 1, *, seconds: float | None = None) -> dict[str, Any]:
        """The next ``count`` refunds answer the Purchase in ``pending_refund`` (``purchase.pending_refund``)
        and complete ``seconds`` later (default: the payout delay) with ``payment.refunded``."""
        body: dict[str, Any] = {"count": count}
        if seconds is not None:
            body["seconds"] = seconds
        return dict(self._call("POST", "refunds/slow_next", json=body))

    def purchase_payments(self, purchase_id: str) -> list[dict[str, Any]]:
        """The refund and chargeback Payments of a purchase (oldest first)."""
        return list(self._call("GET", f"purchases/{purchase_id}/payments")["results"])

    def purchase_pay(self, purchase_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"purchases/{purchase_id}/pay"))

    def purchase_decline(self, purchase_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"purchases/{purchase_id}/decline"))

    def purchase_cancel(self, purchase_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"purchases/{purchase_id}/cancel"))

    def purchase_expire(self, purchase_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"purchases/{purchase_id}/expire"))

    def purchase_view(self, purchase_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"purchases/{purchase_id}/view"))

    # -- the EFT payments API ----------------------------------------------------------------------

    def eft_state(self) -> dict[str, Any]:
        """``token_requests`` (counted since the last reset), ``live_tokens``, ``token_lifetime`` and the
        registered ``callbacks``."""
        return dict(self._call("GET", "eft"))

    def eft_set_token_lifetime(self, seconds: int) -> None:
        """Tokens issued from now on expire after ``seconds`` (default 86400)."""
        self._call("POST", "eft/token_lifetime", json={"seconds": seconds})

    def eft_revoke_tokens(self) -> int:
        """Every token issued so far answers 401 from now on."""
        return int(self._call("POST", "eft/tokens/revoke")["revoked"])

    def eft_payment(self, payment_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"eft/payments/{payment_id}"))

    def eft_payments_by_reference(self, contract_reference: str) -> list[dict[str, Any]]:
        """The EFT payments carrying ``contractReference`` (oldest first)."""
        params = {"contractReference": contract_reference}
        return list(self._call("GET", "eft/payments", params=params)["results"])

    def eft_payment_succeed(self, payment_id: str) -> dict[str, Any]:
        """Walk the rest of NEW -> QUEUED -> SUBMITTED -> ACCEPTED -> COMPLETED, a callback per state."""
        return dict(self._call("POST", f"eft/payments/{payment_id}/succeed"))

    def eft_payment_fail(self, payment_id: str) -> dict[str, Any]:
        """An open payment ends in TRANSACTION_FAILURE."""
        return dict(self._call("POST", f"eft/payments/{payment_id}/fail"))

    def eft_payment_return(self, payment_id: str) -> dict[str, Any]:
        """A COMPLETED payment becomes UNPAID (the bank returned it)."""
        return dict(self._call("POST", f"eft/payments/{payment_id}/return"))

    def eft_payment_set_status(self, payment_id: str, status: str) -> dict[str, Any]:
        """Force any EFT state (DISPUTED, VALIDATION_FAILURE, INTERNAL_FAILURE, CUTOFF, ...)."""
        return dict(self._call("POST", f"eft/payments/{payment_id}/status", json={"status": status}))

    def eft_delete_callbacks(self, url_prefix: str | None = None) -> int:
        params = {"url_prefix": url_prefix} if url_prefix is not None else {}
        return int(self._call("DELETE", "eft/callbacks", params=params)["deleted"])

    # -- deliveries and keys -----------------------------------------------------------------------

    def deliveries(
        self,
        *,
        object_id: str | None = None,
        event_type: str | None = None,
        status: str | None = None,
        target: str | None = None,
    ) -> list[Delivery]:
        params = {
            k: v
            for k, v in {
                "object_id": object_id,
                "event_type": event_type,
                "status": status,
                "target": target,
            }.items()
            if v is not None
        }
        return list(self._call("GET", "deliveries", params=params)["results"])

    def delivery(self, delivery_id: int) -> Delivery:
        result: Delivery = self._call("GET", f"deliveries/{delivery_id}")
        return result

    def wait_for_deliveries(
        self,
        predicate: Callable[[list[Delivery]], bool],
        *,
        timeout: float = 10.0,
        interval: float = 0.05,
        **filters: Any,
    ) -> list[Delivery]:
        """Poll ``deliveries(**filters)`` until ``predicate`` holds; raise ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.deliveries(**filters)
            if predicate(found):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"deliveries never matched; last seen: {[(d['event_type'], d['status']) for d in found]}"
                )
            time.sleep(interval)

    def wait_for_delivery(
        self,
        *,
        object_id: str | None = None,
        event_type: str | None = None,
        status: str = "delivered",
        timeout: float = 10.0,
    ) -> Delivery:
        """Wait until one delivery matching the filters reaches ``status`` and return it."""
        found = self.wait_for_deliveries(
            lambda ds: any(d["status"] == status for d in ds),
            timeout=timeout,
            object_id=object_id,
            event_type=event_type,
        )
        return next(d for d in found if d["status"] == status)

    def replay_delivery(self, delivery_id: int) -> Delivery:
        """Send a recorded delivery again with its original body and signature."""
        result: Delivery = self._call("POST", f"deliveries/{delivery_id}/replay")
        return result

    def resend_delivery(self, delivery_id: int) -> Delivery:
        """Attempt a delivery once more now, whatever its status, signed with its target's current key
        (the new attempt joins the same delivery's attempts)."""
        result: Delivery = self._call("POST", f"deliveries/{delivery_id}/resend")
        return result

    def overview(self) -> dict[str, Any]:
        """What the dashboard shows: newest purchases, payments (refunds, chargebacks), EFT payments,
        deliveries, the active faults and the company balance."""
        return dict(self._call("GET", "overview"))

    def retry_deliveries_now(self) -> int:
        """Make every waiting retry due now (skips the rest of the backoff)."""
        return int(self._call("POST", "deliveries/retry_now")["updated"])

    def rotate_company_key(self) -> str:
        """New company key pair; returns the new public PEM (``GET /public_key/`` serves it too)."""
        return str(self._call("POST", "keys/company/rotate")["public_key"])

    def rotate_webhook_key(self, webhook_id: str) -> str:
        """New key pair for one webhook; returns its new public PEM."""
        return str(self._call("POST", f"webhooks/{webhook_id}/rotate_key")["public_key"])


def _endpoint_spec(endpoint: str) -> dict[str, str]:
    return {"match": endpoint} if " " in endpoint else {"endpoint": endpoint}
