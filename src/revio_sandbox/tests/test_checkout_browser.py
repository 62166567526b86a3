"""The hosted checkout page, clicked in headless Chromium (Debian's /usr/bin/chromium via Playwright)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver, purchase_body, signature_valid

pytestmark = pytest.mark.browser


def _create(sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    body = purchase_body(
        sandbox.brand_id,
        success_redirect=receiver.url("/deposit/ok"),
        failure_redirect=receiver.url("/deposit/failed"),
        success_callback=receiver.url("/cb"),
        **extra,
    )
    return dict(api.post("purchases/", json=body).json())


def test_pay_redirects_to_success_and_delivers_the_callback(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, page: Page, webhook: dict[str, Any]
) -> None:
    purchase = _create(sandbox, api, receiver)
    response = page.goto(purchase["checkout_url"])
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # so no script may run at all
    assert page.inner_text("#amount") == "R 150.00"
    assert page.inner_text("#currency") == "ZAR"
    assert page.inner_text("#reference") == "DEP-000123"
    assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "viewed"

    page.click("#pay")
    page.wait_for_url(receiver.url("/deposit/ok"))
    assert page.inner_text("#landed") == "Landed on /deposit/ok"

    paid = api.get(f"purchases/{purchase['id']}/").json()
    assert paid["status"] == "paid"
    assert [h["status"] for h in paid["status_history"]] == ["created", "viewed", "paid"]
    (callback,) = receiver.wait_count(1, path="/cb")
    assert callback.json()["event_type"] == "purchase.paid"
    assert signature_valid(api.get("public_key/").json(), callback.signature, callback.body)
    receiver.wait_count(3, path="/hook")
    assert [r.json()["event_type"] for r in receiver.received("/hook")] == [
        "purchase.created",
        "purchase.viewed",
        "purchase.paid",
    ]

    # A settled purchase shows its final state and no buttons.
    page.goto(purchase["checkout_url"])
    assert page.get_attribute("#status", "data-status") == "paid"
    assert page.locator("button").count() == 0


def test_decline_then_pay(sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, page: Page) -> None:
    purchase = _create(sandbox, api, receiver)
    page.goto(purchase["checkout_url"])
    page.click("#decline")
    page.wait_for_url(receiver.url("/deposit/failed"))
    declined = api.get(f"purchases/{purchase['id']}/").json()
    assert declined["status"] == "error"
    attempt = declined["transaction_data"]["attempts"][0]
    assert attempt["successful"] is False
    assert attempt["error"]["code"] == "card_declined"

    page.goto(purchase["checkout_url"])
    assert page.is_visible("#declined-notice")
    page.click("#pay")
    page.wait_for_url(receiver.url("/deposit/ok"))
    assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "paid"


def test_cancel_redirects_to_failure(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, page: Page
) -> None:
    purchase = _create(sandbox, api, receiver)
    page.goto(purchase["checkout_url"])
    page.click("#cancel")
    page.wait_for_url(receiver.url("/deposit/failed"))
    assert api.get(f"purchases/{purchase['id']}/").json()["status"] == "cancelled"
    assert receiver.received("/cb") == []


def test_without_redirect_urls_a_result_page_is_shown(
    sandbox: SandboxProcess, api: httpx.Client, page: Page
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    page.goto(purchase["checkout_url"])
    page.click("#pay")
    page.wait_for_selector("#result")
    assert "Payment successful" in page.inner_text("#result")
    assert page.get_attribute("#status", "data-status") == "paid"


def test_unknown_purchase_page_is_404(sandbox: SandboxProcess, page: Page) -> None:
    response = page.goto(f"{sandbox.base_url}/p/00000000-0000-0000-0000-000000000000/")
    assert response is not None
    assert response.status == 404
    assert "not found" in page.inner_text("h1").lower()
