"""The Revio client against a real local HTTP server that answers in ways the sandbox does not."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rest_framework.test import APIClient

from wallet.revio.client import RevioClient, RevioSettings
from wallet.revio.errors import RevioError, RevioOutcomeUnknownError, RevioRejectedError
from wallet.transactions.models import Transaction


class _Recorder(BaseHTTPRequestHandler):
    """Keeps the body of every create and answers with a purchase."""

    bodies: list[Any] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
        data = json.dumps(
            {"id": "p1", "status": "created", "purchase": {"total": 100, "currency": "ZAR"}, "reference": "r"}
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _OddRevio(BaseHTTPRequestHandler):
    """Answers every create with 201 and a body that is JSON but not a purchase."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(201, {"unexpected": True})

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/purchases/missing/"):
            self._answer(404, {"__all__": [{"message": "Not found.", "code": "not_found"}]})
        else:
            self._answer(200, {"id": "x"})


@pytest.fixture
def odd_revio() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OddRevio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/"
    server.shutdown()
    server.server_close()


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/"
    server.shutdown()
    server.server_close()


def client_for(base_url: str) -> RevioClient:
    return RevioClient(
        RevioSettings(base_url=base_url, api_key="k", brand_id="b", connect_timeout=1, read_timeout=2)
    )


def test_an_unreadable_answer_to_a_create_is_an_unknown_outcome(odd_revio: str) -> None:
    client = client_for(odd_revio)
    with pytest.raises(RevioOutcomeUnknownError):
        client.purchase_create(
            reference="r",
            amount=100,
            currency="ZAR",
            email="a@b.co",
            success_redirect="x",
            failure_redirect="x",
            success_callback="x",
            due=1_800_000_000,
        )


def test_a_purchase_is_created_with_its_own_due_and_due_strict() -> None:
    """Without due_strict Revio lets a purchase be paid after its due (overdue, still payable)."""
    _Recorder.bodies = []
    for url in serve(_Recorder):
        client_for(url).purchase_create(
            reference="r",
            amount=100,
            currency="ZAR",
            email="a@b.co",
            success_redirect="x",
            failure_redirect="x",
            success_callback="x",
            due=1_800_000_123,
        )
    (body,) = _Recorder.bodies
    assert (body["due"], body["purchase"]["due_strict"]) == (1_800_000_123, True)


def test_an_unreadable_answer_to_a_read_is_an_error_not_a_crash(odd_revio: str) -> None:
    client = client_for(odd_revio)
    with pytest.raises(RevioError) as raised:
        client.purchase_get("p1")
    assert not isinstance(raised.value, RevioOutcomeUnknownError)
    with pytest.raises(RevioRejectedError) as rejected:
        client.purchase_get("missing")
    assert rejected.value.status == 404
    assert rejected.value.code == "not_found"


@pytest.mark.django_db
def test_a_deposit_answered_with_nonsense_stays_pending_and_is_a_clean_502(
    odd_revio: str, user_api: APIClient, settings: Any
) -> None:
    settings.REVIO_BASE_URL = odd_revio
    response = user_api.post("/api/v1/deposits", {"amount": 5_000}, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_timeout"
    assert Transaction.objects.get().status == "pending"
