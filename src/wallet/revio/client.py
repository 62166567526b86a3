"""RevioClient: purchases, the company balance and the public keys over Revio's gateway API.

The gateway pays no bank accounts (it has no `/payouts/`: ../shared/revio-platform/README.md, fact 1);
payouts go through the EFT payments API (wallet.revio.eft, wallet.revio.payouts).

Every call has explicit timeouts and shares one connection pool per process. Reads are retried on
transient failures; creates are retried only when the request certainly never reached Revio, because
Revio documents no idempotency key (a second create would be a second purchase).
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from wallet.revio import breaker
from wallet.revio.contracts import PURCHASE_OUTCOMES, CompanyBalance, Purchase, PurchaseOutcome
from wallet.revio.errors import (
    RevioApiError,
    RevioError,
    RevioOutcomeUnknownError,
    RevioRejectedError,
    RevioUnavailableError,
    errors_summary,
)
from wallet.revio.observed import observed
from wallet.revio.transport import (
    CREATE_ATTEMPTS,
    NOT_SENT,
    READ_ATTEMPTS,
    UNAVAILABLE_STATUSES,
    ApiSettings,
    ClientCache,
    error_details,
    http_client,
    json_answer,
    parse_created,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevioSettings(ApiSettings):
    api_key: str
    brand_id: str


class RevioClient:
    def __init__(self, config: RevioSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = http_client(
            config, headers={"Authorization": f"Bearer {config.api_key}"}, transport=transport
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
        due: int,
    ) -> Purchase:
        """Create a purchase for a deposit; the customer pays it on `checkout_url` until `due` (a unix
        timestamp). With `due_strict` the purchase expires then and can no longer be paid; without it
        Revio would only mark it overdue, still payable (platform fact 2).

        :raises RevioRejectedError: Revio refused it (bad request, bad key).
        :raises RevioUnavailableError: Revio was unreachable or overloaded; nothing was created.
        :raises RevioOutcomeUnknownError: it may have been created.
        """
        body = {
            "brand_id": self.config.brand_id,
            "reference": reference,
            "due": due,
            "client": {"email": email},
            "purchase": {
                "currency": currency,
                "due_strict": True,
                "products": [{"name": "Wallet deposit", "price": amount, "quantity": "1"}],
            },
            "success_redirect": success_redirect,
            "failure_redirect": failure_redirect,
            "cancel_redirect": failure_redirect,
            "success_callback": success_callback,
        }
        return parse_created(_purchase, self._create("purchases/", body))

    def purchase_get(self, purchase_id: str) -> Purchase:
        return _purchase(self._read("GET", f"purchases/{purchase_id}/"))

    def purchase_cancel(self, purchase_id: str) -> Purchase:
        # Cancelling twice is harmless, so it is retried like a read.
        return _purchase(self._read("POST", f"purchases/{purchase_id}/cancel/"))

    # -- the company balance (platform fact 6) --------------------------------------------------------

    def company_balance(self) -> dict[str, CompanyBalance]:
        """What Revio holds for us now, by currency (`GET /account/json/balance/`)."""
        data = self._read("GET", "account/json/balance/")
        return _balances(data)

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
        with observed("gateway", "create"), breaker.guard():
            return self._create_unguarded(path, body)

    def _read(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        with observed("gateway", "read"), breaker.guard():
            return self._read_unguarded(method, path, params)

    def _create_unguarded(self, path: str, body: dict[str, Any]) -> Any:
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                response = self._http.post(path, json=body)
            except NOT_SENT as exc:
                if attempt == CREATE_ATTEMPTS:
                    raise RevioUnavailableError(f"Revio unreachable: {type(exc).__name__}") from exc
                time.sleep(0.2 * attempt)
                continue
            except httpx.HTTPError as exc:  # sent, but no usable answer: it may have been acted on
                raise RevioOutcomeUnknownError(f"no answer from Revio: {type(exc).__name__}") from exc
            return self._parse(response, creating=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_unguarded(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        delay = 0.2
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                response = self._http.request(method, path, params=params)
                return self._parse(response, creating=False)
            except (RevioUnavailableError, RevioOutcomeUnknownError) as exc:
                if attempt == READ_ATTEMPTS:
                    raise
                logger.info("Revio %s %s failed (%s); retrying", method, path, exc)
            except NOT_SENT as exc:
                if attempt == READ_ATTEMPTS:
                    raise RevioUnavailableError(f"Revio unreachable: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                if attempt == READ_ATTEMPTS:
                    raise RevioUnavailableError(f"no answer from Revio: {type(exc).__name__}") from exc
            time.sleep(delay)
            delay *= 2.5
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _parse(response: httpx.Response, *, creating: bool) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return json_answer(response, creating=creating, api="Revio")
        summary, errors = error_details(response, _gateway_errors)
        if errors:
            logger.info("Revio answered %s: %s", status, summary)  # codes and fields, never the messages
        error: type[RevioError]
        if status in UNAVAILABLE_STATUSES:
            error = RevioUnavailableError
        elif 400 <= status < 500:
            error = RevioRejectedError
        elif creating:
            error = RevioOutcomeUnknownError
        else:
            error = RevioUnavailableError
        raise error(f"Revio {status}: {summary}", status=status, errors=errors)


def api_errors(data: Any) -> tuple[RevioApiError, ...]:
    """Revio's error body as our types. The platform answers Django-form style: each key (`__all__` or a
    field; nested objects by field) maps to a list of `{"message", "code"}`; `__all__` sometimes holds a
    single object instead of a list (platform fact 4). Anything else yields no errors."""
    found: list[RevioApiError] = []

    def walk(prefix: str, value: Any) -> None:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and _is_error_object(item):
                found.append(
                    RevioApiError(prefix, str(item.get("code") or ""), str(item.get("message") or ""))
                )
            elif isinstance(item, dict):  # a nested object's own fields
                for key, nested in item.items():
                    walk(f"{prefix}.{key}", nested)
            elif isinstance(item, str):  # a bare message, as DRF answers
                found.append(RevioApiError(prefix, "", item))

    if isinstance(data, dict):
        for key, value in data.items():
            walk(str(key), value)
    return tuple(found)


def _is_error_object(item: dict[str, Any]) -> bool:
    # {"message", "code"}, as opposed to a nested object that happens to have a field called "code".
    parts = [item[key] for key in ("message", "code") if key in item]
    return bool(parts) and all(isinstance(part, str | None) for part in parts)


def _gateway_errors(data: Any, reason: str) -> tuple[str, tuple[RevioApiError, ...]]:
    errors = api_errors(data)
    return (errors_summary(errors) if errors else reason), errors


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


def _balances(data: Any) -> dict[str, CompanyBalance]:
    """`{currency: {balance, fee_sell, reserved, gross_balance, pending_outgoing, available_balance}}`."""
    try:
        return {
            str(currency): CompanyBalance(
                currency=str(currency),
                balance=int(entry["balance"]),
                gross=int(entry["gross_balance"]),
                fees=int(entry.get("fee_sell") or 0),
                reserved=int(entry.get("reserved") or 0),
                pending_outgoing=int(entry.get("pending_outgoing") or 0),
                available=int(entry.get("available_balance", entry["balance"])),
            )
            for currency, entry in data.items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioError(f"unexpected company balance from Revio: {exc!r}") from exc


def revio_settings() -> RevioSettings:
    return RevioSettings(
        base_url=settings.REVIO_BASE_URL,
        api_key=settings.REVIO_API_KEY,
        brand_id=settings.REVIO_BRAND_ID,
        connect_timeout=settings.REVIO_CONNECT_TIMEOUT,
        read_timeout=settings.REVIO_READ_TIMEOUT,
    )


_clients: ClientCache[RevioSettings, RevioClient] = ClientCache(RevioClient)


def get_client() -> RevioClient:
    """The process's client for the configured Revio account (one connection pool per configuration)."""
    return _clients.get(revio_settings())


