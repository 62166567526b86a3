"""The state machines, in one place.

Deposit:     pending → completed | failed | cancelled | expired
             failed | cancelled | expired → completed   (Revio confirms a payment after all: the money
                                                         arrived, so it is credited; logged as late)
Withdrawal:  pending → processing | failed
             processing → completed | failed
             completed → returned                         (the bank sent a completed payout back)
             failed → completed                           (Revio paid a payout we had refunded: the
                                                          amount is clawed back, into debt if short)

Anything else is illegal: refused, logged, and no money moves. Moving to the state a transaction is
already in is a no-op.
"""

from wallet.transactions.models import TransactionStatus as S
from wallet.transactions.models import TransactionType

TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    TransactionType.DEPOSIT: {
        S.PENDING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.EXPIRED}),
        S.FAILED: frozenset({S.COMPLETED}),
        S.CANCELLED: frozenset({S.COMPLETED}),
        S.EXPIRED: frozenset({S.COMPLETED}),
        S.COMPLETED: frozenset(),
    },
    TransactionType.WITHDRAWAL: {
        S.PENDING: frozenset({S.PROCESSING, S.FAILED}),
        S.PROCESSING: frozenset({S.COMPLETED, S.FAILED}),
        S.COMPLETED: frozenset({S.RETURNED}),
        S.FAILED: frozenset({S.COMPLETED}),
        S.RETURNED: frozenset(),
    },
}

# How far along a withdrawal is; an outcome that would move it backwards is stale (out of order).
WITHDRAWAL_PROGRESS: dict[str, int] = {
    S.PENDING: 0,
    S.PROCESSING: 1,
    S.COMPLETED: 2,
    S.FAILED: 2,
    S.RETURNED: 3,
}

TERMINAL: dict[str, frozenset[str]] = {
    TransactionType.DEPOSIT: frozenset({S.COMPLETED}),
    TransactionType.WITHDRAWAL: frozenset({S.FAILED, S.RETURNED}),
}


def is_allowed(transaction_type: str, from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS[transaction_type].get(from_status, frozenset())
