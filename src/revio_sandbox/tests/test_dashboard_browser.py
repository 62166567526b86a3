"""The sandbox dashboard at ``/``, clicked in headless Chromium: objects made through the API show up, the
page's buttons settle them through the control API (checked there and in the emitted deliveries), faults
are added from its form, deliveries resent, and with a control token the page is useless without it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.conftest import TEST_TIME_SCALE
from revio_sandbox.tests.support import Receiver, eft_payment_body, purchase_body

pytestmark = pytest.mark.browser

ROW_TIMEOUT = 10_000  # ms: the page refreshes after each action and every 2 s


def _row(page: Page, selector: str, status: str) -> None:
    page.wait_for_selector(f"{selector}[data-status='{status}']", timeout=ROW_TIMEOUT)


def _events(sandbox: SandboxProcess, object_id: str) -> list[str]:
    return [d["event_type"] for d in sandbox.control.deliveries(object_id=object_id)]


def test_the_page_is_static_and_strict(sandbox: SandboxProcess, page: Page) -> None:
    response = page.goto(sandbox.base_url + "/")
    assert response is not None
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "form-action 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    page.wait_for_selector("#main:not([hidden])")
    # No secret on the page or in its script: the API key is only in /_sandbox/config.
    html = page.content()
    script = httpx.get(sandbox.base_url + "/static/dashboard.js").text
    assert sandbox.api_key not in html
    assert sandbox.api_key not in script
    assert "innerHTML" not in script
    assert httpx.get(sandbox.base_url + "/static/../store.py").status_code == 404


def test_purchase_paid_refunded_and_charged_back_from_the_page(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, page: Page, webhook: dict[str, Any]
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="DASH-1")).json()
    pid = purchase["id"]
    page.goto(sandbox.base_url + "/")
    _row(page, f"#purchase-{pid}", "created")
    assert "DASH-1" in page.inner_text(f"#purchase-{pid}")

    page.click(f"#pay-{pid}")
    _row(page, f"#purchase-{pid}", "paid")
    assert sandbox.control.purchase(pid)["status"] == "paid"
    sandbox.control.wait_for_delivery(object_id=pid, event_type="purchase.paid")
    history = page.inner_text(f"#purchase-{pid} ol.history")
    assert [line.split()[0] for line in history.splitlines()] == ["created", "paid"]
    page.wait_for_selector("#balance-ZAR")
    assert page.inner_text("#balance-ZAR [data-field='balance']") == "R 145.50"  # 15000 less the 3% fee

    # A partial refund through the sandbox's own refund: a Payment and payment.refunded, as from the API.
    page.fill(f"#amount-{pid}", "5000")
    page.click(f"#refund-{pid}")
    page.wait_for_selector("#payments tr[data-kind='refund']", timeout=ROW_TIMEOUT)
    (refund,) = sandbox.control.purchase_payments(pid)
    assert (refund["amount"], refund["payment"]["payment_type"]) == (5000, "refund")
    assert sandbox.control.purchase(pid)["refundable_amount"] == 10_000
    refunded = sandbox.control.wait_for_delivery(object_id=refund["id"], event_type="payment.refunded")
    assert refunded["target"] == "webhook"
    assert receiver.wait_for(
        lambda rs: any(r.json()["event_type"] == "payment.refunded" for r in rs), path="/hook"
    )

    # The chargeback takes the rest (no amount typed): the purchase ends in chargeback.
    page.click(f"#chargeback-{pid}")
    _row(page, f"#purchase-{pid}", "chargeback")
    assert sandbox.control.purchase(pid)["status"] == "chargeback"
    chargeback = sandbox.control.purchase_payments(pid)[1]
    assert (chargeback["amount"], chargeback["payment"]["payment_type"]) == (10_000, "chargeback")
    sandbox.control.wait_for_delivery(object_id=chargeback["id"], event_type="payment.charged_back")
    page.wait_for_selector(f"#payment-{chargeback['id']}[data-kind='chargeback']", timeout=ROW_TIMEOUT)
    assert page.locator(f"#refund-{pid}").count() == 0  # nothing left to take back


def test_decline_and_expire_from_the_page(
    sandbox: SandboxProcess, api: httpx.Client, page: Page, webhook: dict[str, Any]
) -> None:
    declined = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="DASH-D")).json()
    expiring = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="DASH-E")).json()
    page.goto(sandbox.base_url + "/")
    _row(page, f"#purchase-{declined['id']}", "created")
    page.click(f"#decline-{declined['id']}")
    _row(page, f"#purchase-{declined['id']}", "error")
    assert sandbox.control.purchase(declined["id"])["status"] == "error"
    sandbox.control.wait_for_delivery(object_id=declined["id"], event_type="purchase.payment_failure")

    page.click(f"#expire-{expiring['id']}")
    _row(page, f"#purchase-{expiring['id']}", "overdue")
    assert sandbox.control.purchase(expiring["id"])["status"] == "overdue"
    assert page.locator(f"#expire-{expiring['id']}").count() == 0


def test_eft_payment_failed_and_returned_from_the_page(
    sandbox: SandboxProcess, receiver: Receiver, page: Page
) -> None:
    sandbox.eft_register_callback(receiver.url("/eft"))
    with sandbox.eft_client() as eft:
        # ...0004 stops at SUBMITTED (it stays open for the Fail button); the other completes by itself.
        stuck = eft.post(
            "v2/payment/eft", json=eft_payment_body("62001230004", contractReference="W-F")
        ).json()
        done = eft.post("v2/payment/eft", json=eft_payment_body(contractReference="W-R")).json()
    page.goto(sandbox.base_url + "/")
    _row(page, f"#eft-{stuck['id']}", "SUBMITTED")
    page.click(f"#eft-fail-{stuck['id']}")
    _row(page, f"#eft-{stuck['id']}", "TRANSACTION_FAILURE")
    assert sandbox.control.eft_payment(stuck["id"])["status"] == "TRANSACTION_FAILURE"
    failure = sandbox.control.wait_for_delivery(
        object_id=stuck["id"], event_type="EFT_PAYMENT.TRANSACTION_FAILURE"
    )
    assert failure["target"] == "eft"

    _row(page, f"#eft-{done['id']}", "COMPLETED")
    page.click(f"#eft-return-{done['id']}")
    _row(page, f"#eft-{done['id']}", "UNPAID")
    assert sandbox.control.eft_payment(done["id"])["status"] == "UNPAID"
    sandbox.control.wait_for_delivery(object_id=done["id"], event_type="EFT_PAYMENT.UNPAID")
    history = page.inner_text(f"#eft-{done['id']} ol.history")
    assert [line.split()[0] for line in history.splitlines()] == [
        "NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "COMPLETED", "UNPAID",
    ]  # fmt: skip


def test_eft_payment_succeeded_from_the_page(sandbox: SandboxProcess, page: Page) -> None:
    with sandbox.eft_client() as eft:
        stuck = eft.post(
            "v2/payment/eft", json=eft_payment_body("62001230004", contractReference="W-S")
        ).json()
    page.goto(sandbox.base_url + "/")
    _row(page, f"#eft-{stuck['id']}", "SUBMITTED")
    page.click(f"#eft-succeed-{stuck['id']}")
    _row(page, f"#eft-{stuck['id']}", "COMPLETED")
    assert sandbox.control.eft_payment(stuck["id"])["status"] == "COMPLETED"


def _add_fault(
    page: Page, kind: str, action: str, target: str, *, count: str = "1", status: str = "", options: str = ""
) -> None:
    page.select_option("#fault-kind", kind)
    page.select_option("#fault-action", action)
    page.fill("#fault-target", target)
    page.fill("#fault-count", count)
    page.fill("#fault-status", status)
    page.fill("#fault-options", options)
    page.click("#fault-add")


def test_fault_added_from_the_page_is_active(sandbox: SandboxProcess, api: httpx.Client, page: Page) -> None:
    page.goto(sandbox.base_url + "/")
    page.wait_for_selector("#main:not([hidden])")
    _add_fault(page, "http", "error", "purchases.create", count="2", status="503")
    page.wait_for_selector("#faults tr[data-action='error']", timeout=ROW_TIMEOUT)
    (fault,) = sandbox.control.faults()
    assert (fault["endpoint"], fault["status"], fault["remaining"]) == ("purchases.create", 503, 2)
    assert api.post("purchases/", json=purchase_body(sandbox.brand_id)).status_code == 503
    page.wait_for_selector(f"#fault-{fault['id']} [data-field='remaining']:text('1')", timeout=ROW_TIMEOUT)

    # A webhook fault with options, then a bad spec is refused with the sandbox's message.
    _add_fault(page, "webhook", "delay", "purchase.*", options='{"delay_ms": 1500}')
    page.wait_for_selector("#faults tr[data-action='delay']", timeout=ROW_TIMEOUT)
    delay = sandbox.control.faults()[1]
    assert (delay["kind"], delay["event_type"], delay["delay_ms"]) == ("webhook", "purchase.*", 1500)
    page.fill("#fault-options", '{"delay_ms": -1}')
    page.click("#fault-add")
    page.wait_for_selector("#error:text('delay_ms must be a number >= 0')")
    assert len(sandbox.control.faults()) == 2

    page.click(f"#fault-remove-{fault['id']}")
    page.wait_for_selector(f"#fault-{fault['id']}", state="detached", timeout=ROW_TIMEOUT)
    assert [f["id"] for f in sandbox.control.faults()] == [delay["id"]]
    page.click("#faults-clear")
    page.wait_for_selector("#faults .empty", timeout=ROW_TIMEOUT)
    assert sandbox.control.faults() == []


def test_resend_makes_a_new_attempt_shown_with_what_was_sent_and_answered(
    sandbox: SandboxProcess, api: httpx.Client, receiver: Receiver, page: Page, webhook: dict[str, Any]
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id)).json()
    delivery = sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.created")
    page.goto(sandbox.base_url + "/")
    page.wait_for_selector(f"#delivery-{delivery['id']}[data-attempts='1']", timeout=ROW_TIMEOUT)

    page.click(f"#resend-{delivery['id']}")
    page.wait_for_selector(f"#delivery-{delivery['id']}[data-attempts='2']", timeout=ROW_TIMEOUT)
    attempts = sandbox.control.delivery(delivery["id"])["attempts"]
    assert len(attempts) == 2
    created = [r for r in receiver.received("/hook") if r.json()["event_type"] == "purchase.created"]
    assert len(created) == 2
    assert created[0].body == created[1].body

    page.click(f"#delivery-details-{delivery['id']} summary")
    details = page.inner_text(f"#delivery-details-{delivery['id']}")
    assert "X-Signature" in details
    assert attempts[1]["signature"] in details
    assert '"event_type":"purchase.created"' in details.replace(" ", "")  # the signed body
    assert "HTTP 200" in details
    assert "ok" in page.inner_text(f"#delivery-details-{delivery['id']} .attempt[data-attempt='2'] pre")


@pytest.fixture(scope="module")
def guarded() -> Iterator[SandboxProcess]:
    with SandboxProcess(time_scale=TEST_TIME_SCALE, control_token="dash-" + secrets.token_hex(16)) as process:
        yield process


def test_with_a_control_token_the_dashboard_refuses_without_it(guarded: SandboxProcess, page: Page) -> None:
    token = guarded.control_token
    assert token is not None
    guarded.control.reset()
    with guarded.api_client() as api:
        purchase = api.post("purchases/", json=purchase_body(guarded.brand_id, reference="GUARDED")).json()
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))

    page.goto(guarded.base_url + "/")
    page.wait_for_selector("#token-panel:not([hidden])")
    assert page.is_hidden("#main")
    assert "GUARDED" not in page.content()
    assert httpx.get(guarded.base_url + "/_sandbox/overview").status_code == 401

    page.fill("#token-input", "not-the-token")
    page.click("#token-submit")
    page.wait_for_selector("#error:text('refused')")
    assert page.is_hidden("#main")
    assert page.evaluate("sessionStorage.getItem('revio-sandbox-control-token')") is None

    page.fill("#token-input", token)
    page.click("#token-submit")
    _row(page, f"#purchase-{purchase['id']}", "created")
    page.click(f"#pay-{purchase['id']}")
    _row(page, f"#purchase-{purchase['id']}", "paid")
    assert guarded.control.purchase(purchase["id"])["status"] == "paid"

    # The token went only in the Authorization header, never in a URL; the API key never left the sandbox.
    control_calls = [r for r in sent if "/_sandbox/" in r.url and "/health" not in r.url]
    assert control_calls
    assert all(token not in r.url and guarded.api_key not in r.url for r in sent)
    assert control_calls[-1].header_value("authorization") == f"Bearer {token}"
    assert token not in page.url


# WCAG 2 contrast of each element's text against the first opaque background behind it.
CONTRAST_SCRIPT = """
(elements) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return elements.filter((e) => e.offsetParent !== null && e.textContent.trim()).map((e) => {
    const [a, b] = [lum(rgb(getComputedStyle(e).color).slice(0, 3)), lum(background(e))];
    return [e.tagName + (e.id ? "#" + e.id : ""), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}
"""


def test_keyboard_labels_and_contrast(
    sandbox: SandboxProcess, api: httpx.Client, page: Page, webhook: dict[str, Any]
) -> None:
    purchase = api.post("purchases/", json=purchase_body(sandbox.brand_id, reference="KEYS")).json()
    page.goto(sandbox.base_url + "/")
    _row(page, f"#purchase-{purchase['id']}", "created")

    # Every form control has a label (its accessible name), the amount fields included once shown.
    unlabelled = page.locator("input, select").evaluate_all(
        "(controls) => controls.filter((c) => !c.labels || !c.labels.length).map((c) => c.id)"
    )
    assert unlabelled == []

    # Keyboard only: Tab reaches the Pay button, Enter pays, and the focus stays in the purchase's row.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == f"pay-{purchase['id']}":
            break
    else:
        pytest.fail("Tab never reached the Pay button")
    page.keyboard.press("Enter")
    _row(page, f"#purchase-{purchase['id']}", "paid")
    assert sandbox.control.purchase(purchase["id"])["status"] == "paid"
    assert page.evaluate(
        "document.activeElement.closest('tr') && document.activeElement.closest('tr').id"
    ) == (f"purchase-{purchase['id']}")
    assert page.locator("input.amount").evaluate_all("(inputs) => inputs.every((i) => i.labels.length)")

    ratios = page.locator("button, th, td, p, label, summary, h1, h2, legend").evaluate_all(CONTRAST_SCRIPT)
    assert ratios
    low = [(name, round(ratio, 2)) for name, ratio in ratios if ratio < 4.5]
    assert low == []
