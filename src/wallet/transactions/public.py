"""Deposits and withdrawals: their state machines and the services that move money for them.

Webhooks and reconciliation apply Revio's states through the apply_* services here.
"""

from wallet.transactions.errors import IllegalTransitionError, ProviderMismatchError, WithdrawalLimitError
from wallet.transactions.models import (
    DepositReversal,
    ReversalKind,
    ReversalOrigin,
    ReversalStatus,
    Transaction,
    TransactionEvent,
    TransactionStatus,
    TransactionType,
)
from wallet.transactions.refunds import refunds_resolve_pending
from wallet.transactions.reversals import (
    ReversalApplied,
    RevioReversal,
    reversal_apply_from_revio,
    reversal_tally,
    reversal_totals,
)
from wallet.transactions.selectors import (
    OpenTransactionFigures,
    transaction_find,
    transaction_find_by_provider_object,
    transaction_open_figures,
)
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
    "DepositReversal",
    "IllegalTransitionError",
    "OpenTransactionFigures",
    "ProviderMismatchError",
    "ReversalApplied",
    "ReversalKind",
    "ReversalOrigin",
    "ReversalStatus",
    "RevioReversal",
    "Transaction",
    "TransactionEvent",
    "TransactionStatus",
    "TransactionType",
    "WithdrawalLimitError",
    "deposit_apply_provider_state",
    "refunds_resolve_pending",
    "reversal_apply_from_revio",
    "reversal_tally",
    "reversal_totals",
    "transaction_find",
    "transaction_find_by_provider_object",
    "transaction_flag_for_review",
    "transaction_open_figures",
    "transaction_transition",
    "withdrawal_apply_provider_state",
    "withdrawal_bank_account",
    "withdrawal_fail_unsent",
    "withdrawals_send_queued",
]
