"""Ledger: the double-entry books behind every balance. Other apps import from here only."""

from wallet.ledger.errors import InsufficientFundsError
from wallet.ledger.models import Balance, JournalKind
from wallet.ledger.selectors import (
    BALANCE_FIGURES,
    BalanceFigures,
    StatementEntry,
    balance_as_of,
    balance_get,
    entry_list_effective_between,
    entry_list_for_user,
    ledger_problems,
)
from wallet.ledger.services import (
    Debit,
    balance_ensure,
    balance_lock,
    balance_lock_key,
    correction_post,
    deposit_credit,
    user_credit,
    user_debit,
    withdrawal_release,
    withdrawal_reserve,
    withdrawal_return,
    withdrawal_settle,
)

__all__ = [
    "BALANCE_FIGURES",
    "Balance",
    "BalanceFigures",
    "Debit",
    "InsufficientFundsError",
    "JournalKind",
    "StatementEntry",
    "balance_as_of",
    "balance_ensure",
    "balance_get",
    "balance_lock",
    "balance_lock_key",
    "correction_post",
    "deposit_credit",
    "entry_list_effective_between",
    "entry_list_for_user",
    "ledger_problems",
    "user_credit",
    "user_debit",
    "withdrawal_release",
    "withdrawal_reserve",
    "withdrawal_return",
    "withdrawal_settle",
]
