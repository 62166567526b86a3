"""The reference wallet page in headless Chromium, against a live server, the real sandbox and its checkout.

The deposit is credited by the sandbox's signed webhook delivered to the live server and processed there
(Celery eager, as in wallet/webhooks/tests/test_e2e.py); the withdrawal goes out on the EFT payments route
and its success is played through the sandbox's control API.
"""

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Page, Request, Response, expect, sync_playwright
from rest_framework_simplejwt.tokens import AccessToken

from conftest import LEAK_SCANNER, PASSWORD
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver
from wallet.webhooks.tests.conftest import RevioWebhook, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Markup in the account holder's name: it must come back as text, never as an element.
HOLDER = 'Thandi <img src=x id="pwned"> Nkosi'


@pytest.fixture
def eft(revio: Any) -> EftDriver:
    return EftDriver(sandbox=revio)


class Browser:
    """One page, plus what it sent: every request URL, and the tokens the API handed it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.request_urls: list[str] = []
        self.tokens: list[str] = []
        self.not_found: list[str] = []
        page.on("request", self._on_request)
        page.on("response", self._on_response)

    def _on_request(self, request: Request) -> None:
        self.request_urls.append(request.url)

    def _on_response(self, response: Response) -> None:
        if response.status == 404:
            self.not_found.append(response.url)
        if re.search(r"/api/v1/auth/token(/refresh)?$", response.url) and response.status == 200:
            pair = response.json()
            for kind in ("access", "refresh"):
                self.tokens.append(pair[kind])
                LEAK_SCANNER.plant(f"a wallet page's {kind} token", pair[kind])


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here between steps are
    # ordinary blocking calls, so Django's async-safety guard is relaxed for these tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = chromium.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        expect.set_options(timeout=20_000)
        yield Browser(page)
        context.close()
        chromium.close()
        connections.close_all()


def open_page(page: Page, url: str) -> Response:
    response = page.goto(url)
    assert response is not None
    assert response.status == 200
    page.wait_for_selector("body[data-ready=true]", state="attached")
    return response


def api_error(response: Response) -> dict[str, Any]:
    body = response.json()
    return dict(body["error"])


def fill_withdrawal(page: Page, amount: str, **bank: str) -> None:
    details = {**BANK, **bank}
    page.fill("#withdraw-amount", amount)
    page.fill("#withdraw-account-holder", details["account_holder"])
    page.fill("#withdraw-account-number", details["account_number"])
    page.fill("#withdraw-bank-code", details["bank_code"])
    page.select_option("#withdraw-account-type", details["account_type"])


def submit_and_capture(page: Page, selector: str, url_pattern: str) -> Response:
    with page.expect_response(lambda r: re.search(url_pattern, r.url) is not None) as info:
        page.click(selector)
    return info.value


def test_a_newcomer_registers_deposits_at_the_checkout_withdraws_and_sees_it_all(
    browser: Browser, live_server: Any, revio_webhook: RevioWebhook, eft: EftDriver, settings: Any
) -> None:
    settings.FRONTEND_URL = live_server.url  # where the checkout sends the customer back
    base = live_server.url
    page = browser.page
    email = "newcomer@example.com"

    response = open_page(page, f"{base}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#auth")).to_be_visible()
    expect(page.locator("#wallet")).to_be_hidden()

    # Register: the page logs the new account in at once.
    page.fill("#register-email", email)
    page.fill("#register-password", PASSWORD)
    page.click("#register-form button[type=submit]")
    expect(page.locator("#wallet")).to_be_visible()
    expect(page.locator("#session-email")).to_have_text(email)
    expect(page.locator("#balance-available")).to_have_text("0.00 ZAR")
    expect(page.locator("#history-empty")).to_be_visible()
    assert User.objects.filter(email=email).exists()

    # Log out: the refresh token the page held is revoked at the API, not only forgotten.
    refresh = page.evaluate("() => sessionStorage.getItem('wallet.refresh')")
    assert refresh
    page.click("#logout")
    expect(page.locator("#auth")).to_be_visible()
    expect(page.locator("#status")).to_have_text("You are logged out.")
    assert page.evaluate("() => sessionStorage.length") == 0
    reuse = page.request.post(f"{base}/api/v1/auth/token/refresh", data={"refresh": refresh})
    assert reuse.status == 401

    # A wrong password: the API's own message and code are shown.
    page.fill("#login-email", email)
    page.fill("#login-password", "not the password at all")
    refused = submit_and_capture(page, "#login-form button[type=submit]", r"/api/v1/auth/token$")
    assert refused.status == 401
    error = api_error(refused)
    expect(page.locator("#login-error")).to_have_text(error["message"])
    expect(page.locator("#login-error")).to_have_attribute("data-code", error["code"])
    expect(page.locator("#wallet")).to_be_hidden()

    # Log in with the keyboard only: tab order and Enter to submit.
    page.fill("#login-email", "")
    page.focus("#login-email")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "login-password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#wallet")).to_be_visible()
    expect(page.locator("#login-error")).to_be_empty()

    # Deposit R150.00: to the sandbox's checkout, pay, back to /deposits/<id>, credited by the webhook.
    page.fill("#deposit-amount", "150.00")
    page.click("#deposit-form button[type=submit]")
    page.wait_for_url(f"{revio_webhook.sandbox.base_url}/**")
    assert page.inner_text("#amount") == "R 150.00"
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(base) + r"/deposits/[0-9a-f-]{36}\?result=success$"))
    deposit = Transaction.objects.get(user__email=email, type="deposit")
    assert page.url.endswith(f"/deposits/{deposit.id}?result=success")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    expect(page.locator("#session-email")).to_have_text(email)  # the session survived the round trip
    expect(page.locator("#deposit-return")).to_be_visible()
    expect(page.locator("#deposit-return-status")).to_have_attribute("data-status", "completed")
    expect(page.locator("#deposit-return-message")).to_have_text(
        "Your deposit of 150.00 ZAR has been credited."
    )
    expect(page.locator("#status")).to_have_text("Your deposit of 150.00 ZAR has been credited.")
    expect(page.locator("#balance-available")).to_have_text("150.00 ZAR")
    user = User.objects.get(email=email)
    assert balance_get(user_id=user.id, currency="ZAR").available == 15_000
    page.click("#deposit-return-dismiss")
    assert page.url == f"{base}/"

    # A withdrawal above the balance: the API's message, nothing reserved.
    fill_withdrawal(page, "500.00")
    refused = submit_and_capture(page, "#withdraw-form button[type=submit]", r"/api/v1/withdrawals$")
    assert refused.status == 409
    error = api_error(refused)
    assert error["code"] == "insufficient_funds"
    expect(page.locator("#withdraw-error")).to_have_text(error["message"])
    expect(page.locator("#withdraw-error")).to_have_attribute("data-code", "insufficient_funds")
    assert not Transaction.objects.filter(user=user, type="withdrawal").exists()

    # A bad branch code: the field's own message sits next to the field, which is marked invalid.
    fill_withdrawal(page, "50.00", bank_code="12")
    refused = submit_and_capture(page, "#withdraw-form button[type=submit]", r"/api/v1/withdrawals$")
    assert refused.status == 400
    error = api_error(refused)
    expect(page.locator("#withdraw-bank_code-error")).to_have_text(
        " ".join(error["details"]["fields"]["bank_account"]["bank_code"])
    )
    expect(page.locator("#withdraw-bank-code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#withdraw-bank-code")).to_be_focused()
    expect(page.locator("#withdraw-error")).to_have_text(error["message"])

    # Withdraw R50.00 on the EFT route; Revio (the sandbox) pays it; the page follows it to completed.
    fill_withdrawal(page, "50.00", account_holder=HOLDER)
    page.click("#withdraw-form button[type=submit]")
    expect(page.locator("#withdraw-result-status")).to_have_attribute(
        "data-status", re.compile("pending|processing")
    )
    expect(page.locator("#withdraw-bank-code")).not_to_have_attribute("aria-invalid", "true")
    withdrawal = Transaction.objects.get(user=user, type="withdrawal")
    assert withdrawal.payout_route == "eft"
    payout_id = wait_for(
        lambda: Transaction.objects.get(id=withdrawal.id).provider_object_id, what="the EFT payment"
    )
    eft.succeed(payout_id)
    expect(page.locator("#withdraw-result-status")).to_have_attribute("data-status", "completed")
    expect(page.locator("#withdraw-result-message")).to_have_text(
        "Your withdrawal has been paid to your bank."
    )
    expect(page.locator("#balance-available")).to_have_text("100.00 ZAR")
    expect(page.locator("#balance-reserved")).to_have_text("0.00 ZAR")
    # hold/debt are rendered only when the API returns them.
    balance = page.request.get(
        f"{base}/api/v1/balance", headers={"Authorization": f"Bearer {api_token(page, base, email)}"}
    )
    for field in ("hold", "debt"):
        expect(page.locator(f"#balance-{field}")).to_be_visible(visible=field in balance.json())

    # History shows both, newest first, and a withdrawal's details as text.
    rows = page.locator("#history-rows tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-type", "withdrawal")
    expect(rows.nth(0)).to_have_attribute("data-status", "completed")
    expect(rows.nth(1)).to_have_attribute("data-type", "deposit")
    expect(rows.nth(1)).to_have_attribute("data-status", "completed")
    expect(rows.nth(1)).to_contain_text("150.00 ZAR")
    rows.nth(0).get_by_role("button").click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-heading")).to_be_focused()
    expect(page.locator('#detail-facts dd[data-term="Reference"]')).to_have_text(str(withdrawal.id))
    expect(page.locator('#detail-facts dd[data-term="Account holder"]')).to_have_text(HOLDER)
    expect(page.locator('#detail-facts dd[data-term="Account number"]')).to_have_text(re.compile(r"4567$"))
    expect(page.locator('#detail-facts dd[data-term="Account number"]')).not_to_contain_text("62001234567")
    assert page.locator("#pwned").count() == 0  # the markup stayed text

    # Statement: a CSV file when the API has the endpoint; a clear message while it answers 404.
    endpoint_exists = statements_exist(page, base, email)
    with page.expect_response(lambda r: "/api/v1/statements?" in r.url) as info:
        if endpoint_exists:
            with page.expect_download() as download:
                page.click("#statement-download")
            assert download.value.suggested_filename.endswith(".csv")
            # The file is the API's CSV of this month: the deposit and the withdrawal are on it.
            csv_text = Path(download.value.path()).read_text()
            assert str(withdrawal.id) in csv_text, csv_text
        else:
            page.click("#statement-download")
            expect(page.locator("#statement-message")).to_have_attribute(
                "data-code", "statements_unavailable"
            )
            expect(page.locator("#statement-message")).to_contain_text("Statements are not available")
    statement = info.value
    query = statement.url.split("?", 1)[1]
    assert set(re.findall(r"(\w+)=", query)) == {"from", "to", "format"}
    assert "format=csv" in query
    assert statement.request.headers["authorization"].startswith("Bearer ")

    # Tokens: never in a URL; the access token only in memory, the refresh token in sessionStorage.
    assert browser.tokens
    leaked = [url for url in browser.request_urls for token in browser.tokens if token in url]
    assert leaked == []
    assert page.evaluate("() => Object.keys(sessionStorage)") == ["wallet.refresh"]
    assert page.evaluate("() => localStorage.length") == 0
    assert "access" not in page.evaluate("() => document.cookie")

    # Nothing the page loads is missing (the statement endpoint aside, while it is not built).
    assert [url for url in browser.not_found if "/api/v1/statements?" not in url] == []

    page.click("#logout")
    expect(page.locator("#auth")).to_be_visible()


def api_token(page: Page, base: str, email: str) -> str:
    """An access token of the test's own, for reading the API directly (the page's stays in its memory)."""
    response = page.request.post(f"{base}/api/v1/auth/token", data={"email": email, "password": PASSWORD})
    assert response.ok
    return str(response.json()["access"])


def statements_exist(page: Page, base: str, email: str) -> bool:
    response = page.request.get(
        f"{base}/api/v1/statements?from=2026-01-01&to=2026-01-31&format=csv",
        headers={"Authorization": f"Bearer {api_token(page, base, email)}"},
    )
    return response.status != 404


def test_the_policy_stops_injected_markup_and_script(
    browser: Browser, live_server: Any, make_user: Callable[..., User]
) -> None:
    page = browser.page
    open_page(page, f"{live_server.url}/")
    # An HTML-parsing sink is refused outright (Trusted Types), so API text cannot become markup...
    outcome = page.evaluate(
        "() => { try { document.body.innerHTML = '<b id=x>x</b>'; return 'parsed'; }"
        " catch (e) { return e.name; } }"
    )
    assert outcome == "TypeError"
    # ...and markup that did get in through the DOM API cannot run code: inline handlers are blocked.
    page.evaluate(
        """() => {
            const img = document.createElement('img');
            try { img.setAttribute('onerror', 'window.pwned = true'); } catch (e) {}
            img.src = '/static/webapp/none.png';
            document.body.append(img);
        }"""
    )
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.pwned === true") is False


def test_hold_and_debt_are_shown_when_the_balance_carries_them(
    browser: Browser, live_server: Any, make_user: Callable[..., User]
) -> None:
    """The API does not return hold/debt yet: the real answer is extended on its way to the page."""
    page = browser.page
    user = make_user()

    def with_extra_fields(route: Any) -> None:
        real = route.fetch()
        body = real.json() | {"hold": 2_500, "debt": 1_000}
        route.fulfill(response=real, body=json.dumps(body))

    page.route("**/api/v1/balance", with_extra_fields)
    open_page(page, f"{live_server.url}/")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#balance-hold")).to_have_text("25.00 ZAR")
    expect(page.locator("#balance-debt")).to_have_text("10.00 ZAR")
    expect(page.locator("#balance-available")).to_have_text("0.00 ZAR")


def test_a_session_ends_cleanly_when_the_refresh_token_is_revoked(
    browser: Browser, live_server: Any, make_user: Callable[..., User]
) -> None:
    page = browser.page
    user = make_user()
    open_page(page, f"{live_server.url}/")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#wallet")).to_be_visible()
    # Another tab (a copy of this one's sessionStorage) used the refresh token: it is spent.
    refresh = page.evaluate("() => sessionStorage.getItem('wallet.refresh')")
    assert page.request.post(f"{live_server.url}/api/v1/auth/token/refresh", data={"refresh": refresh}).ok
    page.reload()
    page.wait_for_selector("body[data-ready=true]", state="attached")
    expect(page.locator("#auth")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")


def test_the_links_in_emails_open_the_page_there(
    browser: Browser,
    live_server: Any,
    make_user: Callable[..., User],
    fund: Callable[[User, int], Transaction],
) -> None:
    page = browser.page
    user = make_user()
    deposit = fund(user, 12_345)
    # A transaction link, opened signed out: log in, then its details show.
    open_page(page, f"{live_server.url}/transactions/{deposit.id}")
    expect(page.locator("#status")).to_have_text("Log in to continue.")
    log_in(page, user.email)
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator('#detail-facts dd[data-term="Reference"]')).to_have_text(str(deposit.id))
    expect(page.locator('#detail-facts dd[data-term="Amount"]')).to_have_text("123.45 ZAR")

    # The email settings link: the checkbox reflects the API and saves through it.
    open_page(page, f"{live_server.url}/settings/notifications")
    expect(page.locator("#preferences-heading")).to_be_focused()
    expect(page.locator("#pref-transaction-emails")).to_be_checked()
    page.uncheck("#pref-transaction-emails")
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/me/notifications") and r.request.method == "PATCH"
    ):
        page.click("#preferences-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("Your email settings are saved.")
    token = api_token(page, live_server.url, user.email)
    preferences = page.request.get(
        f"{live_server.url}/api/v1/me/notifications", headers={"Authorization": f"Bearer {token}"}
    )
    assert preferences.json()["transaction_emails"] is False


def test_a_forgotten_password_is_reset_from_the_emailed_link(
    browser: Browser, live_server: Any, make_user: Callable[..., User], mailoutbox: list[Any], settings: Any
) -> None:
    settings.FRONTEND_URL = live_server.url
    page = browser.page
    user = make_user()
    open_page(page, f"{live_server.url}/")
    page.fill("#forgot-email", user.email)
    answer = submit_and_capture(page, "#forgot-form button[type=submit]", r"/api/v1/auth/password-reset$")
    assert answer.status == 202
    expect(page.locator("#status")).to_have_text(answer.json()["message"])
    link = wait_for(
        lambda: next(
            (m for m in re.findall(r"https?://\S+reset-password\?token=[\w.:-]+", _bodies(mailoutbox))), None
        ),
        what="the reset email",
    )
    assert link.startswith(f"{live_server.url}/reset-password?token=")

    open_page(page, link)
    assert page.url == f"{live_server.url}/reset-password"  # the token is out of the address bar and history
    expect(page.locator("#reset-heading")).to_be_focused()
    page.fill("#reset-password", "12345678901")
    refused = submit_and_capture(page, "#reset-form button[type=submit]", r"/password-reset/confirm$")
    assert refused.status == 400
    expect(page.locator("#reset-new_password-error")).not_to_be_empty()
    expect(page.locator("#reset-password")).to_have_attribute("aria-invalid", "true")

    page.fill("#reset-password", "a brand new passphrase 42")
    done = submit_and_capture(page, "#reset-form button[type=submit]", r"/password-reset/confirm$")
    assert done.status == 204
    expect(page.locator("#auth")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Your new password is set. Log in with it.")
    log_in(page, user.email, "a brand new passphrase 42")
    expect(page.locator("#wallet")).to_be_visible()


def _bodies(mailoutbox: list[Any]) -> str:
    return "\n".join(str(m.body) for m in mailoutbox)


# WCAG 2 contrast of every visible element's own text against the background it is drawn on.
LOW_CONTRAST_JS = """() => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.a > 0) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.getClientRects().length || el.disabled) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const fg = luminance(parse(getComputedStyle(el).color));
    const bg = luminance(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName.toLowerCase()}#${el.id} ${ratio.toFixed(2)}`);
  }
  return low;
}"""

FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;  // focus left the page (past the last control)
  const s = getComputedStyle(el);
  return { id: el.id || el.textContent.trim(), style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
}"""


