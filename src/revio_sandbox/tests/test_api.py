"""The API subset: shapes, status codes and Revio-style errors, over real HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import load_public_key, purchase_body


class TestAuthentication:
    def test_missing_key_is_401_in_revio_format(self, sandbox: SandboxProcess) -> None:
        response = httpx.get(f"{sandbox.api_url}public_key/")
        assert response.status_code == 401
        assert response.json()["__all__"][0]["code"] == "authentication_failed"

    def test_wrong_key_is_401(self, sandbox: SandboxProcess) -> None:
        with sandbox.api_client(api_key="sandbox_sk_wrong") as client:
            response = client.post("purchases/", json=purchase_body(sandbox.brand_id))
        assert response.status_code == 401
        assert response.json() == {
            "__all__": [{"message": "Invalid token.", "code": "authentication_failed"}]
        }

    def test_non_bearer_scheme_is_401(self, sandbox: SandboxProcess) -> None:
        response = httpx.get(
            f"{sandbox.api_url}public_key/", headers={"Authorization": f"Token {sandbox.api_key}"}
        )
        assert response.status_code == 401


class TestPurchases:
    def test_create_returns_201_with_documented_fields(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        body = purchase_body(
            sandbox.brand_id,
            success_redirect="https://app.example/ok",
            failure_redirect="https://app.example/failed",
            success_callback="https://api.example/callback",
        )
        body["purchase"]["products"] = [
            {"name": "Deposit", "price": 10000},
            {"name": "Top-up", "price": 2500, "quantity": "2"},
        ]
        response = api.post("purchases/", json=body)
        assert response.status_code == 201
        purchase = response.json()
        uuid.UUID(purchase["id"])
        assert purchase["type"] == "purchase"
        assert purchase["status"] == "created"
        assert purchase["is_test"] is True
        assert purchase["brand_id"] == sandbox.brand_id
        assert purchase["reference"] == "DEP-000123"
        assert purchase["purchase"]["total"] == 15000
        assert purchase["purchase"]["currency"] == "ZAR"
        assert purchase["purchase"]["products"][1]["quantity"] == "2.0000"
        assert purchase["payment"] is None
        assert purchase["transaction_data"]["attempts"] == []
        assert purchase["status_history"] == [{"status": "created", "timestamp": purchase["created_on"]}]
        assert isinstance(purchase["created_on"], int)
        assert purchase["updated_on"] == purchase["created_on"]
        assert purchase["checkout_url"] == f"{sandbox.base_url}/p/{purchase['id']}/"
        assert purchase["success_callback"] == "https://api.example/callback"
        assert purchase["refund_availability"] == "none"
        assert purchase["refundable_amount"] == 0
        assert purchase["client"]["email"] == "player@example.co.za"
        assert purchase["due"] > purchase["created_on"]

    def test_currency_defaults_to_zar(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        body = purchase_body(sandbox.brand_id)
        del body["purchase"]["currency"]
        assert api.post("purchases/", json=body).json()["purchase"]["currency"] == "ZAR"

    def test_get_returns_the_same_purchase(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        created = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        response = api.get(f"purchases/{created['id']}/")
        assert response.status_code == 200
        assert response.json() == created

    @pytest.mark.parametrize("purchase_id", [str(uuid.uuid4()), "not-a-uuid"])
    def test_unknown_purchase_is_404(self, api: httpx.Client, purchase_id: str) -> None:
        response = api.get(f"purchases/{purchase_id}/")
        assert response.status_code == 404
        assert response.json()["__all__"][0]["code"] == "not_found"

    def test_paid_purchase_has_payment_object(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        created = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        sandbox.control.purchase_pay(created["id"])
        purchase = api.get(f"purchases/{created['id']}/").json()
        assert purchase["status"] == "paid"
        payment = purchase["payment"]
        assert payment["is_outgoing"] is False
        assert payment["payment_type"] == "purchase"
        assert payment["amount"] == 15000
        assert payment["currency"] == "ZAR"
        assert payment["fee_amount"] + payment["net_amount"] == 15000
        assert payment["pending_amount"] == 0
        assert isinstance(payment["paid_on"], int)
        assert purchase["refundable_amount"] == 15000
        assert [h["status"] for h in purchase["status_history"]] == ["created", "paid"]

    def test_cancel_unpaid_purchase(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        created = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        response = api.post(f"purchases/{created['id']}/cancel/")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        # A repeated cancel (a retried request) answers the cancelled purchase again.
        again = api.post(f"purchases/{created['id']}/cancel/")
        assert again.status_code == 200
        assert len(again.json()["status_history"]) == 2

    def test_cancel_paid_purchase_is_400(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        created = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
        sandbox.control.purchase_pay(created["id"])
        response = api.post(f"purchases/{created['id']}/cancel/")
        assert response.status_code == 400
        assert response.json()["__all__"][0]["code"] == "purchase_cancel_error"

    def test_cancel_unknown_is_404(self, api: httpx.Client) -> None:
        assert api.post(f"purchases/{uuid.uuid4()}/cancel/").status_code == 404

    def test_past_due_purchase_reads_as_overdue_and_stays_payable(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        created = api.post("purchases/", json=purchase_body(sandbox.brand_id, due=1_000_000_000)).json()
        assert created["purchase"]["due_strict"] is False
        purchase = api.get(f"purchases/{created['id']}/").json()
        assert purchase["status"] == "overdue"
        assert sandbox.control.purchase_pay(created["id"])["status"] == "paid"

    def test_past_due_strict_purchase_reads_as_expired(
        self, sandbox: SandboxProcess, api: httpx.Client
    ) -> None:
        body = purchase_body(sandbox.brand_id, due=1_000_000_000)
        body["purchase"]["due_strict"] = True
        created = api.post("purchases/", json=body).json()
        purchase = api.get(f"purchases/{created['id']}/").json()
        assert purchase["status"] == "expired"
        assert [h["status"] for h in purchase["status_history"]] == ["created", "expired"]
        assert api.post(f"purchases/{created['id']}/cancel/").status_code == 400
        with pytest.raises(httpx.HTTPStatusError):
            sandbox.control.purchase_pay(created["id"])

    def test_background_loop_expires_purchases(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        import time

        body = purchase_body(sandbox.brand_id, due=int(time.time()) + 1)
        body["purchase"]["due_strict"] = True
        created = api.post("purchases/", json=body).json()
        assert sandbox.control.purchase(created["id"])["status"] == "created"
        # The control API's peek never expires anything, so only the background loop can have done it.
        deadline = time.monotonic() + 5
        while sandbox.control.purchase(created["id"])["status"] != "expired" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox.control.purchase(created["id"])["status"] == "expired"

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            (lambda b: b.pop("brand_id"), {"brand_id": [("This field is required.", "required")]}),
            (lambda b: b.pop("client"), {"client.email": [("This field is required.", "required")]}),
            (
                lambda b: b["client"].pop("email"),
                {"client.email": [("This field is required.", "required")]},
            ),
            (
                lambda b: b["client"].update(email="nope"),
                {"client.email": [("Enter a valid email address.", "invalid")]},
            ),
            (
                lambda b: b["client"].update(full_name="x" * 129),
                {"client.full_name": [("Ensure this field has no more than 128 characters.", "max_length")]},
            ),
            (
                lambda b: b.update(client_id=str(uuid.uuid4())),
                {"__all__": [("Give either client.email or client_id, not both.", "invalid")]},
            ),
            (
                lambda b: b.pop("purchase"),
                {"purchase.products": [("This field is required.", "required")]},
            ),
            (
                lambda b: b["purchase"].update(products=[]),
                {"purchase.products": [("Ensure this field has at least 1 elements.", "min_length")]},
            ),
            (
                lambda b: b["purchase"].update(products=[{"name": "x", "price": "150.00"}]),
                {"purchase.products.0.price": [("A valid integer is required.", "invalid")]},
            ),
            (
                lambda b: b["purchase"].update(products=[{"name": "x", "price": 150.5}]),
                {"purchase.products.0.price": [("A valid integer is required.", "invalid")]},
            ),
            (
                lambda b: b["purchase"].update(products=[{"name": "ok", "price": 1}, {"price": 100}]),
                {"purchase.products.1.name": [("This field is required.", "required")]},
            ),
            (
                lambda b: b["purchase"].update(products=[{"name": "x", "price": -1}]),
                {
                    "purchase.products.0.price": [
                        ("Ensure this value is greater than or equal to 0.", "min_value")
                    ]
                },
            ),
            (
                lambda b: b.update(reference="x" * 129),
                {"reference": [("Ensure this field has no more than 128 characters.", "max_length")]},
            ),
            (
                lambda b: b.update(success_redirect="not a url"),
                {"success_redirect": [("Enter a valid URL.", "invalid")]},
            ),
            (
                lambda b: b.update(success_callback="https://a.example/" + "x" * 500),
                {"success_callback": [("Ensure this field has no more than 500 characters.", "max_length")]},
            ),
        ],
    )
    def test_field_errors(
        self, sandbox: SandboxProcess, api: httpx.Client, change: object, expected: object
    ) -> None:
        body = purchase_body(sandbox.brand_id)
        change(body)  # type: ignore[operator]
        response = api.post("purchases/", json=body)
        assert response.status_code == 400
        # Flat keys, each a list of {"message", "code"} (README fact 4).
        assert response.json() == {
            key: [{"message": m, "code": c} for m, c in items]
            for key, items in expected.items()  # type: ignore[attr-defined]
        }
        assert sandbox.control.purchases_by_reference(str(body.get("reference"))) == []

    def test_wrong_brand_is_400(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        response = api.post("purchases/", json=purchase_body(str(uuid.uuid4())))
        assert response.status_code == 400
        assert "brand_id" in response.json()

    def test_invalid_json_is_400_general_error(self, api: httpx.Client) -> None:
        response = api.post("purchases/", content=b"{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["__all__"][0]["code"] == "parse_error"

    def test_wrong_method_is_405(self, api: httpx.Client) -> None:
        response = api.delete("purchases/")
        assert response.status_code == 405
        assert response.json()["__all__"][0]["code"] == "method_not_allowed"


class TestPublicKey:
    def test_public_key_is_a_json_string_holding_a_pem(self, api: httpx.Client) -> None:
        response = api.get("public_key/")
        assert response.status_code == 200
        assert response.text.startswith('"-----BEGIN PUBLIC KEY-----\\n')
        pem = response.json()
        assert load_public_key(pem).key_size == 2048


class TestWebhooks:
    def test_crud(self, api: httpx.Client) -> None:
        created = api.post(
            "webhooks/",
            json={
                "title": "Backend",
                "events": ["purchase.paid", "payment.refunded"],
                "callback": "https://b.example/h",
            },
        )
        assert created.status_code == 201
        webhook = created.json()
        assert webhook["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
        assert webhook["events"] == ["purchase.paid", "payment.refunded"]
        assert webhook["all_events"] is False
        webhook_id = webhook["id"]

        assert api.get(f"webhooks/{webhook_id}/").json() == webhook

        patched = api.patch(f"webhooks/{webhook_id}/", json={"title": "Renamed"}).json()
        assert patched["title"] == "Renamed"
        assert patched["events"] == ["purchase.paid", "payment.refunded"]
        assert patched["public_key"] == webhook["public_key"]

        put = api.put(
            f"webhooks/{webhook_id}/",
            json={"title": "Put", "all_events": True, "callback": "https://c.example/"},
        )
        assert put.status_code == 200
        assert put.json()["all_events"] is True
        assert put.json()["events"] == []

        assert api.delete(f"webhooks/{webhook_id}/").status_code == 204
        assert api.get(f"webhooks/{webhook_id}/").status_code == 404

    def test_each_webhook_has_its_own_key(self, api: httpx.Client) -> None:
        body = {"title": "a", "all_events": True, "callback": "https://b.example/h"}
        first = api.post("webhooks/", json=body).json()
        second = api.post("webhooks/", json=body).json()
        company = api.get("public_key/").json()
        assert len({first["public_key"], second["public_key"], company}) == 3

    def test_list_is_paginated(self, api: httpx.Client) -> None:
        for n in range(22):
            api.post(
                "webhooks/", json={"title": f"w{n}", "all_events": True, "callback": "https://b.example/h"}
            )
        page1 = api.get("webhooks/").json()
        assert len(page1["results"]) == 20
        assert page1["previous"] is None
        assert page1["next"].endswith("/api/v1/webhooks/?page=2")
        page2 = api.get("webhooks/?page=2").json()
        assert [w["title"] for w in page2["results"]] == ["w20", "w21"]
        assert page2["next"] is None
        assert page2["previous"].endswith("?page=1")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"all_events": True, "callback": "https://b.example/"}, "title"),
            ({"title": "x" * 101, "all_events": True, "callback": "https://b.example/"}, "title"),
            ({"title": "t", "all_events": True}, "callback"),
            ({"title": "t", "events": ["purchase.nope"], "callback": "https://b.example/"}, "events"),
            ({"title": "t", "callback": "https://b.example/"}, "events"),
        ],
    )
    def test_validation(self, api: httpx.Client, body: dict[str, object], field: str) -> None:
        response = api.post("webhooks/", json=body)
        assert response.status_code == 400
        assert field in response.json()

    def test_unknown_webhook_is_404(self, api: httpx.Client) -> None:
        assert api.patch(f"webhooks/{uuid.uuid4()}/", json={"title": "x"}).status_code == 404


class TestNoGatewayPayouts:
    """The platform's OpenAPI has no /payouts/ (revio-platform README fact 1): an unknown route."""

    @pytest.mark.parametrize(
        ("method", "path"),
        [("POST", "payouts/"), ("GET", "payouts/"), ("GET", f"payouts/{uuid.uuid4()}/")],
    )
    def test_payouts_is_an_unknown_route(self, api: httpx.Client, method: str, path: str) -> None:
        response = api.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 404
        assert response.json() == {"__all__": [{"message": "Not found.", "code": "not_found"}]}

    def test_no_payout_control_endpoints(self, sandbox: SandboxProcess) -> None:
        response = httpx.post(f"{sandbox.base_url}/_sandbox/payouts/{uuid.uuid4()}/succeed")
        assert response.status_code == 404
