"""Payouts: sending a withdrawal's payout to Revio at most once (claim before send), the sweep of payouts
never sent, and applying Revio's state of a payout (processing, completed, failed, returned, clawed back).

Calls to Revio happen outside any transaction and row lock (docs/adr/0002-payout-after-commit.md); the
answer is applied in a transaction of its own.
"""

import enum
import logging
import uuid
from datetime import datetime, timedelta

import sentry_sdk
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from wallet.core import crypto, metrics
from wallet.core.faults import crash_point
from wallet.ledger import public as ledger
from wallet.revio.public import (
    BankAccount,
    Payout,
    PayoutOutcome,
    RevioNotCreatedError,
    RevioOutcomeUnknownError,
    RevioUnavailableError,
)
from wallet.revio.public import breaker as revio_breaker
from wallet.revio.public import payouts as revio_payouts
from wallet.transactions import states
from wallet.transactions.models import Transaction, TransactionType
from wallet.transactions.models import TransactionStatus as S
from wallet.transactions.services.shared import (
    Applied,
    Source,
    flag_for_review,
    provider_mismatch,
    record_event,
    save_fields,
    transition,
)

logger = logging.getLogger(__name__)


# The email for a payout paid after it was refunded (notifications/events.py).
CLAWED_BACK_EVENT = "withdrawal.clawed_back"


class PayoutSent(enum.StrEnum):
    """What an attempt to send a withdrawal's payout did (withdrawal_payout_send)."""

    SENT = "sent"  # the request went to Revio: accepted (and applied), or its outcome is unknown
    QUEUED = "queued"  # nothing was sent (breaker open, Revio unavailable): the payouts sweep sends it later
    FAILED = "failed"  # Revio certainly refused it: the withdrawal failed and the reservation came back
    SKIPPED = "skipped"  # sent already (or being sent by another worker), or no longer pending


def withdrawal_payout_send(
    *,
    withdrawal_id: uuid.UUID,
    amount: int,
    currency: str,
    bank_account: BankAccount,
    source: str,
) -> tuple[PayoutSent, Transaction | None]:
    """Send the payout request of a pending withdrawal whose request was never sent, at most once.

    The request is claimed first (payout_requested_at set in its own commit, only if still unset), so two
    senders cannot both send it and a request whose outcome is unknown is never sent again. While Revio's
    circuit breaker is open nothing is sent, and a request refused before anything was done (connection
    refused, 429) is as if never sent: the claim is undone and the withdrawal stays pending, queued for the
    payouts sweep (withdrawals_send_queued). Only a definite refusal fails it and returns the reservation;
    any other answer (5xx, a proxy page, a timeout) leaves it pending with an unknown outcome. `amount`
    and `currency` are the withdrawal's own (as reserved; they never change). Returns what it did
    (PayoutSent), and the withdrawal as Revio's answer left it when that answer was applied (the
    common case; None otherwise), so a caller that shows it need not read it again.
    """
    now = timezone.now()
    claimed = Transaction.objects.filter(
        id=withdrawal_id,
        type=TransactionType.WITHDRAWAL,
        status=S.PENDING,
        payout_requested_at__isnull=True,
        provider_object_id__isnull=True,
    ).update(
        payout_requested_at=now, payout_attempts=F("payout_attempts") + 1, payout_route=revio_payouts.ROUTE
    )
    if not claimed:
        return PayoutSent.SKIPPED, None  # sent already (or being sent), or no longer pending
    crash_point("withdrawal.payout_claimed")
    try:
        payout = revio_payouts.get_payouts().create(
            reference=str(withdrawal_id), amount=amount, currency=currency, bank_account=bank_account
        )
    except RevioUnavailableError as exc:
        # Never sent (breaker open, connection refused, no token) or rate-limited before anything was done
        # (429): nothing was created, so it may be sent later, once. Never a refund: it is still owed.
        Transaction.objects.filter(id=withdrawal_id, payout_requested_at=now).update(
            payout_requested_at=None, payout_attempts=F("payout_attempts") - 1
        )
        logger.warning("withdrawal %s: Revio unavailable (%s); payout queued", withdrawal_id, exc)
        return PayoutSent.QUEUED, None
    except RevioNotCreatedError as exc:
        logger.warning("withdrawal %s: payout not created: %s", withdrawal_id, exc)
        withdrawal_fail_unsent(withdrawal_id=withdrawal_id, reason=_refusal_reason(exc), source=source)
        return PayoutSent.FAILED, None
    except RevioOutcomeUnknownError as exc:
        # It may have been created (a 503 after the payment was made, a proxy page, a timeout). Sending it
        # again could pay twice; refunding could give money away twice. The callback or recovery's lookup
        # settles it, else an operator (docs/adr/0015-provider-answer-classification.md).
        logger.warning("withdrawal %s: payout outcome unknown, left pending: %s", withdrawal_id, exc)
        _withdrawal_note_unknown(withdrawal_id, exc, source=source)
        return PayoutSent.SENT, None
    crash_point("withdrawal.payout_accepted")
    return PayoutSent.SENT, _apply_payout_state(withdrawal_id, payout, source=source)[1]


