"""Payout lifecycle: magic bank account values, forced outcomes and payout.* events."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver, payout_body, signature_valid


def events_for(receiver: Receiver, object_id: str) -> list[str]:
    return [r.json()["event_type"] for r in receiver.received("/hook") if r.json()["id"] == object_id]


def wait_events(receiver: Receiver, object_id: str, count: int, timeout: float = 10) -> list[str]:
    receiver.wait_for(
        lambda rs: sum(1 for r in rs if r.json()["id"] == object_id) >= count, path="/hook", timeout=timeout
    )
    return events_for(receiver, object_id)


@pytest.mark.usefixtures("webhook")
class TestMagicValues:
    def test_normal_account_succeeds(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        payout = api.post("payouts/", json=payout_body(sandbox.brand_id, account="1234560000")).json()
        assert wait_events(receiver, payout["id"], 3) == [
            "payout.created",
            "payout.pending",
            "payout.success",
        ]
        final = api.get(f"payouts/{payout['id']}/").json()
        assert final["status"] == "success"
        assert [h["status"] for h in final["status_history"]] == ["created", "pending", "success"]
        assert isinstance(final["payment"]["paid_on"], int)
        assert final["payment"]["pending_amount"] == 0
        last = receiver.received("/hook")[-1]
        assert last.json()["status"] == "success"

    def test_0001_is_rejected_at_creation(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        response = api.post("payouts/", json=payout_body(sandbox.brand_id, account="1234560001"))
        assert response.status_code == 400
        assert response.json()["__all__"][0]["code"] == "payout_bank_account_rejected"
        assert api.get("payouts/", params={"reference": "WD-000001"}).json()["results"] == []

    def test_0002_fails_after_being_accepted(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        payout = api.post("payouts/", json=payout_body(sandbox.brand_id, account="1234560002"))
        assert payout.status_code == 201
        payout_id = payout.json()["id"]
        assert wait_events(receiver, payout_id, 3) == ["payout.created", "payout.pending", "payout.failed"]
        final = api.get(f"payouts/{payout_id}/").json()
        assert final["status"] == "error"
        assert final["transaction_data"]["attempts"][0]["error"]["code"] == "payout_failed"
        assert final["payment"]["paid_on"] is None

    def test_0003_is_returned_after_success(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id, account="1234560003")).json()[
            "id"
        ]
        events = wait_events(receiver, payout_id, 4)
        assert events == ["payout.created", "payout.pending", "payout.success", "payout.failed"]
        final = api.get(f"payouts/{payout_id}/").json()
        assert [h["status"] for h in final["status_history"]] == ["created", "pending", "success", "error"]
        assert final["transaction_data"]["attempts"][0]["error"]["code"] == "payout_returned"

    def test_0004_stays_pending(self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver) -> None:
        payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id, account="1234560004")).json()[
            "id"
        ]
        assert wait_events(receiver, payout_id, 2) == ["payout.created", "payout.pending"]
        time.sleep(1.0)  # more than three payout delays
        assert api.get(f"payouts/{payout_id}/").json()["status"] == "pending"
        assert events_for(receiver, payout_id) == ["payout.created", "payout.pending"]


@pytest.mark.usefixtures("webhook")
class TestForcedOutcomes:
    def test_succeed_a_pending_forever_payout(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id, account="9990004")).json()["id"]
        forced = sandbox.control.payout_succeed(payout_id)
        assert forced["status"] == "success"
        assert wait_events(receiver, payout_id, 3) == ["payout.created", "payout.pending", "payout.success"]

    def test_fail_overrides_a_normal_payout(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id)).json()["id"]
        assert sandbox.control.payout_fail(payout_id)["status"] == "error"
        time.sleep(0.6)  # past the payout delay: the automatic success must not happen
        assert api.get(f"payouts/{payout_id}/").json()["status"] == "error"
        assert events_for(receiver, payout_id)[-1] == "payout.failed"
        assert "payout.success" not in events_for(receiver, payout_id)

    def test_return_after_success(
        self, sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver
    ) -> None:
        payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id)).json()["id"]
        sandbox.control.payout_succeed(payout_id)
        returned = sandbox.control.payout_return(payout_id)
        assert returned["status"] == "error"
        assert wait_events(receiver, payout_id, 4)[-2:] == ["payout.success", "payout.failed"]

    def test_invalid_transitions_are_409(self, sandbox: SandboxProcess, api: httpx.Client) -> None:
        payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id, account="1234560004")).json()[
            "id"
        ]
        with pytest.raises(httpx.HTTPStatusError) as caught:
            sandbox.control.payout_return(payout_id)
        assert caught.value.response.status_code == 409
        sandbox.control.payout_fail(payout_id)
        with pytest.raises(httpx.HTTPStatusError):
            sandbox.control.payout_succeed(payout_id)


def test_payout_events_are_signed_with_the_webhook_key(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, webhook: dict[str, Any]
) -> None:
    payout_id = api.post("payouts/", json=payout_body(sandbox.brand_id)).json()["id"]
    wait_events(receiver, payout_id, 3)
    for request in receiver.received("/hook"):
        assert signature_valid(str(webhook["public_key"]), request.signature, request.body)
        body = request.json()
        assert body["type"] == "payout"
        assert body["payment"]["is_outgoing"] is True
