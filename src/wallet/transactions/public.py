"""Deposits and withdrawals: their state machines and the services that move money for them.

Webhooks and reconciliation apply Revio's states through the apply_* services here.
"""

from wallet.transactions.errors import IllegalTransitionError, ProviderMismatchError, WithdrawalLimitError
from wallet.transactions.models import Transaction, TransactionEvent, TransactionStatus, TransactionType
from wallet.transactions.selectors import transaction_find, transaction_find_by_provider_object
from wallet.transactions.services import (
    Applied,
    deposit_apply_provider_state,
    transaction_flag_for_review,
    transaction_transition,
    withdrawal_apply_provider_state,
    withdrawal_bank_account,
    withdrawal_fail_unsent,
    withdrawals_send_queued,
)

__all__ = [
    "Applied",
    "IllegalTransitionError",
    "ProviderMismatchError",
    "Transaction",
    "TransactionEvent",
    "TransactionStatus",
    "TransactionType",
    "WithdrawalLimitError",
    "deposit_apply_provider_state",
    "transaction_find",
    "transaction_find_by_provider_object",
    "transaction_flag_for_review",
    "transaction_transition",
    "withdrawal_apply_provider_state",
    "withdrawal_bank_account",
    "withdrawal_fail_unsent",
    "withdrawals_send_queued",
]
