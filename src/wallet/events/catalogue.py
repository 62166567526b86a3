"""The catalogue of outgoing event types: what the client's backend can subscribe to.

Adding a type is one line in EVENT_TYPES. A transaction's status change emits "<type>.<status>" when that
name is listed here (deposits and withdrawals today; refunds, chargebacks and debts when their apps add
their types); anything else records nothing. An endpoint subscribes to exact names or to a whole family
("refund.*"), so a family listed in FAMILIES can be subscribed to before its first type exists.
"""

FAMILIES = ("deposit", "withdrawal", "refund", "chargeback", "debt")

EVENT_TYPES: dict[str, str] = {
    "deposit.completed": "A deposit was paid and credited to the balance.",
    "deposit.failed": "A deposit's payment failed; nothing was credited.",
    "withdrawal.processing": "A withdrawal's payout was sent to the bank.",
    "withdrawal.completed": "A withdrawal was paid out.",
    "withdrawal.failed": "A withdrawal failed; the amount is back in the balance.",
    "withdrawal.returned": "The bank returned a paid-out withdrawal; the amount is back in the balance.",
    "refund.completed": "A deposit was refunded (all or part) to the card; the balance was debited.",
    "chargeback.received": "The card holder's bank charged back (all or part of) a deposit; debited.",
    "debt.created": "A refund or chargeback took more than was available: the user owes the rest.",
}


def family_of(event_type: str) -> str:
    return event_type.split(".", 1)[0]


def is_known(event_type: str) -> bool:
    return event_type in EVENT_TYPES


def is_valid_filter(pattern: str) -> bool:
    """An endpoint's filter entry: a listed type, a family wildcard ("debt.*"), or "*" for everything."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return pattern[:-2] in FAMILIES
    return pattern in EVENT_TYPES


def matches(filters: list[str], event_type: str) -> bool:
    """Whether an endpoint with these filters receives `event_type` (an empty list receives everything)."""
    if not filters:
        return True
    return any(p == "*" or p == event_type or p == f"{family_of(event_type)}.*" for p in filters)
