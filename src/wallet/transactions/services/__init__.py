"""Deposits and withdrawals: creating them, and applying what Revio says happened to them.

One module per part: deposits, withdrawals (the request path), payouts (send, sweep, apply) and shared
(the guarded status change and the limit checks). Callers import the services from here.

Every money movement locks the user's balance row, writes a balanced ledger journal and the status change
in one transaction (ledger.balance_movement). Calls to Revio happen outside any transaction and row
lock (docs/adr/0002-payout-after-commit.md): the reservation commits first, then the payout is requested
with our withdrawal id as its reference, then the answer is applied in a transaction of its own.

The apply_* services are what webhooks and reconciliation call. They are idempotent and state-guarded:
applying the same state twice changes nothing the second time, and a state older than the one we hold
(an out-of-order event) is reported as stale and changes nothing.
"""

from wallet.revio.public import BankAccount
from wallet.transactions.services.deposits import deposit_apply_provider_state, deposit_create
from wallet.transactions.services.payouts import (
    CLAWED_BACK_EVENT,
    PayoutSent,
    withdrawal_apply_locked,
    withdrawal_apply_provider_state,
    withdrawal_bank_account,
    withdrawal_fail_unsent,
    withdrawal_payout_send,
    withdrawal_payout_send_by_id,
    withdrawals_send_queued,
)
from wallet.transactions.services.shared import (
    Applied,
    Source,
    check_amount,
    check_withdrawal_limits,
    flag_for_review,
    provider_mismatch,
    record_event,
    save_fields,
    transaction_flag_for_review,
    transaction_transition,
    transition,
)
from wallet.transactions.services.withdrawals import payout_send_enqueue, withdrawal_create

__all__ = [
    "CLAWED_BACK_EVENT",
    "Applied",
    "BankAccount",
    "PayoutSent",
    "Source",
    "check_amount",
    "check_withdrawal_limits",
    "deposit_apply_provider_state",
    "deposit_create",
    "flag_for_review",
    "payout_send_enqueue",
    "provider_mismatch",
    "record_event",
    "save_fields",
    "transaction_flag_for_review",
    "transaction_transition",
    "transition",
    "withdrawal_apply_locked",
    "withdrawal_apply_provider_state",
    "withdrawal_bank_account",
    "withdrawal_create",
    "withdrawal_fail_unsent",
    "withdrawal_payout_send",
    "withdrawal_payout_send_by_id",
    "withdrawals_send_queued",
]
