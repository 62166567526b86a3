"""Fixtures for notification tests: a funded wallet (through the Revio sandbox) and a stand-in SendGrid."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wallet.transactions.tests.conftest import fund  # noqa: F401 - a fixture, used by name


@dataclass
class FakeSendGrid:
    """SendGrid's v3 API as far as anymail uses it: POST /v3/mail/send, answered 202 unless told otherwise."""

    api_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses for the next requests, then 202s

    def answer_next(self, *statuses: int) -> None:
        self.answers.extend(statuses)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [request["json"] for request in self.requests]


@pytest.fixture
def sendgrid(settings: Any) -> Iterator[FakeSendGrid]:
    """A local HTTP server standing in for SendGrid, with anymail's SendGrid backend pointed at it."""
    fake: FakeSendGrid

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "json": json.loads(body)}
            )
            status = fake.answers.pop(0) if fake.answers else 202
            payload = b"" if status == 202 else b'{"errors": [{"message": "stand-in failure"}]}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake = FakeSendGrid(api_url=f"http://127.0.0.1:{server.server_address[1]}/v3/")
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.test-key", "SENDGRID_API_URL": fake.api_url}
    settings.DEFAULT_FROM_EMAIL = "Wallet <notifications@wallet.example>"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
