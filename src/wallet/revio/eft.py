"""EftClient: Revio's EFT payments API (revio-api.md §3 B) with OAuth2 client-credentials tokens.

Documented: the token endpoint (Basic client_id:secret, form grant_type=client_credentials, answering
{access_token, expires_in, token_type}), a 401 {"statusCode":401,"message":"Unauthorized"} for a bad
token, `POST /v2/payment/eft` and its fields, `POST /v2/clientcallbackurl/`. INFERRED (docs/payouts.md):
the payment object's shape (id, status, amountCents, contractReference, updatedAt), `GET
/v2/payment/eft/{id}`, and the lookup `GET /v2/payment/eft?contractReference=` (a sandbox extension that
real Revio may not have; callers treat a 404/405 as "cannot look up").

Tokens are shared by every process through the Django cache (Redis) until REVIO_EFT_TOKEN_MARGIN_SECONDS
before they expire; a cache lock makes one process fetch while the others wait for its token. A 401 with a
cached token (revoked, or expired early) drops it, fetches a new one once and repeats the request: a 401
means the API did nothing, so even a create is safe to repeat.

Errors keep RevioClient's promises: RevioRejectedError / RevioUnavailableError = nothing was created;
RevioOutcomeUnknownError = a create may have been acted on. For a create only a 4xx in the API's own error
shape is a refusal and only a 429 (or a request that never left) is "unavailable"; a 5xx or a page that is
not the API's is unknown (classify_create_answer, docs/adr/0015). Calls pass through the EFT API's own
circuit breaker (breaker.EFT), apart from the gateway's: an EFT outage never stops purchases.
"""

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

from wallet.revio import breaker
from wallet.revio.contracts import EFT_PAYOUT_OUTCOMES, Payout, PayoutOutcome
from wallet.revio.errors import (
    RevioApiError,
    RevioError,
    RevioOutcomeUnknownError,
    RevioRejectedError,
    RevioUnavailableError,
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
)

logger = logging.getLogger(__name__)

# The EFT API moves only rand; its payment object carries no currency (INFERRED from amountCents).
EFT_CURRENCY = "ZAR"


@dataclass(frozen=True)
class EftSettings(ApiSettings):
    token_url: str
    client_id: str
    client_secret: str
    token_margin: int
    token_lock_seconds: int


