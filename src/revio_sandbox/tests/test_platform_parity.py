"""The platform facts (../shared/revio-platform/README.md) checked against the running sandbox.

One row per fact, each naming its evidence. A row fails if the sandbox stops behaving like the platform's
own code and documents show; docs/sandbox-guesses.md lists what is still a guess.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from revio_sandbox import jsonb
from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import purchase_body

FIXTURE = json.loads((Path(__file__).resolve().parent / "vectors" / "signed-callback.body.json").read_bytes())
# The 21 purchase statuses (Go SDK status.go; revio-api.md section 2.4).
PURCHASE_STATUSES = {
    "created", "sent", "viewed", "overdue", "expired", "cancelled", "error", "blocked", "hold",
    "pending_capture", "pending_release", "released", "preauthorized", "paid", "cleared", "settled",
    "pending_execute", "pending_charge", "pending_refund", "refunded", "chargeback",
}  # fmt: skip

Check = Callable[[SandboxProcess, httpx.Client], None]


@dataclass(frozen=True)
class Row:
    fact: str
    evidence: str
    check: Check


def create(sandbox: SandboxProcess, api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = api.post("purchases/", json=purchase_body(sandbox.brand_id, **overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def paid(sandbox: SandboxProcess, api: httpx.Client) -> dict[str, Any]:
    return sandbox.control.purchase_pay(create(sandbox, api)["id"])


def is_error_shape(body: Any) -> bool:
    """Every key maps to a non-empty list of exactly {"message", "code"} strings (fact 4)."""
    return isinstance(body, dict) and all(
        isinstance(items, list)
        and items
        and all(isinstance(i, dict) and set(i) == {"message", "code"} for i in items)
        for items in body.values()
    )


# -- the checks ---------------------------------------------------------------------------------


def no_gateway_payouts(sandbox: SandboxProcess, api: httpx.Client) -> None:
    response = api.post("payouts/", json={"brand_id": sandbox.brand_id})
    assert response.status_code == 404
    assert response.json()["__all__"][0]["code"] == "not_found"


def due_defaults_to_an_hour(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = create(sandbox, api)
    assert purchase["due"] == purchase["created_on"] + 3600
    assert purchase["purchase"]["due_strict"] is False


def overdue_is_still_payable(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = create(sandbox, api, due=int(time.time()) - 1)
    assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "overdue"
    assert sandbox.control.purchase_pay(purchase["id"])["status"] == "paid"


def due_strict_expires(sandbox: SandboxProcess, api: httpx.Client) -> None:
    body = purchase_body(sandbox.brand_id, due=int(time.time()) - 1)
    body["purchase"]["due_strict"] = True
    purchase = api.post("purchases/", json=body).json()
    read = api.get(f"purchases/{purchase['id']}/").json()
    assert [h["status"] for h in read["status_history"]] == ["created", "expired"]
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.control.purchase_pay(purchase["id"])


def refund_answers_a_payment(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = paid(sandbox, api)
    payment = api.post(f"purchases/{purchase['id']}/refund/", json={"amount": 100}).json()
    assert (payment["status"], payment["amount"]) == ("success", 100)
    assert payment["related_to"] == {"type": "purchase", "id": purchase["id"]}


def refused_refund_is_all_purchase_refund_error(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = paid(sandbox, api)
    response = api.post(f"purchases/{purchase['id']}/refund/", json={"amount": 10**9})
    assert response.status_code == 400
    assert is_error_shape(response.json())
    assert response.json()["__all__"][0]["code"] == "purchase_refund_error"


def refund_event_is_the_payment_plus_event_type(sandbox: SandboxProcess, api: httpx.Client) -> None:
    api.post("webhooks/", json={"title": "t", "all_events": True, "callback": "http://127.0.0.1:9/"})
    purchase = paid(sandbox, api)
    payment = api.post(f"purchases/{purchase['id']}/refund/").json()
    (delivery,) = sandbox.control.deliveries(object_id=payment["id"])
    body = json.loads(delivery["body"])
    assert body == {**payment, "event_type": "payment.refunded"}
    assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "refunded"


def slow_refund_answers_pending_refund(sandbox: SandboxProcess, api: httpx.Client) -> None:
    api.post("webhooks/", json={"title": "t", "all_events": True, "callback": "http://127.0.0.1:9/"})
    purchase = paid(sandbox, api)
    sandbox.control.slow_refunds_next(seconds=60)
    answer = api.post(f"purchases/{purchase['id']}/refund/").json()
    assert (answer["type"], answer["status"]) == ("purchase", "pending_refund")
    (delivery,) = [
        d for d in sandbox.control.deliveries(object_id=purchase["id"]) if "refund" in d["event_type"]
    ]
    assert delivery["event_type"] == "purchase.pending_refund"


def field_errors_are_flat_lists(sandbox: SandboxProcess, api: httpx.Client) -> None:
    body = purchase_body(sandbox.brand_id)
    body["client"]["email"] = "not-an-email"
    body["purchase"]["products"] = [{"name": "x", "price": -1}]
    errors = api.post("purchases/", json=body).json()
    assert is_error_shape(errors)
    assert set(errors) == {"client.email", "purchase.products.0.price"}


def auth_errors_have_the_shape_too(sandbox: SandboxProcess, api: httpx.Client) -> None:
    response = httpx.get(f"{sandbox.api_url}purchases/{uuid.uuid4()}/")
    assert response.status_code == 401
    assert is_error_shape(response.json())


def plugin_style_body_is_accepted(sandbox: SandboxProcess, api: httpx.Client) -> None:
    body = purchase_body(sandbox.brand_id, reference=1234, an_unknown_field={"x": 1})
    body["purchase"]["products"] = [{"name": "Order 1234", "price": 2000.0, "quantity": 1}]
    response = api.post("purchases/", json=body)
    assert response.status_code == 201, response.text
    purchase = response.json()
    assert (purchase["reference"], purchase["purchase"]["total"]) == ("1234", 2000)
    assert "an_unknown_field" not in purchase


def email_xor_client_id(sandbox: SandboxProcess, api: httpx.Client) -> None:
    both = api.post("purchases/", json=purchase_body(sandbox.brand_id, client_id=str(uuid.uuid4())))
    assert both.status_code == 400
    only_id = purchase_body(sandbox.brand_id, client_id=str(uuid.uuid4()))
    del only_id["client"]
    assert api.post("purchases/", json=only_id).status_code == 201
    neither = purchase_body(sandbox.brand_id)
    del neither["client"]
    assert set(api.post("purchases/", json=neither).json()) == {"client.email"}


def full_name_is_at_most_128(sandbox: SandboxProcess, api: httpx.Client) -> None:
    body = purchase_body(sandbox.brand_id)
    body["client"]["full_name"] = "x" * 128
    assert api.post("purchases/", json=body).status_code == 201
    body["client"]["full_name"] = "x" * 129
    assert set(api.post("purchases/", json=body).json()) == {"client.full_name"}


def sent_fields_are_echoed(sandbox: SandboxProcess, api: httpx.Client) -> None:
    body = purchase_body(sandbox.brand_id, platform="woocommerce", creator_agent="WooCommerce: 1.0")
    body["purchase"].update(due_strict=True, timezone="Africa/Johannesburg", language="af")
    purchase = api.post("purchases/", json=body).json()
    assert (purchase["platform"], purchase["creator_agent"]) == ("woocommerce", "WooCommerce: 1.0")
    assert purchase["purchase"]["due_strict"] is True
    assert (purchase["purchase"]["timezone"], purchase["purchase"]["language"]) == (
        "Africa/Johannesburg",
        "af",
    )


def purchase_has_the_fixtures_fields(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = create(sandbox, api)
    assert set(purchase) == set(FIXTURE) - {"event_type"}
    for part in ("client", "purchase", "transaction_data", "issuer_details"):
        assert set(purchase[part]) == set(FIXTURE[part]), part
    assert set(purchase["purchase"]["products"][0]) == set(FIXTURE["purchase"]["products"][0])


def callback_bodies_are_jsonb_bytes(sandbox: SandboxProcess, api: httpx.Client) -> None:
    api.post("webhooks/", json={"title": "t", "all_events": True, "callback": "http://127.0.0.1:9/"})
    purchase = create(sandbox, api)
    (delivery,) = sandbox.control.deliveries(object_id=purchase["id"])
    raw = delivery["body"].encode()
    assert jsonb.dumps_bytes(json.loads(raw)) == raw
    assert json.loads(raw)["event_type"] == "purchase.created"


def public_key_is_a_json_string_pem(sandbox: SandboxProcess, api: httpx.Client) -> None:
    key = api.get("public_key/").json()
    assert isinstance(key, str)
    assert key.startswith("-----BEGIN PUBLIC KEY-----")


def statuses_are_the_platforms(sandbox: SandboxProcess, api: httpx.Client) -> None:
    seen = set()
    for action in ("purchase_pay", "purchase_decline", "purchase_cancel", "purchase_view"):
        seen.add(getattr(sandbox.control, action)(create(sandbox, api)["id"])["status"])
    seen.add(api.get(f"purchases/{create(sandbox, api, due=1)['id']}/").json()["status"])
    charged = paid(sandbox, api)
    sandbox.control.purchase_chargeback(charged["id"])
    seen.add(api.get(f"purchases/{charged['id']}/").json()["status"])
    assert seen <= PURCHASE_STATUSES
    assert seen >= {"paid", "error", "cancelled", "viewed", "overdue", "chargeback"}


def hold_operations_refuse(sandbox: SandboxProcess, api: httpx.Client) -> None:
    purchase = paid(sandbox, api)
    response = api.post(f"purchases/{purchase['id']}/capture/")
    assert response.status_code == 400
    assert response.json()["__all__"][0]["code"] == "purchase_capture_error"


def payment_methods_answer(sandbox: SandboxProcess, api: httpx.Client) -> None:
    body = api.get("payment_methods/", params={"brand_id": sandbox.brand_id, "currency": "ZAR"}).json()
    assert set(body) == {"available_payment_methods", "by_country", "country_names", "names", "card_methods"}


def balance_by_currency(sandbox: SandboxProcess, api: httpx.Client) -> None:
    paid(sandbox, api)
    zar = api.get("account/json/balance/").json()["ZAR"]
    assert set(zar) == {
        "balance",
        "fee_sell",
        "reserved",
        "gross_balance",
        "pending_outgoing",
        "available_balance",
    }
    assert all(isinstance(value, int) for value in zar.values())


ROWS = [
    Row("1 no gateway payouts", "OpenAPI path list has no /payouts/; no SDK calls one", no_gateway_payouts),
    Row(
        "2 due default", "signed fixture: due = created_on + 3600, due_strict false", due_defaults_to_an_hour
    ),
    Row(
        "2 overdue payable",
        "README fact 2 (due_strict false: overdue, still payable)",
        overdue_is_still_payable,
    ),
    Row(
        "2 due_strict expires", "README fact 2; WooCommerce plugin sends due_strict true", due_strict_expires
    ),
    Row(
        "3 refund Payment",
        "Node SDK purchasesRefund -> Payment; C# Payment.related_to",
        refund_answers_a_payment,
    ),
    Row(
        "3 refund refused", "Node SDK: 400 purchase_refund_error", refused_refund_is_all_purchase_refund_error
    ),
    Row(
        "3 payment.refunded",
        "README fact 7 body = object + event_type; revio-api 2.5",
        refund_event_is_the_payment_plus_event_type,
    ),
    Row(
        "3 pending_refund",
        "README fact 3; revio-api 2.6: a slow acquirer answers the Purchase in pending_refund",
        slow_refund_answers_pending_refund,
    ),
    Row("4 field errors", "Java SDK ApiErrors = Map<String, List<ApiError>>", field_errors_are_flat_lists),
    Row("4 auth errors", "Java SDK ApiErrors (every error body)", auth_errors_have_the_shape_too),
    Row(
        "5 plugin body",
        "WooCommerce plugin sends price 2000.0 and an integer reference",
        plugin_style_body_is_accepted,
    ),
    Row("5 email xor client_id", "README fact 5: client.email or client_id, not both", email_xor_client_id),
    Row("5 full_name <= 128", "README fact 5: client.full_name <= 128 characters", full_name_is_at_most_128),
    Row(
        "5 echo", "signed fixture echoes language, timezone, platform, creator_agent", sent_fields_are_echoed
    ),
    Row("fixture fields", "signed-callback.body.json key sets", purchase_has_the_fixtures_fields),
    Row(
        "7 jsonb bodies",
        "README test vectors: bytes as PostgreSQL jsonb prints",
        callback_bodies_are_jsonb_bytes,
    ),
    Row(
        "7 public key",
        "OpenAPI GET /public_key/: a JSON string holding a PEM",
        public_key_is_a_json_string_pem,
    ),
    Row("8 statuses", "Go SDK status.go (21 values)", statuses_are_the_platforms),
    Row("capture refused", "Node SDK purchasesCapture: 400 purchase_capture_error", hold_operations_refuse),
    Row("payment methods", "PHP SDK PaymentMethods; Node SDK paymentMethods", payment_methods_answer),
    Row("6 balance", "OpenAPI BalanceByCurrency / Balance", balance_by_currency),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.fact for row in ROWS])
def test_platform_fact(row: Row, sandbox: SandboxProcess, api: httpx.Client) -> None:
    row.check(sandbox, api)
