"""RevioClient: purchases, payouts and the public key over Revio's gateway API (revio-api.md §1-§3).

Every call has explicit timeouts and shares one connection pool per process. Reads are retried on
transient failures; creates are retried only when the request certainly never reached Revio, because
Revio documents no idempotency key (a second create would be a second purchase or payout).
"""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from django.conf import settings

from wallet.core import metrics
from wallet.revio import breaker
from wallet.revio.contracts import (
    PAYOUT_OUTCOMES,
    PURCHASE_OUTCOMES,
    BankAccount,
    Payout,
    PayoutOutcome,
    Purchase,
    PurchaseOutcome,
)
from wallet.revio.errors import (
    RevioError,
    RevioOutcomeUnknownError,
    RevioRejectedError,
    RevioUnavailableError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Requests that cannot have reached Revio: safe to send again, even a create.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Statuses that mean Revio did nothing with the request.
_UNAVAILABLE_STATUSES = {429, 503}
_READ_ATTEMPTS = 3
_CREATE_ATTEMPTS = 2


@dataclass(frozen=True)
class RevioSettings:
    base_url: str
    api_key: str
    brand_id: str
    connect_timeout: float
    read_timeout: float


class RevioClient:
    def __init__(self, config: RevioSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {config.api_key}",
                "Accept": "application/json",
                "User-Agent": "wallet-backend/1.0",
            },
            timeout=httpx.Timeout(
                config.read_timeout, connect=config.connect_timeout, pool=config.connect_timeout
            ),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            transport=transport,
        )

    # -- purchases (deposits) -------------------------------------------------------------------------

    def purchase_create(
        self,
        *,
        reference: str,
        amount: int,
        currency: str,
        email: str,
        success_redirect: str,
        failure_redirect: str,
        success_callback: str,
    ) -> Purchase:
        """Create a purchase for a deposit; the customer pays it on `checkout_url`.

        :raises RevioRejectedError: Revio refused it (bad request, bad key).
        :raises RevioUnavailableError: Revio was unreachable or overloaded; nothing was created.
        :raises RevioOutcomeUnknownError: it may have been created.
        """
        body = {
            "brand_id": self.config.brand_id,
            "reference": reference,
            "client": {"email": email},
            "purchase": {
                "currency": currency,
                "products": [{"name": "Wallet deposit", "price": amount, "quantity": "1"}],
            },
            "success_redirect": success_redirect,
            "failure_redirect": failure_redirect,
            "cancel_redirect": failure_redirect,
            "success_callback": success_callback,
        }
        return _created(_purchase, self._create("purchases/", body))

    def purchase_get(self, purchase_id: str) -> Purchase:
        return _purchase(self._read("GET", f"purchases/{purchase_id}/"))

    def purchase_cancel(self, purchase_id: str) -> Purchase:
        # Cancelling twice is harmless, so it is retried like a read.
        return _purchase(self._read("POST", f"purchases/{purchase_id}/cancel/"))

    # -- payouts (withdrawals) ------------------------------------------------------------------------

    def payout_create(
        self, *, reference: str, amount: int, currency: str, bank_account: BankAccount, email: str
    ) -> Payout:
        """Ask Revio to pay `amount` out to the bank account. Our withdrawal id is the reference.

        :raises RevioRejectedError: refused (e.g. an invalid account); nothing was created.
        :raises RevioUnavailableError: unreachable or overloaded; nothing was created.
        :raises RevioOutcomeUnknownError: it may have been created: do not send it again.
        """
        body = {
            "brand_id": self.config.brand_id,
            "reference": reference,
            "client": {
                "email": email,
                "full_name": bank_account.account_holder,
                "bank_account": bank_account.account_number,
                "bank_code": bank_account.bank_code,
            },
            "payout": {"amount": amount, "currency": currency, "description": "Wallet withdrawal"},
        }
        return _created(_payout, self._create("payouts/", body))

    def payout_get(self, payout_id: str) -> Payout:
        return _payout(self._read("GET", f"payouts/{payout_id}/"))

    def payouts_find_by_reference(self, reference: str) -> list[Payout]:
        """Payouts carrying our reference. A sandbox extension: real Revio documents no list endpoint,
        so callers must treat RevioRejectedError (404/405) as "cannot look up" and fall back."""
        data = self._read("GET", "payouts/", params={"reference": reference})
        return [_payout(item) for item in data.get("results", [])]

    def public_key(self) -> str:
        """The company public key (PEM) that signs success_callback deliveries."""
        data = self._read("GET", "public_key/")
        if not isinstance(data, str):
            raise RevioError("public_key/ did not return a JSON string")
        # Some copies of the key arrive with literal \n sequences instead of newlines.
        return data.replace("\\n", "\n")

    def webhook_public_key(self, webhook_id: str) -> str:
        """The public key (PEM) of one of our account-level Webhook objects, which signs its deliveries."""
        data = self._read("GET", f"webhooks/{webhook_id}/")
        key = data.get("public_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or "BEGIN PUBLIC KEY" not in key:
            raise RevioError(f"webhooks/{webhook_id}/ has no public_key")
        return key.replace("\\n", "\n")

    # -- transport ------------------------------------------------------------------------------------

    def _create(self, path: str, body: dict[str, Any]) -> Any:
        # The circuit breaker (breaker.py) refuses at once while Revio is down; refused means never sent.
        with _observed("create"), breaker.guard():
            return self._create_unguarded(path, body)

    def _read(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        with _observed("read"), breaker.guard():
            return self._read_unguarded(method, path, params)

    def _create_unguarded(self, path: str, body: dict[str, Any]) -> Any:
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                response = self._http.post(path, json=body)
            except _NOT_SENT as exc:
                if attempt == _CREATE_ATTEMPTS:
                    raise RevioUnavailableError(f"Revio unreachable: {type(exc).__name__}") from exc
                time.sleep(0.2 * attempt)
                continue
            except httpx.HTTPError as exc:  # sent, but no usable answer: it may have been acted on
                raise RevioOutcomeUnknownError(f"no answer from Revio: {type(exc).__name__}") from exc
            return self._parse(response, creating=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_unguarded(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        delay = 0.2
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                response = self._http.request(method, path, params=params)
                return self._parse(response, creating=False)
            except (RevioUnavailableError, RevioOutcomeUnknownError) as exc:
                if attempt == _READ_ATTEMPTS:
                    raise
                logger.info("Revio %s %s failed (%s); retrying", method, path, exc)
            except _NOT_SENT as exc:
                if attempt == _READ_ATTEMPTS:
                    raise RevioUnavailableError(f"Revio unreachable: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                if attempt == _READ_ATTEMPTS:
                    raise RevioUnavailableError(f"no answer from Revio: {type(exc).__name__}") from exc
            time.sleep(delay)
            delay *= 2.5
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _parse(response: httpx.Response, *, creating: bool) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except json.JSONDecodeError as exc:
                if creating:
                    raise RevioOutcomeUnknownError("Revio answered 2xx with a body that is not JSON") from exc
                raise RevioUnavailableError("Revio answered with a body that is not JSON") from exc
        message, code = _error_message(response)
        if status in _UNAVAILABLE_STATUSES:
            raise RevioUnavailableError(f"Revio {status}: {message}", status=status, code=code)
        if 400 <= status < 500:
            raise RevioRejectedError(f"Revio {status}: {message}", status=status, code=code)
        if creating:
            raise RevioOutcomeUnknownError(f"Revio {status}: {message}", status=status, code=code)
        raise RevioUnavailableError(f"Revio {status}: {message}", status=status, code=code)


@contextmanager
def _observed(operation: str) -> Iterator[None]:
    """Count every call to Revio by outcome and add up its time (shared counters, read by /metrics)."""
    started = time.monotonic()
    outcome = "ok"
    try:
        yield
    except RevioRejectedError:
        outcome = "rejected"
        raise
    except RevioUnavailableError:
        outcome = "unavailable"
        raise
    except RevioOutcomeUnknownError:
        outcome = "unknown"
        raise
    except RevioError:
        outcome = "error"
        raise
    finally:
        metrics.increment_many(
            {
                f"revio_calls_{operation}_{outcome}": 1,
                f"revio_call_ms_{operation}": int((time.monotonic() - started) * 1000),
            }
        )


def _error_message(response: httpx.Response) -> tuple[str, str | None]:
    """Revio errors come as {"__all__": [{message, code}]} (or one object), or per field."""
    try:
        data = response.json()
    except json.JSONDecodeError:
        return response.text[:200] or response.reason_phrase, None
    if isinstance(data, dict) and "__all__" in data:
        general = data["__all__"]
        first = general[0] if isinstance(general, list) and general else general
        if isinstance(first, dict):
            return str(first.get("message", "")), first.get("code")
    return json.dumps(data)[:500], None


def _created(parse: Callable[[Any], T], data: Any) -> T:
    """Parse the answer to a create. Revio said 2xx, so something may exist: an answer we cannot read
    is an unknown outcome, never a plain error the caller might treat as "not created"."""
    try:
        return parse(data)
    except RevioError as exc:
        raise RevioOutcomeUnknownError(f"unreadable answer to a create: {exc}") from exc


def _purchase(data: Any) -> Purchase:
    try:
        payment = data.get("payment") or {}
        total = data["purchase"]["total"]
        return Purchase(
            id=str(data["id"]),
            status=str(data["status"]),
            outcome=PURCHASE_OUTCOMES.get(str(data["status"]), PurchaseOutcome.UNKNOWN),
            amount=int(payment.get("amount", total)),
            currency=str(payment.get("currency") or data["purchase"].get("currency", "")),
            reference=str(data.get("reference") or ""),
            checkout_url=str(data.get("checkout_url") or ""),
            updated_on=int(data.get("updated_on") or 0),
            is_test=bool(data.get("is_test", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioError(f"unexpected purchase object from Revio: {exc!r}") from exc


def _payout(data: Any) -> Payout:
    try:
        payment = data.get("payment") or {}
        return Payout(
            id=str(data["id"]),
            status=str(data["status"]),
            outcome=PAYOUT_OUTCOMES.get(str(data["status"]), PayoutOutcome.UNKNOWN),
            amount=int(payment["amount"]),
            currency=str(payment["currency"]),
            reference=str(data.get("reference") or ""),
            updated_on=int(data.get("updated_on") or 0),
            is_test=bool(data.get("is_test", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioError(f"unexpected payout object from Revio: {exc!r}") from exc


def revio_settings() -> RevioSettings:
    return RevioSettings(
        base_url=settings.REVIO_BASE_URL,
        api_key=settings.REVIO_API_KEY,
        brand_id=settings.REVIO_BRAND_ID,
        connect_timeout=settings.REVIO_CONNECT_TIMEOUT,
        read_timeout=settings.REVIO_READ_TIMEOUT,
    )


_clients: dict[RevioSettings, RevioClient] = {}
_clients_lock = threading.Lock()


def get_client() -> RevioClient:
    """The process's client for the configured Revio account (one connection pool per configuration).

    Clients are kept, not evicted: a process has one configuration (tests a few), and an evicted client
    would leave its pooled connections open.
    """
    config = revio_settings()
    client = _clients.get(config)
    if client is None:
        with _clients_lock:
            client = _clients.get(config)
            if client is None:
                client = _clients[config] = RevioClient(config)
    return client
