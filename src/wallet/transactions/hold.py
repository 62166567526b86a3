"""The deposit hold (issue 16 part 3): a deposit's money can be spent in the wallet at once, but withdrawn
only after a cooling-off period, so a stolen card cannot be cashed out to a bank account before the card
holder's chargeback arrives. See docs/adr/0016-deposit-hold.md for the defaults and why.

The hold is computed, not a ledger account: it is a rule about *when* available money may leave, not money
in a different place, and computing it from completed deposits keeps the ledger's figures (and every
report built on them) unchanged. Held = what completed deposits still inside their hold brought in, less
what was already refunded or charged back of them, capped by available. A deposit's hold is
DEPOSIT_HOLD_NEW_USER_HOURS while the user is new (account younger than DEPOSIT_HOLD_NEW_USER_DAYS, or
this is one of their first DEPOSIT_HOLD_NEW_USER_DEPOSITS completed deposits) and DEPOSIT_HOLD_HOURS after
that. With both at 0 the hold is off and costs no query.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from wallet.accounts import public as accounts
from wallet.ledger import public as ledger
from wallet.transactions.models import ReversalStatus, Transaction, TransactionType
from wallet.transactions.models import TransactionStatus as S


def deposit_hold_amount(*, user_id: uuid.UUID, currency: str, available: int, now: datetime) -> int:
    """Minor units of `available` that may not be withdrawn yet (0 when the hold is off)."""
    regular = timedelta(hours=settings.DEPOSIT_HOLD_HOURS)
    new_user = timedelta(hours=settings.DEPOSIT_HOLD_NEW_USER_HOURS)
    longest = max(regular, new_user)
    if not longest or available <= 0:
        return 0
    recent = list(
        Transaction.objects.filter(
            user_id=user_id,
            type=TransactionType.DEPOSIT,
            currency=currency,
            status=S.COMPLETED,
            completed_at__gt=now - longest,
        )
        .annotate(
            taken_back=Coalesce(
                Sum(
                    "reversals__amount",
                    filter=Q(reversals__status__in=[ReversalStatus.PENDING, ReversalStatus.COMPLETED]),
                ),
                0,
            )
        )
        .order_by("completed_at")
        .values_list("amount", "taken_back", "completed_at")
    )
    if not recent:
        return 0
    earlier = Transaction.objects.filter(
        user_id=user_id,
        type=TransactionType.DEPOSIT,
        status=S.COMPLETED,
        completed_at__lte=now - longest,
    ).count()
    user = accounts.user_get(user_id=user_id)
    young_until = (
        user.created_at + timedelta(days=settings.DEPOSIT_HOLD_NEW_USER_DAYS) if user is not None else now
    )
    held = 0
    for ordinal, (amount, taken_back, completed_at) in enumerate(recent, start=earlier + 1):
        if completed_at is None:  # a completed deposit always has it; the type does not know
            continue
        is_new = ordinal <= settings.DEPOSIT_HOLD_NEW_USER_DEPOSITS or completed_at < young_until
        if completed_at > now - (new_user if is_new else regular):
            held += max(amount - taken_back, 0)
    return min(held, available)


def withdrawal_check_hold(*, balance: ledger.LockedBalance, amount: int, now: datetime) -> None:
    """Refuse a withdrawal that would take held money. Called under the balance lock (withdrawal_create).

    :raises InsufficientFundsError: amount > available - hold (details say how much is held).
    """
    held = deposit_hold_amount(
        user_id=balance.user_id, currency=balance.currency, available=balance.available, now=now
    )
    if held and amount > balance.available - held:
        raise ledger.InsufficientFundsError(
            "Part of your balance comes from recent deposits and can be withdrawn only after their hold.",
            details={
                "available": balance.available,
                "held": held,
                "withdrawable": balance.available - held,
                "requested": amount,
                "currency": balance.currency,
            },
        )
