"""Fixtures for corrections: two admins, and a funded user's balance."""

import uuid
from collections.abc import Callable

import pytest

from wallet.accounts.models import User
from wallet.core.db import run_in_retrying_transaction
from wallet.ledger import services as ledger


@pytest.fixture
def second_admin(make_user: Callable[..., User]) -> User:
    return make_user(email="ops2@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)


@pytest.fixture
def credit() -> Callable[[User, int], None]:
    """Credit a user's available balance as a paid deposit would (ledger only: no provider involved)."""

    def credit(user: User, amount: int) -> None:
        ledger.balance_ensure(user_id=user.id, currency="ZAR")

        def post() -> None:
            balance = ledger.balance_lock(user_id=user.id, currency="ZAR")
            ledger.deposit_credit(balance=balance, amount=amount, transaction_id=uuid.uuid4())

        run_in_retrying_transaction(
            post, lock_keys=[ledger.balance_lock_key(user_id=user.id, currency="ZAR")]
        )

    return credit


@pytest.fixture
def admin_user(make_user: Callable[..., User]) -> User:
    """Corrections are the finance duty's (accounts' four-eyes rule): the proposing admin has it."""
    return make_user(email="ops@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)
