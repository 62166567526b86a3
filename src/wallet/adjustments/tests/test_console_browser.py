"""The operations console in headless Chromium: sections, main lists, a four-eyes correction end to end."""

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Page, sync_playwright

from conftest import PASSWORD
from wallet.accounts.models import User
from wallet.adjustments.models import AdjustmentProposal, ProposalStatus
from wallet.audit.models import AuditAction, AuditEvent
from wallet.audit.selectors import audit_chain_problems
from wallet.ledger.models import Journal, JournalKind
from wallet.ledger.selectors import balance_get, ledger_problems

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MAIN_LISTS = [
    "accounts/user/",
    "ledger/balance/",
    "transactions/transaction/",
    "ledger/journal/",
    "webhooks/webhooklog/",
    "webhooks/webhookrejection/",
    "notifications/notification/",
    "adjustments/adjustmentproposal/",
    "audit/auditevent/",
]


@pytest.fixture
def page(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here between pages are
    # ordinary blocking calls, so Django's async-safety guard is relaxed for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()
        # ORM calls made while Playwright's loop ran may have opened a connection of their own: close it,
        # or the test database cannot be dropped at the end of the session.
        connections.close_all()


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")


def sign_out(page: Page) -> None:
    page.click("#logout-form button")
    page.wait_for_selector("text=Logged out")


def run_action(page: Page, base: str, action: str) -> str:
    page.goto(f"{base}/admin/adjustments/adjustmentproposal/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    return page.inner_text("ul.messagelist")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_operator_session_four_eyes_correction_end_to_end(
    page: Page, live_server: Any, make_user: Callable[..., User], credit: Callable[[User, int], None]
) -> None:
    base = live_server.url
    admin_a = make_user(email="ops-a@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)
    admin_b = make_user(email="ops-b@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)
    customer = make_user(email="customer@example.com")
    credit(customer, 10_000)

    # A normal user is not let in; a wrong password is refused (and audited).
    sign_in(page, base, customer.email)
    assert page.locator(".errornote").count() == 1
    sign_in(page, base, admin_a.email, "not the password")
    assert page.locator(".errornote").count() == 1

    sign_in(page, base, admin_a.email)
    page.wait_for_selector("#site-name")
    assert "Wallet operations" in page.inner_text("#site-name")
    captions = [c.strip() for c in page.locator("#content-main caption").all_text_contents()]
    expected = ["Users and balances", "Transactions and ledger journals", "Webhook log and dead letters"]
    assert captions[:3] == expected
    assert captions.index("Balance corrections (four eyes)") < captions.index("Audit log")

    for path in MAIN_LISTS:
        response = page.goto(f"{base}/admin/{path}")
        assert response is not None
        assert response.status == 200, path
        assert page.locator("#changelist").count() == 1, path

    # Admin A proposes a R25.00 credit to the customer.
    page.goto(f"{base}/admin/adjustments/adjustmentproposal/add/")
    page.fill("input[name=user]", str(customer.id))
    page.fill("input[name=amount]", "2500")
    page.select_option("select[name=reason_code]", "missed_credit")
    page.fill("textarea[name=reason]", "Revio shows the purchase paid; the webhook never arrived")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    assert "+25.00 ZAR" in page.inner_text("#result_list")

    # A cannot approve it.
    message = run_action(page, base, "approve_selected")
    assert "a different admin must decide it" in message
    assert balance_get(user_id=customer.id, currency="ZAR").available == 10_000
    sign_out(page)

    # B can; the balance moves by exactly the correction.
    sign_in(page, base, admin_b.email)
    page.wait_for_selector("#site-name")
    message = run_action(page, base, "approve_selected")
    assert "Approved and posted 1 correction(s)" in message
    assert "Approved and posted" in page.inner_text("#result_list")

    page.goto(f"{base}/admin/ledger/balance/?q={customer.email}")
    assert re.search(r"\b12500\b", page.inner_text("#result_list"))
    page.goto(f"{base}/admin/audit/auditevent/")
    audit_page = page.inner_text("#result_list")
    for label in (
        AuditAction.ADJUSTMENT_APPROVED.label,
        AuditAction.ADJUSTMENT_PROPOSED.label,
        AuditAction.LOGIN_FAILED.label,
        AuditAction.LOGOUT.label,
    ):
        assert label in audit_page

    proposal = AdjustmentProposal.objects.get()
    assert (proposal.status, proposal.proposed_by_id, proposal.decided_by_id) == (
        ProposalStatus.APPROVED,
        admin_a.id,
        admin_b.id,
    )
    assert Journal.objects.filter(kind=JournalKind.CORRECTION).count() == 1
    assert balance_get(user_id=customer.id, currency="ZAR").available == 12_500
    logins = AuditEvent.objects.filter(action=AuditAction.LOGIN_SUCCEEDED, details__channel="admin")
    assert set(logins.values_list("actor_email", flat=True)) == {admin_a.email, admin_b.email}
    assert ledger_problems() == []
    assert audit_chain_problems() == []