def withdrawal_payout_send_by_id(*, withdrawal_id: uuid.UUID) -> PayoutSent:
    """The payouts worker's job for a new withdrawal (enqueued by withdrawal_create on commit): send its
    payout at most once and apply Revio's answer. A withdrawal already sent, or no longer pending, is
    skipped without reading its bank details."""
    withdrawal = Transaction.objects.filter(
        id=withdrawal_id,
        type=TransactionType.WITHDRAWAL,
        status=S.PENDING,
        payout_requested_at__isnull=True,
        provider_object_id__isnull=True,
    ).first()
    if withdrawal is None:
        return PayoutSent.SKIPPED
    result, _current = withdrawal_payout_send(
        withdrawal_id=withdrawal.id,
        amount=withdrawal.amount,
        currency=withdrawal.currency,
        bank_account=withdrawal_bank_account(withdrawal=withdrawal),
        source=Source.API,  # the request's own payout, sent for it by the worker
    )
    return result


def withdrawals_send_queued(*, now: datetime, limit: int = 100) -> dict[str, int]:
    """Send the payouts of pending withdrawals whose request was never sent (queued while Revio was down,
    or a crash between reservation and request), older than PAYOUT_QUEUE_GRACE_SECONDS. Each is claimed
    before sending, so concurrent sweeps send each at most once. Stops early while the breaker is open."""
    counts: dict[str, int] = {}  # by PayoutSent value
    if revio_breaker.is_open(revio_breaker.EFT):  # payouts go through the EFT API
        return counts
    cutoff = now - timedelta(seconds=settings.PAYOUT_QUEUE_GRACE_SECONDS)
    queued = list(
        Transaction.objects.filter(
            type=TransactionType.WITHDRAWAL,
            status=S.PENDING,
            payout_requested_at__isnull=True,
            provider_object_id__isnull=True,
            created_at__lte=cutoff,
        ).order_by("created_at")[:limit]
    )
    for withdrawal in queued:
        result, _current = withdrawal_payout_send(
            withdrawal_id=withdrawal.id,
            amount=withdrawal.amount,
            currency=withdrawal.currency,
            bank_account=withdrawal_bank_account(withdrawal=withdrawal),
            source=Source.RECONCILIATION,
        )
        counts[result.value] = counts.get(result.value, 0) + 1
        if result == PayoutSent.QUEUED:
            break  # the breaker opened again: the rest wait for the next sweep
    return counts


def _withdrawal_note_unknown(withdrawal_id: uuid.UUID, exc: RevioOutcomeUnknownError, *, source: str) -> None:
    """Put the unknown outcome on the withdrawal's trail (it stays pending), so it is visible at once."""
    with transaction.atomic():
        locked = Transaction.objects.select_for_update().get(id=withdrawal_id)
        if locked.status != S.PENDING:
            return  # a callback got there first
        answer = f"Revio answered {exc.status}" if exc.status else "no answer from Revio"
        detail = f"payout outcome unknown ({answer}): not sent again, not refunded"
        record_event(locked, from_status=S.PENDING, detail=detail, source=source)


def _refusal_reason(exc: RevioNotCreatedError) -> str:
    if isinstance(exc, RevioUnavailableError):
        return "The payment provider was unavailable; the amount is back in your balance."
    return (
        "The payment provider refused this payout (check the bank details); "
        "the amount is back in your balance."
    )


