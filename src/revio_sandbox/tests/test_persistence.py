"""State survives a restart: purchases, keys, webhooks and pending deliveries (own sandbox process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver, purchase_body, signature_valid


@pytest.fixture
def slow_sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    # time_scale 0.004: the first retry comes ~2 s after a failed attempt, long enough to restart in between.
    process = SandboxProcess(tmp_path / "data", time_scale=0.004, delivery_timeout=1.0)
    with process:
        yield process


def test_restart_keeps_objects_keys_and_delivers_pending_events(
    slow_sandbox: SandboxProcess, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [500]
    with slow_sandbox.api_client() as api:
        webhook = api.post(
            "webhooks/", json={"title": "t", "all_events": True, "callback": receiver.url("/hook")}
        ).json()
        purchase = api.post("purchases/", json=purchase_body(slow_sandbox.brand_id)).json()
        company_pem = api.get("public_key/").json()
    receiver.wait_count(1, path="/hook")  # the first attempt failed with 500; a retry is pending

    slow_sandbox.restart()

    with slow_sandbox.api_client() as api:
        assert api.get(f"purchases/{purchase['id']}/").json() == purchase
        assert api.get("public_key/").json() == company_pem
        assert api.get(f"webhooks/{webhook['id']}/").json()["public_key"] == webhook["public_key"]
    received = receiver.wait_count(2, path="/hook", timeout=10)
    assert received[1].body == received[0].body
    assert signature_valid(str(webhook["public_key"]), received[1].signature, received[1].body)
    (delivery,) = slow_sandbox.control.deliveries(object_id=purchase["id"])
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]


def test_eft_payment_steps_continue_after_restart(tmp_path: Path) -> None:
    from revio_sandbox.tests.support import eft_payment_body

    with SandboxProcess(tmp_path / "data", payout_delay=1.0) as process:
        with process.eft_client() as eft:
            payment = eft.post("v2/payment/eft", json=eft_payment_body()).json()
        process.restart()
        deadline = time.monotonic() + 5
        while process.control.eft_payment(payment["id"])["status"] != "COMPLETED":
            assert time.monotonic() < deadline, "EFT payment never completed after restart"
            time.sleep(0.1)


def test_retry_now_skips_the_backoff(slow_sandbox: SandboxProcess, receiver: Receiver) -> None:
    receiver.script["/hook"] = [500]
    with slow_sandbox.api_client() as api:
        api.post("webhooks/", json={"title": "t", "all_events": True, "callback": receiver.url("/hook")})
        api.post("purchases/", json=purchase_body(slow_sandbox.brand_id))
    receiver.wait_count(1, path="/hook")
    assert slow_sandbox.control.retry_deliveries_now() == 1
    received = receiver.wait_count(2, path="/hook", timeout=1.5)  # well before the ~2 s scheduled retry
    assert received[1].at - received[0].at < 1.5


def test_same_data_dir_keeps_generated_identity(tmp_path: Path) -> None:
    first = SandboxProcess(tmp_path / "d")
    with first:
        config = first.control.config()
    # A second process on the same folder with other settings keeps the stored company key.
    second = SandboxProcess(tmp_path / "d", api_key=first.api_key, brand_id=first.brand_id)
    with second:
        assert second.control.config()["company_public_key"] == config["company_public_key"]
        assert second.control.config()["company_id"] == config["company_id"]


def test_a_data_folder_from_before_the_dashboard_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    from revio_sandbox.core import RuntimeSettings, Sandbox
    from revio_sandbox.store import Store

    # The two tables as they were before attempts kept the answer and payments their history.
    old = sqlite3.connect(tmp_path / "sandbox.db")
    old.executescript(
        """
        CREATE TABLE payments (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
            purchase_id TEXT NOT NULL, kind TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'done', due_at REAL, data TEXT NOT NULL);
        CREATE TABLE delivery_attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id INTEGER NOT NULL,
            attempted_at REAL NOT NULL, url TEXT NOT NULL, status_code INTEGER, error TEXT,
            duration_ms REAL NOT NULL, signature TEXT NOT NULL);
        INSERT INTO payments (id, purchase_id, kind, amount, currency, data)
            VALUES ('p1', 'x', 'refund', 100, 'ZAR', '{"id": "p1"}');
        """
    )
    old.commit()
    old.close()

    sandbox = Sandbox(Store(tmp_path), RuntimeSettings(public_url="http://127.0.0.1:1"))
    sandbox.ensure_identity(api_key=None, brand_id=None)
    columns = {r["name"] for r in sandbox.store.fetchall("PRAGMA table_info(delivery_attempts)")}
    assert {"request_headers", "response_headers", "response_body"} <= columns
    (payment,) = sandbox.overview()["payments"]
    assert (payment["id"], payment["status"], payment["status_history"]) == ("p1", "success", [])
    sandbox.store.close()
    Store(tmp_path).close()  # opening it again adds nothing twice
