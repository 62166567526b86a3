"""Shared test helpers: a local HTTP receiver for deliveries, signature checks and request payloads."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def signature(self) -> str:
        return self.headers["x-signature"]


class Receiver:
    """A threaded HTTP server capturing POSTs. ``script[path]`` lists status codes to answer in turn
    (then 200); ``delays[path]`` sleeps before answering. GET answers a small HTML page (redirect target)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[int]] = {}
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                path = self.path
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            "POST", path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                        )
                    )
                    codes = receiver.script.get(path)
                    status = codes.pop(0) if codes else 200
                delay = receiver.delays.get(path, 0)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:
                page = f"<html><body><h1 id='landed'>Landed on {self.path}</h1></body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(
        self,
        predicate: Callable[[list[Received]], bool],
        *,
        path: str | None = None,
        timeout: float = 10.0,
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.received(path)
            if predicate(found):
                return found
            if time.monotonic() > deadline:
                events = [(r.path, r.json().get("event_type")) for r in found]
                raise TimeoutError(f"receiver never matched; got {events}")
            time.sleep(0.02)

    def wait_count(self, count: int, *, path: str | None = None, timeout: float = 10.0) -> list[Received]:
        return self.wait_for(lambda rs: len(rs) >= count, path=path, timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def signature_valid(pem: str, signature_b64: str, body: bytes) -> bool:
    """Verify exactly as the backend must: PKCS#1 v1.5 + SHA-256 over the raw body bytes."""
    try:
        load_public_key(pem).verify(
            base64.b64decode(signature_b64), body, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def jsonb_order_ok(text: str) -> bool:
    """True if every object's keys in ``text`` appear sorted by (byte length, bytes)."""

    def check(value: Any) -> bool:
        if isinstance(value, dict):
            keys = [k.encode() for k in value]
            return keys == sorted(keys, key=lambda k: (len(k), k)) and all(check(v) for v in value.values())
        if isinstance(value, list):
            return all(check(v) for v in value)
        return True

    return check(json.loads(text, object_pairs_hook=dict))


def purchase_body(brand_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "brand_id": brand_id,
        "client": {"email": "player@example.co.za", "full_name": "Thandi Nkosi"},
        "purchase": {"currency": "ZAR", "products": [{"name": "Wallet deposit", "price": 15000}]},
        "reference": "DEP-000123",
    }
    body.update(overrides)
    return body


def eft_payment_body(account: str = "62001234567", **overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v2/payment/eft`` body (the sandbox profile of revio-api.md section 3 B)."""
    body: dict[str, Any] = {
        "paymentDate": "2026-11-23",
        "profileCode": "TEST1",
        "abbreviatedName": "TESTMERCH1",
        "contractReference": "W-1",
        "amountCents": 12_345,
        "serviceType": "ONEDAY",
        "debtor": {"accountNumber": "12345678", "branchCode": "051001", "accountType": "CURRENT"},
        "creditor": {
            "accountNumber": account,
            "branchCode": "250655",
            "accountType": "SAVINGS",
            "name": "T N",
        },
    }
    body.update(overrides)
    return body
