"""Fault injection through the control API: API errors, hangs and webhook delivery faults."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver, purchase_body, signature_valid
from revio_sandbox.tests.test_deliveries import independent_jsonb


class TestHttpFaults:
    def test_next_n_calls_fail_with_500_then_recover(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        sandbox.control.fail_next("purchases.create", status=500, count=2)
        body = purchase_body(sandbox.brand_id)
        first, second, third = (api.post("purchases/", json=body) for _ in range(3))
        assert (first.status_code, second.status_code, third.status_code) == (500, 500, 201)
        assert first.json()["__all__"][0]["code"] == "server_error"
        assert sandbox.control.faults() == []

    def test_429_carries_retry_after(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        sandbox.control.fail_next("public_key", status=429, retry_after=7)
        response = api.get("public_key/")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.json()["__all__"][0]["code"] == "rate_limited"
        assert api.get("public_key/").status_code == 200

    def test_503_html_like_a_proxy(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        sandbox.control.fail_next("purchases.get", status=503, html=True)
        response = api.get("purchases/00000000-0000-0000-0000-000000000000/")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["retry-after"] == "1"

    def test_pattern_matches_method_and_path(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        sandbox.control.fail_next("GET /api/v1/purchases/*", status=502)
        assert api.post("purchases/", json=purchase_body(sandbox.brand_id)).status_code == 201
        assert api.get(f"purchases/{purchase['id']}/").status_code == 502
        assert api.get(f"purchases/{purchase['id']}/").status_code == 200

    def test_slow_answer(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        sandbox.control.slow_next("public_key", delay_ms=400)
        started = time.monotonic()
        assert api.get("public_key/").status_code == 200
        assert time.monotonic() - started >= 0.4

    def test_hang_then_drop_does_nothing_and_times_out_the_client(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        sandbox.control.hang_next("purchases.create", seconds=0.8, then="drop")
        with pytest.raises(httpx.ReadTimeout):
            api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="DEP-HANG"), timeout=0.3)
        time.sleep(0.8)
        assert sandbox.control.purchases_by_reference("DEP-HANG") == []

    def test_drop_closes_the_connection_without_a_response(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        sandbox.control.hang_next("public_key", seconds=0.05, then="drop")
        with pytest.raises(httpx.RemoteProtocolError):
            api.get("public_key/")

    def test_hang_then_answer_processes_late(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        sandbox.control.hang_next("purchases.create", seconds=0.5, then="answer")
        started = time.monotonic()
        response = api.post("purchases/", json=purchase_body(sandbox.brand_id))
        assert response.status_code == 201
        assert time.monotonic() - started >= 0.5

    def test_purchase_created_but_response_times_out(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.timeout_after_processing("purchases.create", seconds=3)
        with pytest.raises(httpx.ReadTimeout):
            api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="DEP-UNKNOWN"), timeout=0.5)
        # The purchase exists and its event goes out even though the creator never heard back.
        (purchase,) = sandbox.control.purchases_by_reference("DEP-UNKNOWN")
        receiver.wait_for(lambda rs: any(r.json().get("id") == purchase["id"] for r in rs), path="/hook")
        assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "created"

    def test_error_after_creates_the_purchase_then_answers_503(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.error_after_next("purchases.create", 503)
        response = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="DEP-503"))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["__all__"][0]["code"] == "service_unavailable"
        # The 503 proves nothing: the purchase exists and its purchase.created event is delivered.
        (purchase,) = sandbox.control.purchases_by_reference("DEP-503")
        delivery = sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.created")
        assert signature_valid(str(webhook["public_key"]), delivery["attempts"][-1]["signature"],
                               delivery["body"].encode())  # fmt: skip
        assert api.post("purchases/", json=purchase_body(sandbox.brand_id)).status_code == 201

    def test_error_after_on_eft_create_sends_a_proxy_page(self, sandbox: SandboxProcess) -> None:
        from revio_sandbox.tests.support import eft_payment_body

        page = "<html><body><h1>504 Gateway Time-out</h1></body></html>"
        sandbox.control.add_http_fault(
            {"endpoint": "eft.payments.create", "action": "error_after", "status": 504, "html": True,
             "body": page, "retry_after": 30}
        )  # fmt: skip
        with sandbox.eft_client() as eft:
            response = eft.post("v2/payment/eft", json=eft_payment_body(contractReference="W-504"))
        assert (response.status_code, response.text) == (504, page)
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["retry-after"] == "30"
        (payment,) = sandbox.control.eft_payments_by_reference("W-504")
        assert payment["status"] in ("NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "COMPLETED")

    def test_error_after_a_rejected_request_still_answers_the_fault(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        sandbox.control.error_after_next("purchases.create", 502)
        response = api.post("purchases/", json={"brand_id": sandbox.brand_id, "reference": "DEP-BAD"})
        assert response.status_code == 502
        assert sandbox.control.purchases_by_reference("DEP-BAD") == []

    def test_invalid_fault_is_400(self, sandbox: SandboxProcess) -> None:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            sandbox.control.add_http_fault({"endpoint": "nope", "action": "error"})
        assert caught.value.response.status_code == 400

    def test_faults_are_listed_and_cleared(self, sandbox: SandboxProcess) -> None:
        sandbox.control.fail_next("purchases.get", count=3)
        sandbox.control.drop_next_event(event_type="purchase.paid")
        listed = sandbox.control.faults()
        assert [(f["kind"], f["remaining"]) for f in listed] == [("http", 3), ("webhook", 1)]
        assert sandbox.control.clear_faults() == 2
        assert sandbox.control.faults() == []


def _flow(sandbox: SandboxProcess, api: httpx.Client, **purchase: Any) -> str:
    """Create, view and pay a purchase: events created, viewed, paid."""
    purchase_id = str(api.post("purchases/", json=purchase_body(sandbox.brand_id, **purchase)).json()["id"])
    sandbox.control.purchase_view(purchase_id)
    sandbox.control.purchase_pay(purchase_id)
    return purchase_id


def _events(receiver: Receiver, path: str = "/hook") -> list[str]:
    return [r.json()["event_type"] for r in receiver.received(path)]


class TestWebhookFaults:
    def test_duplicate(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.duplicate_next_event(event_type="purchase.paid")
        _flow(sandbox, api)
        received = receiver.wait_count(4, path="/hook")
        assert _events(receiver) == ["purchase.created", "purchase.viewed", "purchase.paid", "purchase.paid"]
        assert received[2].body == received[3].body
        assert all(signature_valid(str(webhook["public_key"]), r.signature, r.body) for r in received)

    def test_out_of_order(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.reorder_next_event(event_type="purchase.viewed")
        _flow(sandbox, api)
        receiver.wait_count(3, path="/hook")
        assert _events(receiver) == ["purchase.created", "purchase.paid", "purchase.viewed"]

    def test_held_event_is_released_after_hold_seconds_without_a_next_event(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.reorder_next_event(event_type="purchase.created", hold_seconds=0.5)
        started = time.time()
        api.post("purchases/", json=purchase_body(sandbox.brand_id))
        (request,) = receiver.wait_count(1, path="/hook")
        assert request.at - started >= 0.5

    def test_late(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.delay_next_event(600, event_type="purchase.created")
        started = time.time()
        _flow(sandbox, api)
        received = receiver.wait_count(3, path="/hook")
        assert received[0].at - started >= 0.6
        # Order per object is kept: the later events waited for the late one.
        assert _events(receiver) == ["purchase.created", "purchase.viewed", "purchase.paid"]

    def test_drop(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.drop_next_event(event_type="purchase.viewed")
        purchase_id = _flow(sandbox, api)
        receiver.wait_count(2, path="/hook")
        sandbox.control.wait_for_delivery(object_id=purchase_id, event_type="purchase.paid")
        assert _events(receiver) == ["purchase.created", "purchase.paid"]
        (dropped,) = sandbox.control.deliveries(object_id=purchase_id, event_type="purchase.viewed")
        assert dropped["status"] == "dropped"
        assert dropped["attempts"] == []

    def test_bad_signature(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.bad_signature_next_event(event_type="purchase.created")
        _flow(sandbox, api)
        received = receiver.wait_count(3, path="/hook")
        pem = str(webhook["public_key"])
        assert [signature_valid(pem, r.signature, r.body) for r in received] == [False, True, True]

    def test_reserialized_body_signed_over_the_sent_bytes(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.reserialize_next_event(signed_over="sent", event_type="purchase.created")
        api.post("purchases/", json=purchase_body(sandbox.brand_id))
        (request,) = receiver.wait_count(1, path="/hook")
        assert b", " not in request.body  # compact json.dumps, not jsonb
        assert request.body != independent_jsonb(request.json()).encode()
        assert signature_valid(str(webhook["public_key"]), request.signature, request.body)

    def test_reserialized_body_signed_over_the_original_bytes(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.reserialize_next_event(signed_over="original", event_type="purchase.created")
        api.post("purchases/", json=purchase_body(sandbox.brand_id))
        (request,) = receiver.wait_count(1, path="/hook")
        pem = str(webhook["public_key"])
        assert not signature_valid(pem, request.signature, request.body)
        original = independent_jsonb(json.loads(request.body)).encode()
        assert signature_valid(pem, request.signature, original)

    def test_fault_can_target_only_the_success_callback(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        sandbox.control.drop_next_event(event_type="purchase.paid", target="callback")
        purchase_id = _flow(sandbox, api, success_callback=receiver.url("/cb"))
        sandbox.control.wait_for_delivery(object_id=purchase_id, event_type="purchase.paid")
        assert "purchase.paid" in _events(receiver)
        assert receiver.received("/cb") == []

    def test_fault_filtered_by_object(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        other = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        target = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        receiver.wait_count(2, path="/hook")
        sandbox.control.duplicate_next_event(object_id=target["id"], count=5)
        sandbox.control.purchase_pay(other["id"])
        sandbox.control.purchase_pay(target["id"])
        receiver.wait_count(5, path="/hook")
        time.sleep(0.2)
        paid_ids = [
            r.json()["id"] for r in receiver.received("/hook") if r.json()["event_type"] == "purchase.paid"
        ]
        assert sorted(paid_ids) == sorted([other["id"], target["id"], target["id"]])

    def test_replay_resends_the_recorded_body_and_signature(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        purchase_id = _flow(sandbox, api)
        paid = sandbox.control.wait_for_delivery(object_id=purchase_id, event_type="purchase.paid")
        replay = sandbox.control.replay_delivery(paid["id"])
        assert replay["replay_of"] == paid["id"]
        received = receiver.wait_count(4, path="/hook")
        assert received[3].body == received[2].body
        assert received[3].signature == received[2].signature

    def test_rotating_the_company_key(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        old_pem = api.get("public_key/").json()
        new_pem = sandbox.control.rotate_company_key()
        assert new_pem != old_pem
        assert api.get("public_key/").json() == new_pem
        _flow(sandbox, api, success_callback=receiver.url("/cb"))
        (request,) = receiver.wait_count(1, path="/cb")
        assert signature_valid(new_pem, request.signature, request.body)
        assert not signature_valid(old_pem, request.signature, request.body)

    def test_rotating_a_webhook_key(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        new_pem = sandbox.control.rotate_webhook_key(str(webhook["id"]))
        assert new_pem != webhook["public_key"]
        assert api.get(f"webhooks/{webhook['id']}/").json()["public_key"] == new_pem
        api.post("purchases/", json=purchase_body(sandbox.brand_id))
        (request,) = receiver.wait_count(1, path="/hook")
        assert signature_valid(new_pem, request.signature, request.body)
        assert not signature_valid(str(webhook["public_key"]), request.signature, request.body)


class TestReset:
    def test_reset_clears_state_and_keeps_keys(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        api.post("webhooks/", json={"title": "t", "all_events": True, "callback": "https://b.example/"})
        pem = api.get("public_key/").json()
        sandbox.control.reset()
        assert api.get(f"purchases/{purchase['id']}/").status_code == 404
        assert api.get("webhooks/").json()["results"] == []
        assert api.get("public_key/").json() == pem
        assert sandbox.control.deliveries() == []

    def test_reset_can_keep_webhooks_and_regenerate_keys(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        webhook = api.post(
            "webhooks/", json={"title": "t", "all_events": True, "callback": "https://b.example/"}
        ).json()
        pem = api.get("public_key/").json()
        sandbox.control.reset(keep_webhooks=True, regenerate_keys=True)
        kept = api.get(f"webhooks/{webhook['id']}/").json()
        assert kept["public_key"] != webhook["public_key"]
        assert api.get("public_key/").json() != pem
        assert sandbox.control.config()["api_key"] == sandbox.api_key
