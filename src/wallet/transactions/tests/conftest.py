"""Fixtures for deposits and withdrawals: funding a wallet the real way, through the sandbox."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import ledger_problems
from wallet.revio.client import get_client
from wallet.revio.contracts import Payout
from wallet.revio.payouts import get_payouts
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
        purchase=purchase,
        source=source,
    )


def apply_payout(withdrawal: Transaction, *, source: str = TransactionEvent.Source.WEBHOOK) -> str:
    """Read the withdrawal's EFT payment from Revio and apply its current state."""
    withdrawal.refresh_from_db()
    assert withdrawal.provider_object_id
    payout = get_payouts().get(withdrawal.provider_object_id)
    return services.withdrawal_apply_provider_state(
        withdrawal_id=withdrawal.id,
        payout=payout,
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


@dataclass
class EftDriver:
    """Plays Revio's side of a payout on the EFT payments API (the sandbox's control API), and reads what
    Revio holds."""

    sandbox: SandboxProcess
    create_endpoint = "eft.payments.create"
    lookup_endpoint = "eft.payments.list"
    delivery_target = "eft"  # the sandbox's delivery target of EFT callbacks (for delivery faults)
    in_progress_event = "EFT_PAYMENT.SUBMITTED"  # a state between accepted and paid, as logged

    def succeed(self, payout_id: str) -> None:
        self.sandbox.control.eft_payment_succeed(payout_id)

    def fail(self, payout_id: str) -> None:
        self.sandbox.control.eft_payment_fail(payout_id)

    def bank_return(self, payout_id: str) -> None:
        """The bank sends the money back after the payout succeeded (COMPLETED -> UNPAID)."""
        self.sandbox.control.eft_payment_return(payout_id)

    def payment(self, payout_id: str) -> dict[str, Any]:
        """The EFT payment as the sandbox holds it (contractReference, amountCents, creditor, ...)."""
        return self.sandbox.control.eft_payment(payout_id)

    def create_times_out(self, seconds: float) -> None:
        """The next create takes effect at Revio, but its answer never arrives in time."""
        self.sandbox.control.timeout_after_processing(self.create_endpoint, seconds=seconds)

    def fail_next_create(self, status: int, count: int = 1) -> None:
        self.sandbox.control.fail_next(self.create_endpoint, status=status, count=count)

    def fail_next_lookup(self, status: int, count: int = 1) -> None:
        self.sandbox.control.fail_next(self.lookup_endpoint, status=status, count=count)

    def find(self, reference: str) -> list[Payout]:
        return get_payouts().find_by_reference(reference)

    def get(self, payout_id: str) -> Payout:
        return get_payouts().get(payout_id)

    def create_by_hand(self, *, reference: str, amount: int, account_number: str) -> str:
        """A second payment made outside the wallet (someone at the dashboard): returns its id."""
        body = {
            "paymentDate": "2026-01-01",
            "profileCode": "TEST1",
            "abbreviatedName": "TESTMERCH1",
            "contractReference": reference,
            "amountCents": amount,
            "serviceType": "SAMEDAY",
            "debtor": {"accountNumber": "12345678", "branchCode": "051001", "accountType": "CURRENT"},
            "creditor": {
                "accountNumber": account_number,
                "branchCode": "250655",
                "accountType": "CURRENT",
                "name": "T N",
            },
        }
        with self.sandbox.eft_client() as client:
            response = client.post("v2/payment/eft", json=body)
        response.raise_for_status()
        return str(response.json()["id"])


@pytest.fixture
def eft(revio: SandboxProcess) -> EftDriver:
    """Revio's EFT side of a payout (the `revio` fixture points the wallet's EFT client at the sandbox)."""
    return EftDriver(sandbox=revio)
