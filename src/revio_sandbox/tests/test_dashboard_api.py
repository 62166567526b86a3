"""The control API behind the dashboard: the overview, refunds as the platform's dashboard makes them,
resending a delivery, and what each attempt records of the request and the receiver's answer."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver, eft_payment_body, purchase_body, signature_valid


def _paid(sandbox: SandboxProcess, api: httpx.Client, **extra: Any) -> dict[str, Any]:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id, **extra)).json()
    return sandbox.control.purchase_pay(purchase["id"])


def test_overview_lists_every_kind_of_object_newest_first_and_no_secret(
    sandbox: SandboxProcess, api: httpx.Client, webhook: dict[str, Any]
) -> None:
    first = _paid(sandbox, api, reference="OV-1")
    second = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="OV-2")).json()
    refund = sandbox.control.purchase_refund(first["id"], 1_000)
    with sandbox.eft_client() as eft:
        transfer = eft.post("v2/payment/eft", json=eft_payment_body("62001230004")).json()
    fault = sandbox.control.fail_next("purchases.get", status=502)
    sandbox.control.wait_for_delivery(object_id=refund["id"], event_type="payment.refunded")

    overview = sandbox.control.overview()
    assert [p["id"] for p in overview["purchases"]] == [second["id"], first["id"]]
    assert [(p["id"], p["kind"], p["amount"], p["status"]) for p in overview["payments"]] == [
        (refund["id"], "refund", 1_000, "success")
    ]
    assert overview["eft_payments"][0]["id"] == transfer["id"]
    assert overview["faults"] == sandbox.control.faults()
    assert overview["faults"][0]["id"] == fault["id"]
    assert overview["balance"]["ZAR"]["gross_balance"] == 15_000 - 1_000
    assert overview["balance"]["ZAR"]["pending_outgoing"] == transfer["amountCents"]
    delivered = [d for d in overview["deliveries"] if d["status"] == "delivered"]
    assert delivered
    assert overview["deliveries"] == sorted(overview["deliveries"], key=lambda d: -d["id"])
    assert "purchases.create" in overview["fault_catalogue"]["endpoints"]
    assert "reserialize" in overview["fault_catalogue"]["webhook_actions"]
    text = json.dumps(overview)
    config = sandbox.control.config()
    for secret in (config["api_key"], config["eft_client_secret"], "PRIVATE KEY"):
        assert secret not in text


def test_refund_from_the_control_api_is_the_apis_refund(
    sandbox: SandboxProcess, api: httpx.Client, webhook: dict[str, Any], receiver: Receiver
) -> None:
    purchase = _paid(sandbox, api)
    payment = sandbox.control.purchase_refund(purchase["id"])
    assert (payment["type"], payment["status"], payment["amount"]) == ("payment", "success", 15_000)
    assert payment["related_to"] == {"type": "purchase", "id": purchase["id"]}
    assert sandbox.control.purchase(purchase["id"])["status"] == "refunded"
    delivery = sandbox.control.wait_for_delivery(object_id=payment["id"], event_type="payment.refunded")
    assert signature_valid(
        str(webhook["public_key"]), delivery["attempts"][0]["signature"], delivery["body"].encode()
    )
    # Nothing left: the same 400 as the API's, and nothing changes.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        sandbox.control.purchase_refund(purchase["id"])
    assert refused.value.response.status_code == 400
    assert refused.value.response.json()["__all__"][0]["code"] == "purchase_refund_error"
    assert len(sandbox.control.purchase_payments(purchase["id"])) == 1


def test_a_slow_refund_keeps_its_status_history(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = _paid(sandbox, api)
    sandbox.control.slow_refunds_next(seconds=1.5)  # long enough to see it pending
    answered = sandbox.control.purchase_refund(purchase["id"], 500)
    assert answered["status"] == "pending_refund"  # the Purchase, as the API answers a slow refund
    (pending,) = sandbox.control.overview()["payments"]
    assert [h["status"] for h in pending["status_history"]] == ["pending"]
    deadline = time.monotonic() + 10
    while (done := sandbox.control.overview()["payments"][0])["status"] == "pending":
        assert time.monotonic() < deadline, "the slow refund never completed"
        time.sleep(0.05)
    assert done["status"] == "success"
    assert [h["status"] for h in done["status_history"]] == ["pending", "success"]


def test_an_attempt_records_the_headers_sent_and_the_receivers_answer(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    receiver.script["/hook"] = [500]
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    delivery = sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.created")
    failed, ok = delivery["attempts"]
    for attempt in (failed, ok):
        headers = attempt["request_headers"]
        assert headers is not None
        assert headers["X-Signature"] == attempt["signature"]
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"].startswith("revio-sandbox/")
        assert attempt["response_body"] == "ok"  # what the receiver wrote back
        assert attempt["response_headers"] is not None
        assert attempt["response_headers"]["content-length"] == "2"
    assert (failed["status_code"], ok["status_code"]) == (500, 200)


def test_an_unanswered_attempt_records_no_answer(sandbox: SandboxProcess, api: httpx.Client) -> None:
    from revio_sandbox.testing import free_port

    api.post(
        "webhooks/", json={"title": "t", "all_events": True, "callback": f"http://127.0.0.1:{free_port()}/"}
    )
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    found = sandbox.control.wait_for_deliveries(
        lambda ds: bool(ds and ds[0]["attempts"]), object_id=purchase["id"]
    )
    attempt = found[0]["attempts"][0]
    assert attempt["status_code"] is None
    assert attempt["error"]
    assert (attempt["response_headers"], attempt["response_body"]) == (None, None)


def test_resend_attempts_the_same_delivery_again_signed_with_the_current_key(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    delivery = sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.created")
    new_key = sandbox.control.rotate_webhook_key(str(webhook["id"]))

    queued = sandbox.control.resend_delivery(delivery["id"])
    assert queued["id"] == delivery["id"]
    again = sandbox.control.wait_for_deliveries(
        lambda ds: len(ds[0]["attempts"]) == 2 and ds[0]["status"] == "delivered", object_id=purchase["id"]
    )
    assert len(again) == 1  # the same delivery, not a new one (unlike replay)
    first, second = again[0]["attempts"]
    received = receiver.wait_count(2, path="/hook")
    assert received[0].body == received[1].body
    assert signature_valid(new_key, second["signature"], received[1].body)
    assert not signature_valid(new_key, first["signature"], received[0].body)


def test_resending_an_unknown_delivery_is_404(sandbox: SandboxProcess) -> None:
    with pytest.raises(httpx.HTTPStatusError) as missing:
        sandbox.control.resend_delivery(999_999)
    assert missing.value.response.status_code == 404