# -- refunds and what a purchase has given back (issue 16; wallet.transactions.reversals) ------------------


@dataclass(frozen=True)
class PurchaseTakeBack:
    """What Revio's purchase says has gone back to the card: `taken_back` = total - refundable_amount once
    paid (refunds and chargebacks together), 0 before."""

    purchase_id: str
    status: str
    reference: str
    currency: str
    total: int
    refundable: int
    taken_back: int
    # The successful refund and chargeback attempts in `transaction_data.attempts`, by type (INFERRED from
    # the platform's attempt types; what they leave unexplained of taken_back is unattributed).
    refunded: int = 0
    charged_back: int = 0


@dataclass(frozen=True)
class RefundAnswer:
    """Revio's 200 to a refund: a Payment (`payment_id` set, `status` "success"), or the purchase in
    `pending_refund` (`payment_id` None: the refund's Payment and its `payment.refunded` come later)."""

    payment_id: str | None
    status: str
    amount: int


_PAID_OR_AFTER = {"paid", "cleared", "settled", "pending_refund", "refunded", "chargeback"}


def purchase_take_back(client: RevioClient, purchase_id: str) -> PurchaseTakeBack:
    """Re-read a purchase for its refund figures (a read: retried on transient failures)."""
    data = client._read("GET", f"purchases/{purchase_id}/")
    try:
        status = str(data["status"])
        total = int(data["purchase"]["total"])
        refundable = int(data.get("refundable_amount") or 0)
        by_type = {"refund": 0, "chargeback": 0}
        attempts = (data.get("transaction_data") or {}).get("attempts") or []
        for attempt in attempts if isinstance(attempts, list) else []:
            if isinstance(attempt, dict) and attempt.get("successful") and attempt.get("type") in by_type:
                by_type[attempt["type"]] += int(attempt.get("amount") or 0)
        return PurchaseTakeBack(
            purchase_id=str(data["id"]),
            status=status,
            reference=str(data.get("reference") or ""),
            currency=str(data["purchase"].get("currency", "")),
            total=total,
            refundable=refundable,
            taken_back=max(total - refundable, 0) if status in _PAID_OR_AFTER else 0,
            refunded=by_type["refund"],
            charged_back=by_type["chargeback"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioError(f"unexpected purchase object from Revio: {exc!r}") from exc


def purchase_refund(client: RevioClient, purchase_id: str, *, amount: int) -> RefundAnswer:
    """`POST /purchases/{id}/refund/` for `amount` minor units. Not idempotent at Revio, so it is sent like
    a create: again only if it certainly never arrived.

    :raises RevioRejectedError: Revio refused it (400 `purchase_refund_error`: not refundable, too much).
    :raises RevioUnavailableError: Revio was unreachable or overloaded; nothing was refunded.
    :raises RevioOutcomeUnknownError: it may have been refunded (5xx, timeout, an unreadable 2xx).
    """
    data = client._create(f"purchases/{purchase_id}/refund/", {"amount": amount})
    try:
        if data.get("type") == "payment":
            return RefundAnswer(
                payment_id=str(data["id"]), status=str(data["status"]), amount=int(data["amount"])
            )
        return RefundAnswer(payment_id=None, status=str(data["status"]), amount=amount)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioOutcomeUnknownError(f"unreadable answer to a refund: {exc!r}") from exc
