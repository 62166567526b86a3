"""One HTTP POST of an event to an endpoint, at an address that passed the SSRF check (addresses.py).

The connection goes to that checked address (for https with the URL's host name for SNI and certificate
checks, and in the Host header), redirects are never followed, and only a short excerpt of the answer is
read. Nothing here decides what an answer means; the caller records it.
"""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from wallet.events.addresses import Target

EXCERPT_BYTES = 300


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no HTTP answer (refused, reset, timed out)
    latency_ms: int
    excerpt: str
    error: str


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()  # a failed handshake must not leave the connection open
            raise


def post(*, target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to the target's first checked address; never raises for a network failure."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target.host, target.port, address=target.addresses[0], timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", "replace")
        return Answer(
            status_code=response.status,
            latency_ms=_elapsed_ms(started),
            excerpt=excerpt,
            error="",
        )
    except (OSError, http.client.HTTPException) as exc:  # timeouts and resets are OSErrors
        return Answer(
            status_code=None,
            latency_ms=_elapsed_ms(started),
            excerpt="",
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
    finally:
        connection.close()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