def tab_through(page: Page, presses: int) -> list[dict[str, Any]]:
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused:
            seen.append(focused)
    return seen


def test_keyboard_focus_is_visible_and_text_has_enough_contrast(
    browser: Browser,
    live_server: Any,
    make_user: Callable[..., User],
    fund: Callable[[User, int], Transaction],
) -> None:
    page = browser.page
    user = make_user()
    fund(user, 5_000)
    open_page(page, f"{live_server.url}/")
    page.fill("#login-email", user.email)
    page.fill("#login-password", "wrong password here")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).not_to_be_empty()  # error text is checked too
    assert page.evaluate(LOW_CONTRAST_JS) == []
    page.focus("#main")
    focused = tab_through(page, 12)
    assert {"login-email", "login-password", "register-email", "forgot-email"} <= {f["id"] for f in focused}
    assert [f for f in focused if f["style"] == "none" or f["width"] < 2] == []

    log_in(page, user.email)
    expect(page.locator("#history-rows tr")).to_have_count(1)
    assert page.evaluate(LOW_CONTRAST_JS) == []
    page.focus("#main")
    focused = tab_through(page, 25)
    ids = {f["id"] for f in focused}
    assert {"balance-refresh", "deposit-amount", "withdraw-amount", "withdraw-account-type"} <= ids
    assert [f for f in focused if f["style"] == "none" or f["width"] < 2] == []


