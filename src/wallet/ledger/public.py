"""Ledger: the double-entry books behind every balance. Other apps import from here only."""

from wallet.ledger.errors import InsufficientFundsError
from wallet.ledger.models import JournalKind
from wallet.ledger.selectors import (
    BALANCE_FIGURES,
    BalanceFigures,
    StatementEntry,
    balance_as_of,
    balance_get,
    entry_list_effective_between,
    entry_list_for_user,
    ledger_problems,
    ledger_read_alias,
)
from wallet.ledger.services import (
    Debit,
    LockedBalance,
    balance_movement,
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
    "BalanceFigures",
    "Debit",
    "InsufficientFundsError",
    "JournalKind",
    "LockedBalance",
    "StatementEntry",
    "balance_as_of",
    "balance_get",
    "balance_movement",
    "correction_post",
    "deposit_credit",
    "entry_list_effective_between",
    "entry_list_for_user",
    "ledger_problems",
    "ledger_read_alias",
    "user_credit",
    "user_debit",
    "withdrawal_release",
    "withdrawal_reserve",
    "withdrawal_return",
    "withdrawal_settle",
]
