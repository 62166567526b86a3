"""Fixtures for deposits and withdrawals: funding a wallet the real way, through the sandbox."""

from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import ledger_problems
from wallet.revio.client import get_client
from wallet.transactions import services
from wallet.transactions.models import Transaction, TransactionEvent

BANK = {
    "account_holder": "Thandi Nkosi",
    "account_number": "62001234567",
    "bank_code": "250655",
    "account_type": "current",
}


@pytest.fixture(autouse=True)
def _books_balance_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test did, the ledger must still balance afterwards (ledger_verify's checks)."""
    yield
    uses_db = "db" in request.fixturenames or "transactional_db" in request.fixturenames
    if uses_db and (connection.connection is None or connection.is_usable()):
        assert ledger_problems() == []


def pay_deposit(
    revio: SandboxProcess, deposit: Transaction, *, source: str = TransactionEvent.Source.WEBHOOK
) -> str:
    """Pay the deposit's purchase at the sandbox, read it back from Revio and apply it, as a webhook would."""
    assert deposit.provider_object_id
    revio.control.purchase_pay(deposit.provider_object_id)
    return apply_deposit(deposit, source=source)


def apply_deposit(deposit: Transaction, *, source: str = TransactionEvent.Source.WEBHOOK) -> str:
    """Read the deposit's purchase from Revio and apply its current state."""
    assert deposit.provider_object_id
    purchase = get_client().purchase_get(deposit.provider_object_id)
    return services.deposit_apply_provider_state(
        deposit_id=deposit.id,
        outcome=purchase.outcome,
        purchase_id=purchase.id,
        amount=purchase.amount,
        currency=purchase.currency,
        provider_status=purchase.status,
        source=source,
    )


def apply_payout(withdrawal: Transaction, *, source: str = TransactionEvent.Source.WEBHOOK) -> str:
    """Read the withdrawal's payout from Revio and apply its current state."""
    withdrawal.refresh_from_db()
    assert withdrawal.provider_object_id
    payout = get_client().payout_get(withdrawal.provider_object_id)
    return services.withdrawal_apply_provider_state(
        withdrawal_id=withdrawal.id,
        outcome=payout.outcome,
        payout_id=payout.id,
        amount=payout.amount,
        currency=payout.currency,
        provider_status=payout.status,
        source=source,
    )


@pytest.fixture
def fund(revio: SandboxProcess) -> Callable[[User, int], Transaction]:
    def fund(user: User, amount: int) -> Transaction:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=amount, currency="ZAR")
        pay_deposit(revio, deposit)
        deposit.refresh_from_db()
        return deposit

    return fund