def test_an_expired_access_token_is_renewed_once_for_calls_that_fail_together(
    browser: Browser, live_server: Any, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Access tokens the live server issues from now on live two seconds.
    monkeypatch.setattr(AccessToken, "lifetime", timedelta(seconds=2))
    page = browser.page
    user = make_user()
    refreshes: list[int] = []
    page.on(
        "response", lambda r: refreshes.append(r.status) if r.url.endswith("/auth/token/refresh") else None
    )
    open_page(page, f"{live_server.url}/")
    log_in(page, user.email)
    expect(page.locator("#balance-available")).to_have_text("0.00 ZAR")
    first_refresh = page.evaluate("() => sessionStorage.getItem('wallet.refresh')")
    page.wait_for_timeout(3_000)

    # Two reads at once, both refused with the expired token: one refresh, both retried and shown.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/transactions?page_size=20") and r.ok):
        page.evaluate(
            "() => { document.getElementById('balance-refresh').click();"
            " document.getElementById('history-refresh').click(); }"
        )
    expect(page.locator("#history-empty")).to_be_visible()
    assert refreshes == [200]
    expect(page.locator("#wallet")).to_be_visible()
    rotated = page.evaluate("() => sessionStorage.getItem('wallet.refresh')")
    assert rotated
    assert rotated != first_refresh  # rotation: the page keeps the new one; the old one is spent
    reuse = page.request.post(f"{live_server.url}/api/v1/auth/token/refresh", data={"refresh": first_refresh})
    assert reuse.status == 401


def test_a_payment_cancelled_at_the_checkout_comes_back_as_not_credited(
    browser: Browser, live_server: Any, revio_webhook: RevioWebhook, settings: Any
) -> None:
    settings.FRONTEND_URL = live_server.url
    page = browser.page
    open_page(page, f"{live_server.url}/")
    # Registration's field errors first: the API's message next to the password field.
    page.fill("#register-email", "canceller@example.com")
    page.fill("#register-password", "1234567890")
    refused = submit_and_capture(page, "#register-form button[type=submit]", r"/api/v1/auth/register$")
    assert refused.status == 400
    messages = api_error(refused)["details"]["fields"]["password"]
    expect(page.locator("#register-password-error")).to_have_text(" ".join(messages))
    expect(page.locator("#register-password")).to_have_attribute("aria-invalid", "true")
    page.fill("#register-password", PASSWORD)
    page.click("#register-form button[type=submit]")
    expect(page.locator("#wallet")).to_be_visible()

    page.fill("#deposit-amount", "20")
    page.click("#deposit-form button[type=submit]")
    page.wait_for_url(f"{revio_webhook.sandbox.base_url}/**")
    page.click("#cancel")
    page.wait_for_url(re.compile(r"/deposits/[0-9a-f-]{36}\?result=failure$"))
    expect(page.locator("#deposit-return-status")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#deposit-return-message")).to_have_text("Your deposit was not credited (cancelled).")
    expect(page.locator("#balance-available")).to_have_text("0.00 ZAR")
    expect(page.locator("#history-rows tr")).to_have_count(1)
    expect(page.locator("#history-rows tr").first).to_have_attribute("data-status", "cancelled")


def test_a_withdrawal_to_a_new_bank_account_asks_for_the_password_on_the_page(
    browser: Browser, live_server: Any, make_user: Callable[..., User], fund: Any, settings: Any
) -> None:
    """Step-up (issue 17 F10) through the page: the API's 403 step_up_required becomes a clear request for
    the password next to its field, nothing is reserved, and the same withdrawal with it is accepted."""
    settings.WITHDRAWAL_STEP_UP_NEW_ACCOUNT = True
    page = browser.page
    user = make_user()
    fund(user, 20_000)
    open_page(page, f"{live_server.url}/")
    log_in(page, user.email)
    expect(page.locator("#wallet")).to_be_visible()
    fill_withdrawal(page, "50.00")
    refused = submit_and_capture(page, "#withdraw-form button[type=submit]", r"/api/v1/withdrawals$")
    assert refused.status == 403
    assert api_error(refused)["code"] == "step_up_required"
    expect(page.locator("#withdraw-step_up_password-error")).to_contain_text("enter your password")
    expect(page.locator("#withdraw-step-up")).to_be_focused()
    assert not Transaction.objects.filter(user_id=user.id, type="withdrawal").exists()
    assert balance_get(user_id=user.id, currency="ZAR").reserved == 0

    page.fill("#withdraw-step-up", PASSWORD)
    accepted = submit_and_capture(page, "#withdraw-form button[type=submit]", r"/api/v1/withdrawals$")
    assert accepted.status == 201, accepted.text()
    assert balance_get(user_id=user.id, currency="ZAR").reserved == 5_000
    assert PASSWORD not in accepted.text()
