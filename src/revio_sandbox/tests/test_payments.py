"""Refunds, chargebacks, refused card operations, payment methods and the company balance."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver, eft_payment_body, purchase_body, signature_valid


def paid_purchase(sandbox: SandboxProcess, api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    created = api.post("purchases/", json=purchase_body(sandbox.brand_id, **overrides)).json()
    return sandbox.control.purchase_pay(created["id"])


class TestRefunds:
    def test_full_refund_answers_a_payment_and_sends_payment_refunded(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        response = api.post(f"purchases/{purchase['id']}/refund/")
        assert response.status_code == 200
        payment = response.json()
        assert (payment["type"], payment["status"], payment["amount"]) == ("payment", "success", 15000)
        assert payment["related_to"] == {"type": "purchase", "id": purchase["id"]}
        assert payment["payment"]["payment_type"] == "refund"
        assert payment["payment"]["is_outgoing"] is True
        after = api.get(f"purchases/{purchase['id']}/").json()
        assert after["status"] == "refunded"
        assert [h["status"] for h in after["status_history"]] == ["created", "paid", "refunded"]
        assert (after["refundable_amount"], after["refund_availability"]) == (0, "none")
        # The event: the Payment at top level plus event_type, signed with the webhook's key.
        refunded = receiver.wait_for(
            lambda rs: any(r.json()["event_type"] == "payment.refunded" for r in rs), path="/hook"
        )
        (received,) = [r for r in refunded if r.json()["event_type"] == "payment.refunded"]
        assert signature_valid(str(webhook["public_key"]), received.signature, received.body)
        body = received.json()
        assert body["event_type"] == "payment.refunded"
        assert (body["id"], body["related_to"]["id"]) == (payment["id"], purchase["id"])
        sandbox.control.wait_for_delivery(object_id=payment["id"], event_type="payment.refunded")

    def test_partial_refunds_then_too_much_is_purchase_refund_error(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        first = api.post(f"purchases/{purchase['id']}/refund/", json={"amount": 5000})
        assert (first.status_code, first.json()["amount"]) == (200, 5000)
        after = api.get(f"purchases/{purchase['id']}/").json()
        assert (after["status"], after["refundable_amount"]) == ("paid", 10000)
        too_much = api.post(f"purchases/{purchase['id']}/refund/", json={"amount": 10001})
        assert too_much.status_code == 400
        assert too_much.json()["__all__"][0]["code"] == "purchase_refund_error"
        assert api.get(f"purchases/{purchase['id']}/").json()["refundable_amount"] == 10000
        assert api.post(f"purchases/{purchase['id']}/refund/", json={"amount": 10000.0}).status_code == 200
        assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "refunded"
        assert [p["amount"] for p in sandbox.control.purchase_payments(purchase["id"])] == [5000, 10000]

    def test_concurrent_full_refunds_refund_once(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        from concurrent.futures import ThreadPoolExecutor

        purchase = paid_purchase(sandbox, api)

        def refund(_: int) -> int:
            with sandbox.api_client() as client:
                return client.post(f"purchases/{purchase['id']}/refund/").status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = sorted(pool.map(refund, range(6)))
        assert codes == [200, 400, 400, 400, 400, 400]
        assert [p["amount"] for p in sandbox.control.purchase_payments(purchase["id"])] == [15000]
        assert api.get("account/json/balance/").json()["ZAR"]["gross_balance"] == 0

    @pytest.mark.parametrize("amount", [0, -5, 1.5, "100"])
    def test_bad_amount_is_a_field_error(
        self, sandbox: SandboxProcess, api: httpx.Client, amount: Any
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        response = api.post(f"purchases/{purchase['id']}/refund/", json={"amount": amount})
        assert response.status_code == 400
        assert list(response.json()) == ["amount"]
        assert sandbox.control.purchase_payments(purchase["id"]) == []

    def test_unpaid_purchase_cannot_be_refunded(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        created = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        response = api.post(f"purchases/{created['id']}/refund/")
        assert response.status_code == 400
        assert response.json()["__all__"][0]["code"] == "purchase_refund_error"
        assert api.post(f"purchases/{uuid.uuid4()}/refund/").status_code == 404

    def test_a_slow_refund_answers_the_purchase_in_pending_refund_then_completes(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        sandbox.control.slow_refunds_next(seconds=1.5)
        response = api.post(f"purchases/{purchase['id']}/refund/", json={"amount": 5000})
        assert response.status_code == 200
        pending = response.json()
        # The answer is the Purchase (no Payment yet), and a second refund waits for the first.
        assert (pending["type"], pending["id"], pending["status"]) == (
            "purchase",
            purchase["id"],
            "pending_refund",
        )
        assert sandbox.control.purchase_payments(purchase["id"]) == []
        assert api.post(f"purchases/{purchase['id']}/refund/").status_code == 400
        assert api.get("account/json/balance/").json()["ZAR"]["gross_balance"] == 15000
        events = receiver.wait_for(
            lambda rs: any(r.json()["event_type"] == "payment.refunded" for r in rs), path="/hook", timeout=5
        )
        types = [r.json()["event_type"] for r in events]
        assert types.index("purchase.pending_refund") < types.index("payment.refunded")
        after = api.get(f"purchases/{purchase['id']}/").json()
        assert [h["status"] for h in after["status_history"]][-2:] == ["pending_refund", "paid"]
        (payment,) = sandbox.control.purchase_payments(purchase["id"])
        assert (payment["amount"], payment["related_to"]["id"]) == (5000, purchase["id"])
        assert api.get("account/json/balance/").json()["ZAR"]["gross_balance"] == 10000
        # Only the next refund was slow.
        assert api.post(f"purchases/{purchase['id']}/refund/").json()["type"] == "payment"


class TestChargebacks:
    def test_full_chargeback_moves_the_purchase_and_sends_payment_charged_back(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        payment = sandbox.control.purchase_chargeback(purchase["id"])
        assert (payment["amount"], payment["related_to"]["id"]) == (15000, purchase["id"])
        after = api.get(f"purchases/{purchase['id']}/").json()
        assert [h["status"] for h in after["status_history"]] == ["created", "paid", "chargeback"]
        delivery = sandbox.control.wait_for_delivery(
            object_id=payment["id"], event_type="payment.charged_back"
        )
        assert signature_valid(
            str(webhook["public_key"]), delivery["attempts"][-1]["signature"], delivery["body"].encode()
        )
        # Nothing is left to refund after a full chargeback.
        assert api.post(f"purchases/{purchase['id']}/refund/").status_code == 400

    def test_partial_chargeback_keeps_the_purchase_paid(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        sandbox.control.purchase_chargeback(purchase["id"], amount=1000)
        after = api.get(f"purchases/{purchase['id']}/").json()
        assert (after["status"], after["refundable_amount"]) == ("paid", 14000)
        with pytest.raises(httpx.HTTPStatusError) as caught:
            sandbox.control.purchase_chargeback(purchase["id"], amount=14001)
        assert caught.value.response.json()["__all__"][0]["code"] == "purchase_chargeback_error"


class TestRefusedOperations:
    @pytest.mark.parametrize(
        ("operation", "body", "code"),
        [
            ("capture", {}, "purchase_capture_error"),
            ("release", {}, "purchase_release_error"),
            ("charge", {"recurring_token": str(uuid.uuid4())}, "purchase_charge_error"),
            ("delete_recurring_token", {}, "purchase_recurring_token_delete_error"),
        ],
    )
    def test_not_a_hold_or_token_is_the_platforms_400(
        self, sandbox: SandboxProcess, api: httpx.Client, operation: str, body: dict[str, str], code: str
    ) -> None:
        purchase = paid_purchase(sandbox, api)
        response = api.post(f"purchases/{purchase['id']}/{operation}/", json=body)
        assert response.status_code == 400
        (error,) = response.json()["__all__"]
        assert error["code"] == code
        assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "paid"
        assert api.post(f"purchases/{uuid.uuid4()}/{operation}/", json=body).status_code == 404


class TestPaymentMethods:
    def test_lists_the_card_methods(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        response = api.get("payment_methods/", params={"brand_id": sandbox.brand_id, "currency": "ZAR"})
        assert response.status_code == 200
        assert response.json()["available_payment_methods"] == ["mastercard", "visa"]

    def test_needs_brand_and_currency(self, api: httpx.Client) -> None:
        response = api.get("payment_methods/")
        assert response.status_code == 400
        assert set(response.json()) == {"brand_id", "currency"}

    def test_needs_the_api_key(self, sandbox: SandboxProcess) -> None:
        assert httpx.get(f"{sandbox.api_url}payment_methods/").status_code == 401


class TestBalance:
    def test_moves_with_purchases_refunds_chargebacks_and_eft_payments(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        assert api.get("account/json/balance/").json() == {}
        first = paid_purchase(sandbox, api)
        fee = first["payment"]["fee_amount"]
        second = paid_purchase(sandbox, api)
        api.post(f"purchases/{first['id']}/refund/", json={"amount": 4000})
        sandbox.control.purchase_chargeback(second["id"], amount=1000)
        zar = api.get("account/json/balance/").json()["ZAR"]
        assert zar["gross_balance"] == 30000 - 4000 - 1000
        assert zar["fee_sell"] == fee + second["payment"]["fee_amount"]
        assert zar["balance"] == zar["gross_balance"] - zar["fee_sell"]
        assert (zar["pending_outgoing"], zar["available_balance"]) == (0, zar["balance"])

        with sandbox.eft_client() as eft:
            payment = eft.post("v2/payment/eft", json=eft_payment_body(account="62000004")).json()
        pending = api.get("account/json/balance/", params={"currency": "ZAR"}).json()["ZAR"]
        assert pending["pending_outgoing"] == 12_345
        assert pending["available_balance"] == zar["balance"] - 12_345
        assert pending["gross_balance"] == zar["gross_balance"]
        sandbox.control.eft_payment_succeed(payment["id"])
        done = api.get("account/json/balance/").json()["ZAR"]
        assert (done["pending_outgoing"], done["gross_balance"]) == (0, zar["gross_balance"] - 12_345)
        sandbox.control.eft_payment_return(payment["id"])  # the bank sends it back: + again
        assert api.get("account/json/balance/").json()["ZAR"]["gross_balance"] == zar["gross_balance"]

    def test_a_past_balance_is_refused(self, api: httpx.Client) -> None:
        response = api.get("account/json/balance/", params={"from": 1_700_000_000})
        assert response.status_code == 400
        assert response.json()["from"][0]["code"] == "invalid"

    def test_needs_the_api_key(self, sandbox: SandboxProcess) -> None:
        assert httpx.get(f"{sandbox.api_url}account/json/balance/").status_code == 401
