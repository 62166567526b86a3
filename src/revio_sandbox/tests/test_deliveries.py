"""Webhook and success_callback deliveries: signatures, body bytes, ordering and retries."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

from revio_sandbox.events import RETRY_GAPS_SECONDS
from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.conftest import TEST_TIME_SCALE
from revio_sandbox.tests.support import Receiver, jsonb_order_ok, purchase_body, signature_valid


def independent_jsonb(value: Any) -> str:
    """A second, independent writer of PostgreSQL jsonb text (keys by byte length, then bytes)."""

    def order(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: order(v[k]) for k in sorted(v, key=lambda k: (len(k.encode()), k.encode()))}
        if isinstance(v, list):
            return [order(i) for i in v]
        return v

    return json.dumps(order(value), separators=(", ", ": "), ensure_ascii=False)


def test_webhook_deliveries_are_signed_with_the_webhook_key(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    sandbox.control.purchase_pay(purchase["id"])
    received = receiver.wait_count(2, path="/hook")
    company_pem = api.get("public_key/").json()
    assert [r.json()["event_type"] for r in received] == ["purchase.created", "purchase.paid"]
    for request in received:
        assert request.headers["content-type"] == "application/json"
        assert signature_valid(str(webhook["public_key"]), request.signature, request.body)
        assert not signature_valid(company_pem, request.signature, request.body)
        assert request.json()["id"] == purchase["id"]
    paid = received[1].json()
    assert paid["status"] == "paid"
    assert paid["payment"]["amount"] == 15000


def test_body_is_jsonb_text_with_the_object_at_top_level(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="Ünïcode ✓")).json()
    (request,) = receiver.wait_count(1, path="/hook")
    text = request.body.decode("utf-8")
    assert text == independent_jsonb(json.loads(text))
    assert jsonb_order_ok(text)
    assert text.startswith('{"id": ')  # "id" is the shortest key
    assert '"reference": "Ünïcode ✓"' in text  # raw UTF-8, as PostgreSQL prints it
    body = request.json()
    assert body["event_type"] == "purchase.created"
    assert {k: v for k, v in body.items() if k != "event_type"} == purchase


def test_success_callback_is_signed_with_the_company_key_and_only_on_success(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
) -> None:
    declined = api.post(
        "purchases/", json=purchase_body(sandbox.brand_id, success_callback=receiver.url("/cb"))
    ).json()
    sandbox.control.purchase_decline(declined["id"])
    sandbox.control.purchase_cancel(declined["id"])
    paid = api.post(
        "purchases/", json=purchase_body(sandbox.brand_id, success_callback=receiver.url("/cb"))
    ).json()
    sandbox.control.purchase_pay(paid["id"])
    (request,) = receiver.wait_count(1, path="/cb")
    body = request.json()
    assert body["id"] == paid["id"]
    assert body["event_type"] == "purchase.paid"
    assert signature_valid(api.get("public_key/").json(), request.signature, request.body)
    deliveries = sandbox.control.deliveries(object_id=declined["id"])
    assert deliveries == []  # no webhook objects and no success: nothing was queued


def test_webhook_gets_only_the_events_it_subscribed_to(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
) -> None:
    api.post(
        "webhooks/",
        json={"title": "paid only", "events": ["purchase.paid"], "callback": receiver.url("/paid")},
    )
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    sandbox.control.purchase_view(purchase["id"])
    sandbox.control.purchase_pay(purchase["id"])
    sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.paid")
    assert [r.json()["event_type"] for r in receiver.received("/paid")] == ["purchase.paid"]


def test_retries_until_2xx_with_growing_gaps_and_records_attempts(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    receiver.script["/hook"] = [500, 503, 404]
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    delivery = sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.created")
    attempts = delivery["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 503, 404, 200]
    assert delivery["attempt_count"] == 4
    assert all(a["url"] == receiver.url("/hook") and a["duration_ms"] >= 0 for a in attempts)
    times = [a["attempted_at"] for a in attempts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, expected in zip(gaps, RETRY_GAPS_SECONDS, strict=False):
        assert gap >= expected * TEST_TIME_SCALE * 0.9
    assert len(receiver.received("/hook")) == 4
    # Retries carry the same bytes.
    assert len({r.body for r in receiver.received("/hook")}) == 1


def test_order_is_kept_per_object_while_an_event_is_retried(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    receiver.script["/hook"] = [500, 500, 500, 500]
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    sandbox.control.purchase_view(purchase["id"])
    sandbox.control.purchase_pay(purchase["id"])
    received = receiver.wait_for(
        lambda rs: any(r.json()["event_type"] == "purchase.paid" for r in rs), path="/hook"
    )
    events = [r.json()["event_type"] for r in received]
    assert events == ["purchase.created"] * 5 + ["purchase.viewed", "purchase.paid"]


def test_gives_up_after_eight_retries_then_delivers_the_next_event(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    receiver.script["/hook"] = [500] * 9
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    sandbox.control.purchase_pay(purchase["id"])
    failed = sandbox.control.wait_for_delivery(
        object_id=purchase["id"], event_type="purchase.created", status="failed", timeout=15
    )
    assert failed["attempt_count"] == 9  # 1 attempt + 8 retries
    assert [a["status_code"] for a in failed["attempts"]] == [500] * 9
    sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.paid")
    assert [r.json()["event_type"] for r in receiver.received("/hook")] == ["purchase.created"] * 9 + [
        "purchase.paid"
    ]


def test_a_slow_receiver_times_out_and_the_error_is_recorded(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    receiver.delays["/hook"] = 1.5  # the test sandbox's delivery timeout is 1 s
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id))
    assert purchase.status_code == 201
    found = sandbox.control.wait_for_deliveries(
        lambda ds: bool(ds) and len(ds[0]["attempts"]) >= 1, object_id=purchase.json()["id"]
    )
    attempt = found[0]["attempts"][0]
    receiver.delays.clear()
    assert attempt["status_code"] is None
    assert "Timeout" in (attempt["error"] or "")
    assert attempt["duration_ms"] >= 900


def test_unreachable_receiver_is_recorded_as_an_error(sandbox: SandboxProcess, api: httpx.Client) -> None:
    from revio_sandbox.testing import free_port

    api.post(
        "webhooks/",
        json={"title": "dead", "all_events": True, "callback": f"http://127.0.0.1:{free_port()}/x"},
    )
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    found = sandbox.control.wait_for_deliveries(
        lambda ds: bool(ds) and len(ds[0]["attempts"]) >= 2, object_id=purchase["id"]
    )
    assert found[0]["attempts"][0]["status_code"] is None
    assert "ConnectError" in (found[0]["attempts"][0]["error"] or "")
