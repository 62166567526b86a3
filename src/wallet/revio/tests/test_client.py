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


class _OddRevio(BaseHTTPRequestHandler):
    """Answers every create with 201 and a body that is JSON but not a purchase or payout."""

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
        if self.path.startswith("/api/v1/payouts/missing/"):
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
        )


def test_an_unreadable_answer_to_a_read_is_an_error_not_a_crash(odd_revio: str) -> None:
    client = client_for(odd_revio)
    with pytest.raises(RevioError) as raised:
        client.purchase_get("p1")
    assert not isinstance(raised.value, RevioOutcomeUnknownError)
    with pytest.raises(RevioRejectedError) as rejected:
        client.payout_get("missing")
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
