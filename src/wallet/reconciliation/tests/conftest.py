"""Fixtures for reconciliation tests: the sandbox, funded wallets, a closed breaker, balanced books."""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from wallet.accounts.models import User
from wallet.ledger.selectors import ledger_problems
from wallet.revio import breaker
from wallet.revio.contracts import BankAccount
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import (  # noqa: F401 - fund and eft are fixtures
    BANK,
    eft,
    fund,
)


@pytest.fixture(autouse=True)
def _closed_breaker() -> Iterator[None]:
    """The breaker's state lives in Redis, shared by every test: each test starts and ends closed."""
    breaker.breaker_reset()
    yield
    breaker.breaker_reset()


@pytest.fixture(autouse=True)
def _books_balance_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    uses_db = "db" in request.fixturenames or "transactional_db" in request.fixturenames
    if uses_db and (connection.connection is None or connection.is_usable()):
        assert ledger_problems() == []


def later(**delta: float) -> datetime:
    """A moment in the future: services take `now`, so the clock is moved by passing it."""
    return timezone.now() + timedelta(**delta)


def bank(account_number: str = BANK["account_number"]) -> BankAccount:
    return BankAccount(**{**BANK, "account_number": account_number})


@pytest.fixture
def withdraw() -> Callable[..., Transaction]:
    def withdraw(user: User, amount: int, account_number: str = BANK["account_number"]) -> Transaction:
        """Withdraw, and read the withdrawal again once the payouts worker has sent its payout."""
        withdrawal = services.withdrawal_create(
            user_id=user.id,
            email=user.email,
            amount=amount,
            currency="ZAR",
            bank_account=bank(account_number),
        )
        assert withdrawal.status == "pending"  # the answer: reserved and committed, not yet sent
        withdrawal.refresh_from_db()
        return withdrawal

    return withdraw
