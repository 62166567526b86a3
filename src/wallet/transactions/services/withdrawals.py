"""Withdrawals: the request path. The amount is reserved and the withdrawal committed in one money
transaction; the payout is sent after the commit (payouts.py), never inside the request's transaction.
"""

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from wallet.core import crypto, idempotency
from wallet.core.faults import crash_point
from wallet.ledger import public as ledger
from wallet.revio.public import BankAccount
from wallet.transactions import hold as deposit_hold
from wallet.transactions.errors import (
    DebtOutstandingError,
)
from wallet.transactions.models import Transaction, TransactionType
from wallet.transactions.services.shared import (
    Source,
    check_amount,
    check_withdrawal_limits,
    record_event,
)

logger = logging.getLogger(__name__)


def withdrawal_create(
    *,
    user_id: uuid.UUID,
    email: str,
    amount: int,
    currency: str,
    bank_account: BankAccount,
    claim: idempotency.IdempotencyClaim | None = None,
) -> Transaction:
    """Reserve the amount and commit the withdrawal, pending; its payout is sent by the payouts worker.

    `email` is the user's address; the EFT API takes none, so it is not sent (kept so callers need not
    change).

    One money transaction on the request path: the reservation (available → reserved) and the withdrawal
    commit together, and the payout is enqueued on that commit (payout_send_enqueue). The worker claims the
    request before sending it, so it is sent at most once, and applies Revio's answer: accepted →
    processing; refused → failed and the reservation returned; no answer → stays pending, never sent again
    and never refunded blindly (reconciliation resolves it). A lost enqueue is sent by the payouts sweep.
    The withdrawal is returned as committed: `pending`.

    :raises ValidationFailedError: the amount or currency is outside the configured range.
    :raises InsufficientFundsError: the available balance is too low; nothing changed.
    :raises WithdrawalLimitError: a risk limit would be exceeded; nothing changed.
    :raises DebtOutstandingError: the user owes the wallet money; nothing changed.
    """
    check_amount(
        amount=amount,
        currency=currency,
        low=settings.WITHDRAWAL_MIN_AMOUNT,
        high=settings.WITHDRAWAL_MAX_AMOUNT,
    )
    withdrawal_id = uuid.uuid4()
    now = timezone.now()
    encrypted = crypto.encrypt_json(
        {
            "account_holder": bank_account.account_holder,
            "account_number": bank_account.account_number,
            "bank_code": bank_account.bank_code,
            "account_type": bank_account.account_type,
        }
    )

    def reserve(balance: ledger.LockedBalance) -> Transaction:
        if balance.debt > 0:  # read under the balance lock: a clawback cannot slip in between
            raise DebtOutstandingError(details={"debt": balance.debt, "currency": currency})
        check_withdrawal_limits(user_id=user_id, currency=currency, amount=amount, now=now)
        deposit_hold.withdrawal_check_hold(balance=balance, amount=amount, now=now)  # issue 16: deposit hold
        ledger.withdrawal_reserve(balance=balance, amount=amount, transaction_id=withdrawal_id)
        withdrawal = Transaction.objects.create(
            id=withdrawal_id,
            user_id=user_id,
            type=TransactionType.WITHDRAWAL,
            amount=amount,
            currency=currency,
            bank_account_encrypted=encrypted,
            bank_account_masked=crypto.mask_account_number(bank_account.account_number),
            bank_account_holder=bank_account.account_holder,
            bank_code=bank_account.bank_code,
            bank_account_type=bank_account.account_type,
            created_at=now,
            updated_at=now,
        )
        record_event(withdrawal, from_status="", detail="created; amount reserved", source=Source.API)
        idempotency.record_claim(claim, resource_id=withdrawal_id)
        return withdrawal

    # A balance never funded holds nothing: balance_movement refuses it (InsufficientFundsError).
    withdrawal = ledger.balance_movement(
        user_id=user_id, currency=currency, fn=reserve, create=False, requested=amount
    )
    crash_point("withdrawal.reserved")
    payout_send_enqueue(withdrawal_id=withdrawal.id)
    return withdrawal


def payout_send_enqueue(*, withdrawal_id: uuid.UUID) -> None:
    """Hand the withdrawal's payout to the payouts worker once the reservation is committed (at once when
    no transaction is open, as after withdrawal_create's own commit)."""

    def enqueue_payout_send() -> None:  # a named function: Django logs its name if it fails
        # Imported late: tasks.py imports the services.
        from wallet.transactions.tasks import withdrawal_payout_send_task

        withdrawal_payout_send_task.delay(withdrawal_id=str(withdrawal_id))

    # robust: a broker that is down must not turn a committed reservation into an error; the payouts
    # sweep (withdrawals_send_queued) sends it after PAYOUT_QUEUE_GRACE_SECONDS.
    transaction.on_commit(enqueue_payout_send, robust=True)
