"""The EFT payments API emulation: OAuth2 tokens, payment validation, states, unsigned callbacks, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver
from revio_sandbox.tests.support import eft_payment_body as payment_body


@pytest.fixture
def eft(sandbox: SandboxProcess) -> Iterator[httpx.Client]:
    with sandbox.eft_client() as client:
        yield client


def statuses(payment: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in payment["statusHistory"]]


class TestTokens:
    def test_client_credentials_grant_issues_a_bearer_token(self, sandbox: SandboxProcess) -> None:
        client_id, secret = sandbox.eft_credentials()
        response = httpx.post(
            sandbox.eft_token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["token_type"], body["expires_in"]) == ("Bearer", 86_400)
        assert sandbox.control.eft_state()["token_requests"] == 1

    @pytest.mark.parametrize(
        ("auth", "grant", "status", "error"),
        [
            (("someone", "else"), "client_credentials", 401, "invalid_client"),
            (None, "client_credentials", 401, "invalid_client"),
            ("ok", "password", 400, "unsupported_grant_type"),
        ],
    )
    def test_bad_requests_get_oauth2_errors(
        self, sandbox: SandboxProcess, auth: Any, grant: str, status: int, error: str
    ) -> None:
        credentials = sandbox.eft_credentials() if auth == "ok" else auth
        response = httpx.post(sandbox.eft_token_url, data={"grant_type": grant}, auth=credentials)
        assert (response.status_code, response.json()) == (status, {"error": error})

    def test_expired_revoked_and_missing_tokens_get_the_documented_401(self, sandbox: SandboxProcess) -> None:
        sandbox.control.eft_set_token_lifetime(1)
        with sandbox.eft_client() as client:
            assert client.get("v2/payment/eft", params={"contractReference": "x"}).status_code == 200
            time.sleep(1.1)
            expired = client.get("v2/payment/eft", params={"contractReference": "x"})
        assert (expired.status_code, expired.json()) == (401, {"statusCode": 401, "message": "Unauthorized"})
        sandbox.control.eft_set_token_lifetime(3600)
        with sandbox.eft_client() as client:
            assert sandbox.control.eft_revoke_tokens() >= 1
            assert client.get("v2/payment/eft", params={"contractReference": "x"}).status_code == 401
        assert httpx.get(f"{sandbox.eft_base_url}v2/payment/eft/x").status_code == 401


class TestPayments:
    def test_create_then_read_by_id_and_by_reference(self, eft: httpx.Client) -> None:
        created = eft.post("v2/payment/eft", json=payment_body())
        assert created.status_code == 201
        payment = created.json()
        assert (payment["status"], payment["amountCents"], payment["contractReference"]) == (
            "NEW",
            12_345,
            "W-1",
        )
        assert eft.get(f"v2/payment/eft/{payment['id']}").json()["id"] == payment["id"]
        found = eft.get("v2/payment/eft", params={"contractReference": "W-1"}).json()["results"]
        assert [p["id"] for p in found] == [payment["id"]]
        assert eft.get("v2/payment/eft/00000000-0000-4000-8000-000000000000").status_code == 404

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"amountCents": 500_000_001}, "amountCents"),
            ({"amountCents": "100"}, "amountCents"),
            ({"serviceType": "NEXTWEEK"}, "serviceType"),
            ({"profileCode": "OTHER"}, "profileCode"),
            ({"paymentDate": "tomorrow"}, "paymentDate"),
            ({"contractReference": ""}, "contractReference"),
            (
                {"creditor": {"accountNumber": "1", "branchCode": "250655", "accountType": "CURRENT"}},
                "creditor.name",
            ),
            (
                {
                    "creditor": {
                        "accountNumber": "62001234567",
                        "branchCode": "25",
                        "accountType": "X",
                        "name": "n",
                    }
                },
                "creditor.accountType",
            ),
            ({"debtor": None}, "debtor.accountNumber"),
        ],
    )
    def test_invalid_requests_are_400_and_create_nothing(
        self, eft: httpx.Client, change: dict[str, Any], field: str
    ) -> None:
        response = eft.post("v2/payment/eft", json=payment_body(**change))
        assert response.status_code == 400
        assert field in [error["field"] for error in response.json()["errors"]]
        assert eft.get("v2/payment/eft", params={"contractReference": "W-1"}).json()["results"] == []

    def test_the_limit_is_r5_million(self, eft: httpx.Client) -> None:
        assert eft.post("v2/payment/eft", json=payment_body(amountCents=500_000_000)).status_code == 201

    def test_progresses_by_itself_to_completed(self, eft: httpx.Client) -> None:
        payment = eft.post("v2/payment/eft", json=payment_body()).json()
        deadline = time.monotonic() + 10
        while eft.get(f"v2/payment/eft/{payment['id']}").json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline, "never completed"
            time.sleep(0.05)
        final = eft.get(f"v2/payment/eft/{payment['id']}").json()
        assert statuses(final) == ["NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "COMPLETED"]

    @pytest.mark.parametrize(
        ("account", "last"), [("62000000002", "TRANSACTION_FAILURE"), ("62000000003", "UNPAID")]
    )
    def test_magic_accounts_fail_or_come_back(self, eft: httpx.Client, account: str, last: str) -> None:
        payment = eft.post("v2/payment/eft", json=payment_body(account)).json()
        deadline = time.monotonic() + 10
        while eft.get(f"v2/payment/eft/{payment['id']}").json()["status"] != last:
            assert time.monotonic() < deadline, f"never reached {last}"
            time.sleep(0.05)

    def test_a_rejected_account_is_a_400(self, eft: httpx.Client) -> None:
        response = eft.post("v2/payment/eft", json=payment_body("62000000001"))
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "creditor.accountNumber"

    def test_forced_states_and_refused_moves(self, sandbox: SandboxProcess, eft: httpx.Client) -> None:
        payment = eft.post("v2/payment/eft", json=payment_body("62000000004")).json()
        done = sandbox.control.eft_payment_succeed(payment["id"])
        assert done["status"] == "COMPLETED"
        with pytest.raises(httpx.HTTPStatusError):
            sandbox.control.eft_payment_fail(payment["id"])
        assert sandbox.control.eft_payment_set_status(payment["id"], "DISPUTED")["status"] == "DISPUTED"


class TestCallbacks:
    def test_registered_urls_get_unsigned_callbacks_for_every_state_change(
        self, sandbox: SandboxProcess, eft: httpx.Client, receiver: Receiver
    ) -> None:
        registered = eft.post(
            "v2/clientcallbackurl/",
            json={"url": receiver.url("/eft"), "callbackType": "EFT_PAYMENT", "callbackVersion": "V2"},
        )
        assert registered.status_code == 201
        payment = eft.post("v2/payment/eft", json=payment_body()).json()
        received = receiver.wait_count(5, path="/eft")
        assert [r.json()["status"] for r in received] == [
            "NEW",
            "QUEUED",
            "SUBMITTED",
            "ACCEPTED",
            "COMPLETED",
        ]
        assert all("x-signature" not in r.headers for r in received)
        assert {r.json()["id"] for r in received} == {payment["id"]}

    def test_callback_test_endpoint_simulates_a_status_change(
        self, sandbox: SandboxProcess, eft: httpx.Client, receiver: Receiver
    ) -> None:
        sandbox.eft_register_callback(receiver.url("/eft"))
        payment = eft.post("v2/payment/eft", json=payment_body("62000000004")).json()
        receiver.wait_for(lambda rs: any(r.json()["status"] == "SUBMITTED" for r in rs), path="/eft")
        answer = eft.post(f"v2/callback/test/eft/{payment['id']}", json={"status": "TRANSACTION_FAILURE"})
        assert answer.json()["status"] == "TRANSACTION_FAILURE"
        receiver.wait_for(
            lambda rs: any(r.json()["status"] == "TRANSACTION_FAILURE" for r in rs), path="/eft"
        )

    def test_delivery_faults_apply_to_eft_callbacks(
        self, sandbox: SandboxProcess, eft: httpx.Client, receiver: Receiver
    ) -> None:
        sandbox.eft_register_callback(receiver.url("/eft"))
        sandbox.control.duplicate_next_event(event_type="EFT_PAYMENT.NEW", target="eft", copies=3)
        sandbox.control.drop_next_event(event_type="EFT_PAYMENT.QUEUED", target="eft")
        receiver.script["/eft"] = [500]  # the first attempt fails and is retried
        eft.post("v2/payment/eft", json=payment_body("62000000004"))
        received = receiver.wait_for(
            lambda rs: sum(1 for r in rs if r.json()["status"] == "SUBMITTED") >= 1, path="/eft"
        )
        seen = [r.json()["status"] for r in received]
        assert seen.count("NEW") == 4  # three copies, one of them retried after the 500
        assert "QUEUED" not in seen

    def test_http_faults_apply_to_the_eft_api(self, sandbox: SandboxProcess, eft: httpx.Client) -> None:
        sandbox.control.fail_next("eft.payments.create", status=503)
        failed = eft.post("v2/payment/eft", json=payment_body())
        assert (failed.status_code, failed.json()["statusCode"]) == (503, 503)
        assert eft.get("v2/payment/eft", params={"contractReference": "W-1"}).json()["results"] == []
        sandbox.control.fail_next("eft.token", status=500)
        client_id, secret = sandbox.eft_credentials()
        token = httpx.post(
            sandbox.eft_token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert token.status_code == 500
