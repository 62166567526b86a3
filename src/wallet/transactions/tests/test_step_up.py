"""Issue 17 F10, card-to-bank cash-out: a withdrawal to a bank account the user never withdrew to needs
their current password (docs/adr/0017-withdrawal-step-up.md). Over real HTTP (a live server), against the
sandbox; each test failed on the code before the fix."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conftest import PASSWORD
from wallet.accounts.models import User
from wallet.audit.models import AuditEvent
from wallet.ledger.selectors import balance_get
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver, apply_payout

pytestmark = pytest.mark.django_db(transaction=True)
Fund = Callable[[User, int], Transaction]


@pytest.fixture(autouse=True)
def _step_up_on(settings: Any) -> None:
    settings.WITHDRAWAL_STEP_UP_NEW_ACCOUNT = True  # the production default (off elsewhere in the suite)


@pytest.fixture
def http(live_server: Any, user: User) -> Iterator[httpx.Client]:
    """The user's session as an attacker with a stolen access token has it: the token, not the password."""
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30) as client:
        tokens = client.post("/auth/token", json={"email": user.email, "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        client.headers["Authorization"] = f"Bearer {tokens.json()['access']}"
        yield client


def withdraw(http: httpx.Client, amount: int = 3_000, **extra: Any) -> httpx.Response:
    account = {**BANK, **extra.pop("bank", {})}
    return http.post("/withdrawals", json={"amount": amount, "bank_account": account, **extra})


def figures(user: User) -> tuple[int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved


def test_a_stolen_token_cannot_cash_out_to_a_new_account(
    http: httpx.Client, user: User, fund: Fund, eft: EftDriver
) -> None:
    """F10: with only an access token, the balance went to any bank account."""
    fund(user, 10_000)
    response = withdraw(http)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "step_up_required"
    assert not Transaction.objects.filter(type="withdrawal").exists()
    assert figures(user) == (10_000, 0)  # nothing reserved


def test_a_wrong_password_is_refused_and_counted_by_the_login_lockout(
    http: httpx.Client, user: User, fund: Fund, eft: EftDriver, settings: Any
) -> None:
    """F10: the step-up password is a login check: a wrong one is a failed login, and the lockout holds."""
    fund(user, 10_000)
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES):
        wrong = withdraw(http, step_up_password="not the password")
        assert wrong.status_code == 403, wrong.text
        assert wrong.json()["error"]["code"] == "step_up_failed"
    assert AuditEvent.objects.filter(action="login_failed").count() == settings.LOGIN_LOCKOUT_FAILURES
    # Locked now: even the right password is refused until the lockout ends.
    locked = withdraw(http, step_up_password=PASSWORD)
    assert locked.status_code == 429, locked.text
    assert not Transaction.objects.filter(type="withdrawal").exists()
    assert figures(user) == (10_000, 0)


def test_the_password_allows_it_and_a_used_account_needs_no_step_up_again(
    http: httpx.Client, user: User, fund: Fund, eft: EftDriver
) -> None:
    fund(user, 20_000)
    key = {"Idempotency-Key": "step-up-first-withdrawal"}
    refused = http.post("/withdrawals", json={"amount": 3_000, "bank_account": BANK}, headers=key)
    assert refused.json()["error"]["code"] == "step_up_required"
    # The same request retried with the password (same key: the password is not part of the request's
    # fingerprint, and no fast hash of it is stored).
    first = http.post(
        "/withdrawals",
        json={"amount": 3_000, "bank_account": BANK, "step_up_password": PASSWORD},
        headers=key,
    )
    assert first.status_code == 201, first.text
    assert "step_up_password" not in first.text
    # Until the first one completes, the account is still new.
    assert withdraw(http).json()["error"]["code"] == "step_up_required"
    withdrawal = Transaction.objects.get(id=first.json()["id"])
    eft.succeed(withdrawal.provider_object_id or "")
    apply_payout(withdrawal)
    assert http.get(f"/withdrawals/{withdrawal.id}").json()["status"] == "completed"
    second = withdraw(http)
    assert second.status_code == 201, second.text
    # Another account number at the same bank, or the same number at another bank, is new again.
    for other in ({"account_number": "62001239999"}, {"bank_code": "632005"}):
        assert withdraw(http, bank=other).json()["error"]["code"] == "step_up_required"
    assert figures(user) == (20_000 - 6_000, 3_000)