def withdrawal_fail_unsent(*, withdrawal_id: uuid.UUID, reason: str, source: str) -> Applied:
    """Fail a withdrawal whose payout Revio certainly did not create, returning the reservation once."""
    withdrawal = Transaction.objects.get(id=withdrawal_id, type=TransactionType.WITHDRAWAL)

    def apply(balance: ledger.LockedBalance) -> Applied:
        locked = Transaction.objects.select_for_update().get(id=withdrawal_id)
        if locked.status == S.FAILED:
            return Applied.UNCHANGED
        locked.failure_reason = reason[:255]  # before the transition: its email shows the reason
        transition(locked, S.FAILED, source=source, detail=reason, also_save=["failure_reason"])
        ledger.withdrawal_release(balance=balance, amount=locked.amount, transaction_id=locked.id)
        return Applied.CHANGED

    return ledger.balance_movement(
        user_id=withdrawal.user_id, currency=withdrawal.currency, fn=apply, create=False
    )


def withdrawal_apply_provider_state(
    *, withdrawal_id: uuid.UUID, payout: Payout, source: str, reason: str = ""
) -> Applied:
    """Apply Revio's current state of the withdrawal's payout.

    ACCEPTED/PENDING → processing; SUCCEEDED → completed (the reserved money leaves); FAILED → failed with
    the reservation returned exactly once, or, for a completed withdrawal, returned with the money
    re-credited. A state behind ours is stale and changes nothing. If amount, currency or payout id
    disagree with ours, the withdrawal is flagged for review (FLAGGED) and no money moves. `reason` goes on
    the trail and, for a failure, becomes the failure reason shown to the user.
    """
    return _apply_payout_state(withdrawal_id, payout, source=source, reason=reason)[0]


def _apply_payout_state(
    withdrawal_id: uuid.UUID, payout: Payout, *, source: str, reason: str = ""
) -> tuple[Applied, Transaction]:
    """withdrawal_apply_provider_state; also returns the withdrawal as it committed, so a caller that
    shows it need not read it again."""
    if payout.outcome in {PayoutOutcome.ACCEPTED, PayoutOutcome.PENDING}:
        # Acceptance moves no money (pending → processing), so only the withdrawal's row is locked: the
        # balance row, its advisory lock and a second money transaction per withdrawal are not needed.
        with transaction.atomic():
            locked = Transaction.objects.select_for_update().get(
                id=withdrawal_id, type=TransactionType.WITHDRAWAL
            )
            return withdrawal_apply_locked(locked, payout, balance=None, source=source, reason=reason), locked

    withdrawal = Transaction.objects.get(id=withdrawal_id, type=TransactionType.WITHDRAWAL)

    def apply(balance: ledger.LockedBalance) -> tuple[Applied, Transaction]:
        locked = Transaction.objects.select_for_update().get(id=withdrawal_id)
        return withdrawal_apply_locked(locked, payout, balance=balance, source=source, reason=reason), locked

    return ledger.balance_movement(
        user_id=withdrawal.user_id, currency=withdrawal.currency, fn=apply, create=False
    )