class EftClient:
    def __init__(self, config: EftSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = http_client(config, headers={}, transport=transport)  # the token goes per request
        digest = hashlib.sha256(f"{config.token_url}|{config.client_id}".encode()).hexdigest()[:16]
        self._token_key = f"revio:eft:token:{digest}"
        self._lock_key = f"revio:eft:token-lock:{digest}"

    # -- payments -------------------------------------------------------------------------------------

    def payment_create(self, body: dict[str, Any]) -> Any:
        """`POST /v2/payment/eft`.

        :raises RevioRejectedError: refused (a 4xx in the API's error shape); nothing was created.
        :raises RevioUnavailableError: never sent, or rate-limited (429); nothing was created.
        :raises RevioOutcomeUnknownError: it may have been created (5xx, timeout, reset, a proxy's page):
            do not send it again, and do not refund it.
        """
        with observed("eft", "create"), breaker.guard(breaker.EFT):
            return self._call("POST", "v2/payment/eft", json_body=body, creating=True)

    def payment_get(self, payment_id: str) -> Any:
        """`GET /v2/payment/eft/{id}` (path INFERRED)."""
        with observed("eft", "read"), breaker.guard(breaker.EFT):
            return self._call("GET", f"v2/payment/eft/{_path_safe(payment_id)}", creating=False)

    def payments_find(self, contract_reference: str) -> list[Any]:
        """Payments carrying our contractReference (a SANDBOX EXTENSION; see the module docstring)."""
        with observed("eft", "read"), breaker.guard(breaker.EFT):
            data = self._call(
                "GET", "v2/payment/eft", params={"contractReference": contract_reference}, creating=False
            )
        results = data.get("results") if isinstance(data, dict) else data
        return list(results) if isinstance(results, list) else []

    def callback_register(self, url: str) -> Any:
        """Register `url` for EFT_PAYMENT callbacks (`POST /v2/clientcallbackurl/`, documented)."""
        body = {
            "clientId": self.config.client_id,
            "url": url,
            "callbackType": "EFT_PAYMENT",
            "callbackVersion": "V2",
        }
        with observed("eft", "read"), breaker.guard(breaker.EFT):
            # Registering twice is harmless, so it is retried like a read.
            return self._call("POST", "v2/clientcallbackurl/", json_body=body, creating=False)

    # -- transport ------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        creating: bool,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        token = self.access_token()
        response = self._send(method, path, token, creating=creating, json_body=json_body, params=params)
        if response.status_code == 401:
            # Revoked or expired early: the request did nothing. One fresh token, one more try.
            logger.info("EFT API answered 401; refreshing the access token once")
            token = self.access_token(stale=token)
            response = self._send(method, path, token, creating=creating, json_body=json_body, params=params)
        return _parse(response, creating=creating)

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        *,
        creating: bool,
        json_body: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        attempts = CREATE_ATTEMPTS if creating else READ_ATTEMPTS
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(method, path, json=json_body, params=params, headers=headers)
            except NOT_SENT as exc:
                if attempt == attempts:
                    raise RevioUnavailableError(f"EFT API unreachable: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                if creating:  # sent, but no usable answer: it may have been acted on
                    raise RevioOutcomeUnknownError(
                        f"no answer from the EFT API: {type(exc).__name__}"
                    ) from exc
                if attempt == attempts:
                    raise RevioUnavailableError(f"no answer from the EFT API: {type(exc).__name__}") from exc
            else:
                retryable = response.status_code in UNAVAILABLE_STATUSES or response.status_code >= 500
                if creating or not retryable or attempt == attempts:
                    return response
            time.sleep(delay)
            delay *= 2.5
        raise AssertionError("unreachable")  # pragma: no cover

    # -- tokens ---------------------------------------------------------------------------------------

    def access_token(self, *, stale: str | None = None) -> str:
        """A valid access token, other than `stale`: the shared cached one, or a new one fetched by
        one process at a time (the others wait for it, up to REVIO_EFT_TOKEN_LOCK_SECONDS)."""
        try:
            if stale is not None:
                _delete_if_equal(self._token_key, stale)
            cached = cache.get(self._token_key)
            if cached and cached != stale:
                return str(cached)
            holder = secrets.token_hex(8)
            deadline = time.monotonic() + self.config.token_lock_seconds
            while time.monotonic() < deadline:
                if cache.add(self._lock_key, holder, timeout=self.config.token_lock_seconds):
                    try:
                        cached = cache.get(self._token_key)  # fetched while this process waited
                        if cached and cached != stale:
                            return str(cached)
                        return self._fetch_and_cache()
                    finally:
                        _delete_if_equal(self._lock_key, holder)
                time.sleep(0.05)
                cached = cache.get(self._token_key)
                if cached and cached != stale:
                    return str(cached)
            logger.warning("EFT token lock held too long; fetching a token without it")
        except RevioError:
            raise
        except Exception:  # the cache is down: a token per call is slower, never wrong
            logger.warning("EFT token cache unavailable; fetching a token directly", exc_info=True)
            return self._fetch_token()[0]
        return self._fetch_and_cache()

    def _fetch_and_cache(self) -> str:
        token, expires_in = self._fetch_token()
        ttl = expires_in - self.config.token_margin
        if ttl <= 0:  # a short-lived token: keep it for half its life
            ttl = max(1, expires_in // 2)
        cache.set(self._token_key, token, timeout=ttl)
        return token

    def _fetch_token(self) -> tuple[str, int]:
        """OAuth2 client credentials. Idempotent, so retried like a read.

        :raises RevioRejectedError: the credentials were refused.
        :raises RevioUnavailableError: the token endpoint did not answer usefully.
        """
        delay = 0.2
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                response = self._http.post(
                    self.config.token_url,
                    data={"grant_type": "client_credentials"},
                    auth=(self.config.client_id, self.config.client_secret),
                )
            except httpx.HTTPError as exc:
                if attempt == READ_ATTEMPTS:
                    raise RevioUnavailableError(f"EFT token endpoint: {type(exc).__name__}") from exc
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _token_from(response)
                if 400 <= status < 500 and status != 429:
                    raise RevioRejectedError(
                        f"EFT token endpoint refused our credentials ({status})", status=status, code="token"
                    )
                if attempt == READ_ATTEMPTS:
                    raise RevioUnavailableError(f"EFT token endpoint answered {status}", status=status)
            time.sleep(delay)
            delay *= 2.5
        raise AssertionError("unreachable")  # pragma: no cover

    def forget_token(self) -> None:
        cache.delete(self._token_key)


def _delete_if_equal(key: str, value: str) -> None:
    # Not atomic, but the worst case is one extra token fetch, never a wrong answer.
    if cache.get(key) == value:
        cache.delete(key)


def _token_from(response: httpx.Response) -> tuple[str, int]:
    try:
        data = response.json()
        token = data["access_token"]
        expires_in = int(data.get("expires_in") or 3600)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioUnavailableError("EFT token endpoint answered without a usable token") from exc
    if not isinstance(token, str) or not token:
        raise RevioUnavailableError("EFT token endpoint answered without a usable token")
    return token, expires_in


def _path_safe(payment_id: str) -> str:
    """Payment ids are put into a URL path: anything but a plain id is refused before sending."""
    if not payment_id or len(payment_id) > 64 or not all(c.isalnum() or c == "-" for c in payment_id):
        raise RevioRejectedError(f"not an EFT payment id: {payment_id[:70]!r}", status=404, code="bad_id")
    return payment_id


def _parse(response: httpx.Response, *, creating: bool) -> Any:
    status = response.status_code
    if 200 <= status < 300:
        return json_answer(response, creating=creating, api="the EFT API")
    summary, errors = error_details(response, _eft_errors)
    error = classify_create_answer(response) if creating else _classify_read_answer(status)
    raise error(f"EFT API {status}: {summary}", status=status, errors=errors)


def classify_create_answer(response: httpx.Response) -> type[RevioError]:
    """What a non-2xx answer to a create proves (docs/adr/0015-provider-answer-classification.md).

    Only a definite refusal by the platform itself proves "not created": a 4xx whose body is the EFT API's
    error object. A 429 is a rate limit applied before anything is done: not created, send later. Every
    other answer (any 5xx, 502/503/504 with or without Retry-After, and any body not in the platform's
    shape, such as a proxy's HTML page) may have come after the payment was made: unknown.
    """
    status = response.status_code
    if status == 429:
        return RevioUnavailableError
    if 400 <= status < 500 and _is_platform_error(response):
        return RevioRejectedError
    return RevioOutcomeUnknownError


def _classify_read_answer(status: int) -> type[RevioError]:
    # A read changes nothing, so a refusal is final only for a 4xx; anything else is worth asking again.
    if status in UNAVAILABLE_STATUSES or not 400 <= status < 500:
        return RevioUnavailableError
    return RevioRejectedError


def _is_platform_error(response: httpx.Response) -> bool:
    """Whether the body is the EFT API's own error object `{"statusCode": <the status>, "message": str}`
    (documented for 401; per-field `errors` INFERRED), as opposed to a proxy's or load balancer's page."""
    if "json" not in response.headers.get("content-type", ""):
        return False
    try:
        data = response.json()
    except json.JSONDecodeError:
        return False
    return (
        isinstance(data, dict)
        and data.get("statusCode") == response.status_code
        and isinstance(data.get("message"), str)
    )


def _eft_errors(data: Any, reason: str) -> tuple[str, tuple[RevioApiError, ...]]:
    """{"statusCode", "message"} (documented for 401), plus per-field `errors` (INFERRED). The summary
    names fields only: a message can echo the creditor's account number."""
    if not isinstance(data, dict):
        return reason, ()
    listed = data.get("errors")
    errors = tuple(
        RevioApiError(str(e.get("field") or "__all__"), str(e.get("code") or ""), str(e.get("message") or ""))
        for e in (listed if isinstance(listed, list) else [])
        if isinstance(e, dict)
    )
    if not errors and isinstance(data.get("message"), str):
        errors = (RevioApiError("__all__", "", data["message"]),)
    fields = sorted({e.field for e in errors} - {"__all__"})[:10]
    return reason + (f" (invalid: {', '.join(fields)})" if fields else ""), errors


def eft_payout(data: Any) -> Payout:
    """Our Payout from an EFT payment object (shape INFERRED: id, status, amountCents,
    contractReference, updatedAt as ISO-8601)."""
    try:
        status = str(data["status"])
        updated = data.get("updatedAt") or data.get("createdAt")
        updated_on = (
            int(datetime.fromisoformat(str(updated).replace("Z", "+00:00")).timestamp()) if updated else 0
        )
        return Payout(
            id=str(data["id"]),
            status=status,
            outcome=EFT_PAYOUT_OUTCOMES.get(status, PayoutOutcome.UNKNOWN),
            amount=int(data["amountCents"]),
            currency=EFT_CURRENCY,
            reference=str(data.get("contractReference") or ""),
            updated_on=updated_on,
            is_test=False,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RevioError(f"unexpected EFT payment object: {exc!r}") from exc


def eft_settings() -> EftSettings:
    return EftSettings(
        base_url=settings.REVIO_EFT_BASE_URL,
        token_url=settings.REVIO_EFT_TOKEN_URL,
        client_id=settings.REVIO_EFT_CLIENT_ID,
        client_secret=settings.REVIO_EFT_CLIENT_SECRET,
        connect_timeout=settings.REVIO_CONNECT_TIMEOUT,
        read_timeout=settings.REVIO_READ_TIMEOUT,
        token_margin=settings.REVIO_EFT_TOKEN_MARGIN_SECONDS,
        token_lock_seconds=settings.REVIO_EFT_TOKEN_LOCK_SECONDS,
    )


_clients: ClientCache[EftSettings, EftClient] = ClientCache(EftClient)


def get_eft_client() -> EftClient:
    """The process's EFT client for the configured credentials (one connection pool per configuration)."""
    return _clients.get(eft_settings())
