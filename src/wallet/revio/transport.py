"""What the two Revio clients (the gateway's RevioClient, the EFT API's EftClient) share: their settings'
common fields, one pooled HTTP client per configuration and process, the attempt counts, and how a 2xx
body and an error body are read. What an answer *means* stays with each client: the two APIs answer
errors in different shapes and classify a create's failures differently (docs/adr/0015).
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from wallet.revio.errors import RevioApiError, RevioError, RevioOutcomeUnknownError, RevioUnavailableError

# Requests that cannot have reached Revio: safe to send again, even a create.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Statuses that mean Revio did nothing with the request.
UNAVAILABLE_STATUSES = frozenset({429, 503})
READ_ATTEMPTS = 3
CREATE_ATTEMPTS = 2  # only when the first certainly never left (NOT_SENT)


@dataclass(frozen=True)
class ApiSettings:
    """Where an API is and how long to wait for it; each client's settings add their credentials."""

    base_url: str
    connect_timeout: float
    read_timeout: float


def http_client(
    config: ApiSettings, *, headers: dict[str, str], transport: httpx.BaseTransport | None
) -> httpx.Client:
    """A pooled client with explicit timeouts (a pool wait counts as connecting)."""
    return httpx.Client(
        base_url=config.base_url.rstrip("/") + "/",
        headers={"Accept": "application/json", "User-Agent": "wallet-backend/1.0", **headers},
        timeout=httpx.Timeout(
            config.read_timeout, connect=config.connect_timeout, pool=config.connect_timeout
        ),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        transport=transport,
    )


SettingsT = TypeVar("SettingsT", bound=ApiSettings)
ClientT = TypeVar("ClientT")
T = TypeVar("T")


class ClientCache(Generic[SettingsT, ClientT]):
    """One client (one connection pool) per configuration per process. Clients are kept, not evicted: a
    process has one configuration (tests a few), and an evicted client would leave its connections open."""

    def __init__(self, build: Callable[[SettingsT], ClientT]) -> None:
        self._build = build
        self._clients: dict[SettingsT, ClientT] = {}
        self._lock = threading.Lock()

    def get(self, config: SettingsT) -> ClientT:
        client = self._clients.get(config)
        if client is None:
            with self._lock:
                client = self._clients.get(config)
                if client is None:
                    client = self._clients[config] = self._build(config)
        return client


def json_answer(response: httpx.Response, *, creating: bool, api: str) -> Any:
    """The JSON body of a 2xx answer. One that is not JSON proves nothing: after a create something may
    exist (unknown); after a read, ask again (unavailable)."""
    try:
        return response.json()
    except json.JSONDecodeError as exc:
        if creating:
            raise RevioOutcomeUnknownError(f"{api} answered 2xx with a body that is not JSON") from exc
        raise RevioUnavailableError(f"{api} answered with a body that is not JSON") from exc


def error_details(
    response: httpx.Response, read: Callable[[Any, str], tuple[str, tuple[RevioApiError, ...]]]
) -> tuple[str, tuple[RevioApiError, ...]]:
    """What to say about an error answer (fields and codes only, never messages, which can echo what was
    sent) and its errors: `read(body, reason phrase)` finds them in the API's own error shape."""
    try:
        data = response.json()
    except json.JSONDecodeError:
        return f"{response.reason_phrase} (not JSON)", ()
    return read(data, response.reason_phrase)


def parse_created(parse: Callable[[Any], T], data: Any) -> T:
    """Parse the answer to a create. Revio said 2xx, so something may exist: an answer we cannot read
    is an unknown outcome, never a plain error the caller might treat as "not created"."""
    try:
        return parse(data)
    except RevioError as exc:
        raise RevioOutcomeUnknownError(f"unreadable answer to a create: {exc}") from exc