def withdrawal_apply_locked(
    locked: Transaction,
    payout: Payout,
    *,
    balance: ledger.LockedBalance | None,
    source: str,
    reason: str = "",
) -> Applied:
    """Apply a payout state to a locked withdrawal (the caller holds its row lock and owns the
    transaction). `balance` is the locked balance, required (and only passed) when the outcome can move
    money; resolutions.py applies an operator's "paid" through here."""
    mismatch = provider_mismatch(
        locked, provider_object_id=payout.id, amount=payout.amount, currency=payout.currency
    )
    if mismatch:
        return flag_for_review(locked, mismatch, source=source)
    # Revio's id and status are written with the status change (one UPDATE), or alone if there is none.
    unsaved: list[str] = []
    if locked.provider_object_id != payout.id or locked.provider_status != payout.status:
        locked.provider_object_id = payout.id
        locked.provider_status = payout.status
        unsaved = ["provider_object_id", "provider_status"]

    if payout.outcome == PayoutOutcome.SUCCEEDED and locked.status == S.FAILED:
        return _withdrawal_claw_back(locked, payout, balance=balance, source=source, unsaved=unsaved)
    target: str | None
    if payout.outcome == PayoutOutcome.FAILED and locked.status in {S.COMPLETED, S.RETURNED}:
        target = S.RETURNED
    else:
        target = {
            PayoutOutcome.ACCEPTED: S.PROCESSING,
            PayoutOutcome.PENDING: S.PROCESSING,
            PayoutOutcome.SUCCEEDED: S.COMPLETED,
            PayoutOutcome.FAILED: S.FAILED,
        }.get(payout.outcome)
    if target is None or locked.status == target:
        save_fields(locked, unsaved)
        return Applied.UNCHANGED
    if states.WITHDRAWAL_PROGRESS[target] <= states.WITHDRAWAL_PROGRESS[locked.status]:
        save_fields(locked, unsaved)
        return Applied.STALE
    detail = f"Revio payout {payout.status}" + (f": {reason}" if reason else "")
    if locked.status == S.PENDING and target not in {S.PROCESSING, S.FAILED}:
        # Accepted, implied by the outcome.
        transition(locked, S.PROCESSING, source=source, detail=detail, also_save=unsaved)
        unsaved = []
    if target == S.FAILED:
        locked.failure_reason = (
            reason or "The bank did not accept the payout; the amount is back in your balance."
        )[:255]
        unsaved.append("failure_reason")
    elif target == S.RETURNED:
        locked.failure_reason = (
            reason or "The bank returned the payout; the amount is back in your balance."
        )[:255]
        unsaved.append("failure_reason")
    transition(locked, target, source=source, detail=detail, also_save=unsaved)
    if target == S.PROCESSING:
        return Applied.CHANGED
    if balance is None:
        raise AssertionError("a payout state that moves money needs the locked balance")
    if target == S.COMPLETED:
        ledger.withdrawal_settle(balance=balance, amount=locked.amount, transaction_id=locked.id)
    elif target == S.FAILED:
        ledger.withdrawal_release(balance=balance, amount=locked.amount, transaction_id=locked.id)
    elif target == S.RETURNED:
        ledger.withdrawal_return(
            balance=balance, amount=locked.amount, transaction_id=locked.id, reason=locked.failure_reason
        )
    return Applied.CHANGED


def _withdrawal_claw_back(
    locked: Transaction,
    payout: Payout,
    *,
    balance: ledger.LockedBalance | None,
    source: str,
    unsaved: list[str],
) -> Applied:
    """Revio paid a payout we had failed and refunded (a create answered "refused" that was not, an
    operator's "not paid", a bank's late success): the money left twice, once to the bank and once back
    into the wallet. Take it back from the user once: available first, the rest as debt on their receivable
    account (never a negative balance). The withdrawal moves failed → completed, its trail naming both
    outcomes; it is flagged, an operator is alerted and the user is told (docs/wallet.md, withdrawals)."""
    if balance is None:
        raise AssertionError("a clawback needs the locked balance")
    debit = ledger.user_debit(
        balance=balance,
        amount=locked.amount,
        kind=ledger.JournalKind.WITHDRAWAL_CLAWBACK,
        transaction_id=locked.id,
        allow_debt=True,
        memo=f"Revio paid payout {payout.id} after the withdrawal was refunded",
    )
    detail = (
        f"paid after it was refunded (Revio payout {payout.status}): "
        f"clawed back {debit.from_available}, debt {debit.to_debt}"
    )
    locked.needs_review = True
    locked.review_reason = detail[:255]
    transition(
        locked,
        S.COMPLETED,
        source=source,
        detail=detail,
        also_save=[*unsaved, "needs_review", "review_reason"],
        notify_event=CLAWED_BACK_EVENT,
    )
    withdrawal_id, amount, to_debt = locked.id, locked.amount, debit.to_debt
    logger.error(
        "withdrawal %s paid by Revio after it was refunded: clawed back %s, %s now owed",
        withdrawal_id,
        amount - to_debt,
        to_debt,
    )

    def alert() -> None:
        # After commit: a retried transaction must not alert twice.
        metrics.increment("withdrawal_clawbacks")
        if to_debt:
            metrics.increment("withdrawal_clawbacks_into_debt")
        sentry_sdk.capture_message(
            f"withdrawal {withdrawal_id} paid after it was refunded: clawed back {amount}, debt {to_debt}",
            level="error",
        )

    transaction.on_commit(alert)
    return Applied.CHANGED


def withdrawal_bank_account(*, withdrawal: Transaction) -> BankAccount:
    """The decrypted bank details of a withdrawal (for re-sending to Revio; never for display)."""
    data = crypto.decrypt_json(withdrawal.bank_account_encrypted)
    return BankAccount(**data)
