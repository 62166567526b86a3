"""Deposits and withdrawals: creating them, and applying what Revio says happened to them.

Every money movement locks the user's balance row, writes a balanced ledger journal and the status change
in one transaction (ledger.balance_movement). Calls to Revio happen outside any transaction and row
lock (docs/adr/0002-payout-after-commit.md): the reservation commits first, then the payout is requested
with our withdrawal id as its reference, then the answer is applied in a transaction of its own.

The apply_* services are what webhooks and reconciliation call. They are idempotent and state-guarded:
applying the same state twice changes nothing the second time, and a state older than the one we hold
(an out-of-order event) is reported as stale and changes nothing.
"""

import enum
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import sentry_sdk
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from wallet.core import crypto, idempotency, metrics
from wallet.core.errors import ValidationFailedError
from wallet.core.faults import crash_point
from wallet.events import public as events  # outgoing events (issue 19): the hook in _transition
from wallet.ledger import public as ledger
from wallet.notifications import public as notifications
from wallet.revio import breaker as revio_breaker
from wallet.revio import payouts as revio_payouts
from wallet.revio.client import get_client
from wallet.revio.contracts import BankAccount, Payout, PayoutOutcome, Purchase, PurchaseOutcome
from wallet.revio.errors import RevioNotCreatedError, RevioOutcomeUnknownError, RevioUnavailableError
from wallet.transactions import hold as deposit_hold
from wallet.transactions import states
from wallet.transactions.errors import (
    DebtOutstandingError,
    DepositNotStartedError,
    DepositOutcomeUnknownError,
    DepositProviderUnavailableError,
    IllegalTransitionError,
    WithdrawalLimitError,
)
from wallet.transactions.models import Transaction, TransactionEvent, TransactionType
from wallet.transactions.models import TransactionStatus as S

logger = logging.getLogger(__name__)

Source = TransactionEvent.Source
# The email for a payout paid after it was refunded (notifications/events.py).
CLAWED_BACK_EVENT = "withdrawal.clawed_back"


class Applied(enum.StrEnum):
    """What applying a provider state did."""

    CHANGED = "changed"  # the transaction moved (and money with it, where the move moves money)
    UNCHANGED = "unchanged"  # already in that state, or the state means no change (still pending)
    STALE = "stale"  # older than what we hold: an out-of-order event; nothing changed
    FLAGGED = "flagged"  # Revio's object disagrees with ours (amount, currency, id): flagged for review


class PayoutSent(enum.StrEnum):
    """What an attempt to send a withdrawal's payout did (withdrawal_payout_send)."""

    SENT = "sent"  # the request went to Revio: accepted (and applied), or its outcome is unknown
    QUEUED = "queued"  # nothing was sent (breaker open, Revio unavailable): the payouts sweep sends it later
    FAILED = "failed"  # Revio certainly refused it: the withdrawal failed and the reservation came back
    SKIPPED = "skipped"  # sent already (or being sent by another worker), or no longer pending


# -- deposits ---------------------------------------------------------------------------------------------


def deposit_create(
    *,
    user_id: uuid.UUID,
    email: str,
    amount: int,
    currency: str,
    claim: idempotency.IdempotencyClaim | None = None,
) -> Transaction:
    """Create a pending deposit and its Revio purchase; the returned deposit carries the checkout URL.

    Nothing is credited here: only Revio's confirmation (webhook or reconciliation) credits a deposit.

    :raises ValidationFailedError: the amount or currency is outside the configured range.
    :raises DepositNotStartedError: Revio refused; the deposit is marked failed.
    :raises DepositProviderUnavailableError: Revio was unavailable; the deposit is marked failed.
    :raises DepositOutcomeUnknownError: Revio did not answer; the deposit stays pending.
    """
    _check_amount(
        amount=amount, currency=currency, low=settings.DEPOSIT_MIN_AMOUNT, high=settings.DEPOSIT_MAX_AMOUNT
    )
    deposit = Transaction(
        id=uuid.uuid4(), user_id=user_id, type=TransactionType.DEPOSIT, amount=amount, currency=currency
    )
    with transaction.atomic():
        deposit.save(force_insert=True)
        _record_event(deposit, from_status="", detail="created", source=Source.API)
        idempotency.record_claim(claim, resource_id=deposit.id)

    base = settings.FRONTEND_URL.rstrip("/")
    due = int(deposit.created_at.timestamp()) + settings.DEPOSIT_DUE_SECONDS
    try:
        purchase = get_client().purchase_create(
            reference=str(deposit.id),
            amount=amount,
            currency=currency,
            email=email,
            success_redirect=f"{base}/deposits/{deposit.id}?result=success",
            failure_redirect=f"{base}/deposits/{deposit.id}?result=failure",
            success_callback=settings.PUBLIC_BASE_URL.rstrip("/") + settings.REVIO_CALLBACK_PATH,
            due=due,
        )
    except RevioNotCreatedError as exc:
        logger.warning("deposit %s: Revio did not create the purchase: %s", deposit.id, exc)
        _deposit_fail_unstarted(
            deposit.id, reason=f"The payment provider refused the deposit ({exc.status})."
        )
        error = (
            DepositProviderUnavailableError
            if isinstance(exc, RevioUnavailableError)
            else DepositNotStartedError
        )
        raise error(details={"deposit_id": str(deposit.id)}) from exc
    except RevioOutcomeUnknownError as exc:
        logger.warning("deposit %s: purchase outcome unknown: %s", deposit.id, exc)
        raise DepositOutcomeUnknownError(details={"deposit_id": str(deposit.id)}) from exc

    # The id and checkout URL are stored by whichever comes first: this answer, or Revio's purchase.created
    # event processed before it arrived (deposit_apply_provider_state). Neither overwrites the other.
    linked = Transaction.objects.filter(id=deposit.id, provider_object_id__isnull=True).update(
        provider_object_id=purchase.id,
        provider_status=purchase.status,
        checkout_url=purchase.checkout_url,
        updated_at=timezone.now(),
    )
    if not linked:  # the event came first: its purchase is this one (else it was flagged), URL maybe not
        Transaction.objects.filter(id=deposit.id, provider_object_id=purchase.id, checkout_url="").update(
            checkout_url=purchase.checkout_url
        )
    deposit.refresh_from_db()
    return deposit


def _deposit_fail_unstarted(deposit_id: uuid.UUID, *, reason: str) -> None:
    with transaction.atomic():
        deposit = Transaction.objects.select_for_update().get(id=deposit_id)
        _transition(deposit, S.FAILED, source=Source.API, detail=reason)
        deposit.failure_reason = reason
        deposit.save(update_fields=["failure_reason"])


def deposit_apply_provider_state(*, deposit_id: uuid.UUID, purchase: Purchase, source: str) -> Applied:
    """Apply Revio's current state of the deposit's purchase (read from Revio, not from an event body).
    The purchase's `checkout_url` is stored if the deposit has none yet (its event came first).

    PAID credits the deposit once; CANCELLED, EXPIRED and FAILED close it; a failed card attempt and
    PENDING change nothing; REVERSED (refund, chargeback) is never credited: on a credited deposit the
    payment.* events move the money (reversals.py), on any other it is flagged for an operator. If amount,
    currency or purchase id disagree with ours, the deposit is flagged for review (FLAGGED) and nothing is
    credited.

    :raises IllegalTransitionError: the change is not in the state machine; nothing changed.
    """
    deposit = Transaction.objects.get(id=deposit_id, type=TransactionType.DEPOSIT)
    outcome, provider_status, checkout_url = purchase.outcome, purchase.status, purchase.checkout_url

    def apply(balance: ledger.LockedBalance) -> Applied:
        locked = Transaction.objects.select_for_update().get(id=deposit_id)
        mismatch = _provider_mismatch(
            locked, provider_object_id=purchase.id, amount=purchase.amount, currency=purchase.currency
        )
        if mismatch:
            return _flag_for_review(locked, mismatch, source=source)
        locked.provider_object_id = purchase.id
        locked.provider_status = provider_status
        linked = ["provider_object_id", "provider_status"]
        if checkout_url and not locked.checkout_url:  # the event before deposit_create stored the answer
            locked.checkout_url = checkout_url
            linked.append("checkout_url")
        target = {
            PurchaseOutcome.PAID: S.COMPLETED,
            PurchaseOutcome.CANCELLED: S.CANCELLED,
            PurchaseOutcome.EXPIRED: S.EXPIRED,
            PurchaseOutcome.FAILED: S.FAILED,
        }.get(outcome)
        if outcome == PurchaseOutcome.REVERSED:
            locked.save(update_fields=linked)
            if locked.status == S.COMPLETED:
                # Credited, then refunded or charged back: the payment.* event (or reconciliation) debits
                # it once per Revio payment (reversals.py); the purchase's status moves no money.
                return Applied.UNCHANGED
            # Never credited: a reversed purchase is never credited nor counted as completed.
            return _flag_for_review(
                locked,
                f"Revio reports the payment {provider_status} (refund or chargeback) of a deposit we never "
                "credited: not credited",
                source=source,
            )
        if target is None or locked.status == target:
            locked.save(update_fields=linked)
            return Applied.UNCHANGED
        if locked.status == S.COMPLETED:
            return Applied.STALE  # paid is final for a deposit; a later "cancelled" is out of date
        if target == S.COMPLETED and purchase.is_test and not settings.REVIO_ACCEPT_TEST_OBJECTS:
            return _flag_for_review(locked, "Revio's purchase is a test object: not credited", source=source)
        _transition(
            locked,
            target,
            source=source,
            detail=f"Revio purchase {provider_status}",
            also_save=linked,
        )
        if target == S.COMPLETED:
            if locked.failure_reason:
                logger.warning("deposit %s paid after it was %s: crediting", locked.id, locked.failure_reason)
            ledger.deposit_credit(balance=balance, amount=locked.amount, transaction_id=locked.id)
        return Applied.CHANGED

    return ledger.balance_movement(user_id=deposit.user_id, currency=deposit.currency, fn=apply)


# -- withdrawals ------------------------------------------------------------------------------------------


def withdrawal_create(
    *,
    user_id: uuid.UUID,
    email: str,
    amount: int,
    currency: str,
    bank_account: BankAccount,
    claim: idempotency.IdempotencyClaim | None = None,
) -> Transaction:
    """Reserve the amount at once, then ask Revio to pay it out by EFT.

    `email` is the user's address; the EFT API takes none, so it is not sent (kept so callers need not
    change).

    The reservation (available → reserved) commits before Revio is called, so no row lock is held across
    the HTTP call and an accepted payout can never be lost to a rollback. Revio's answer decides the rest:
    accepted → processing; refused → failed and the reservation returned; no answer → stays pending, never
    sent again and never refunded blindly (reconciliation resolves it).

    :raises ValidationFailedError: the amount or currency is outside the configured range.
    :raises InsufficientFundsError: the available balance is too low; nothing changed.
    :raises WithdrawalLimitError: a risk limit would be exceeded; nothing changed.
    :raises DebtOutstandingError: the user owes the wallet money; nothing changed.
    """
    _check_amount(
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
        _check_withdrawal_limits(user_id=user_id, currency=currency, amount=amount, now=now)
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
        _record_event(withdrawal, from_status="", detail="created; amount reserved", source=Source.API)
        idempotency.record_claim(claim, resource_id=withdrawal_id)
        return withdrawal

    # A balance never funded holds nothing: balance_movement refuses it (InsufficientFundsError).
    withdrawal = ledger.balance_movement(
        user_id=user_id, currency=currency, fn=reserve, create=False, requested=amount
    )
    crash_point("withdrawal.reserved")

    _result, current = withdrawal_payout_send(
        withdrawal_id=withdrawal.id,
        amount=amount,
        currency=currency,
        bank_account=bank_account,
        source=Source.API,
    )
    if current is None:
        withdrawal.refresh_from_db()  # refused, queued or unknown: read what the sender left
        return withdrawal
    return current


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
        _record_event(locked, from_status=S.PENDING, detail=detail, source=source)


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
        _transition(locked, S.FAILED, source=source, detail=reason)
        locked.failure_reason = reason[:255]
        locked.save(update_fields=["failure_reason"])
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
    mismatch = _provider_mismatch(
        locked, provider_object_id=payout.id, amount=payout.amount, currency=payout.currency
    )
    if mismatch:
        return _flag_for_review(locked, mismatch, source=source)
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
        _save_fields(locked, unsaved)
        return Applied.UNCHANGED
    if states.WITHDRAWAL_PROGRESS[target] <= states.WITHDRAWAL_PROGRESS[locked.status]:
        _save_fields(locked, unsaved)
        return Applied.STALE
    detail = f"Revio payout {payout.status}" + (f": {reason}" if reason else "")
    if locked.status == S.PENDING and target not in {S.PROCESSING, S.FAILED}:
        # Accepted, implied by the outcome.
        _transition(locked, S.PROCESSING, source=source, detail=detail, also_save=unsaved)
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
    _transition(locked, target, source=source, detail=detail, also_save=unsaved)
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
    _transition(
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


# -- shared -----------------------------------------------------------------------------------------------


def transaction_transition(
    *, transaction_id: uuid.UUID, to_status: str, source: str, detail: str = ""
) -> Applied:
    """Move a transaction to a status without moving money: the guarded primitive, for statuses that do
    not touch the ledger (a deposit expiring, say). Money-moving changes go through the apply_* services.

    :raises IllegalTransitionError: not in the state machine.
    """
    with transaction.atomic():
        locked = Transaction.objects.select_for_update().get(id=transaction_id)
        if locked.status == to_status:
            return Applied.UNCHANGED
        if to_status in {S.COMPLETED, S.RETURNED} or (
            locked.type == TransactionType.WITHDRAWAL and to_status == S.FAILED
        ):
            raise IllegalTransitionError("This status change moves money; use the provider-state services.")
        _transition(locked, to_status, source=source, detail=detail)
        return Applied.CHANGED


def _save_fields(txn: Transaction, fields: list[str]) -> None:
    if fields:
        txn.save(update_fields=fields)


def _transition(
    txn: Transaction,
    to_status: str,
    *,
    source: str,
    detail: str,
    also_save: Sequence[str] = (),
    notify_event: str | None = None,
) -> None:
    """The one guarded state change. The caller holds the row lock and owns the transaction. `also_save`
    names fields the caller changed on `txn`, written by the same UPDATE; `notify_event` replaces the
    "<type>.<status>" email when the move means something else (a clawback)."""
    if not states.is_allowed(txn.type, txn.status, to_status):
        logger.warning(
            "refused illegal transition of %s %s: %s → %s (%s)",
            txn.type,
            txn.id,
            txn.status,
            to_status,
            detail,
        )
        raise IllegalTransitionError(
            f"A {txn.type} cannot move from {txn.status} to {to_status}.",
            details={"transaction_id": str(txn.id), "from": txn.status, "to": to_status},
        )
    from_status = txn.status
    txn.status = to_status
    txn.updated_at = timezone.now()
    fields = ["status", "updated_at", *also_save]
    if to_status in {S.COMPLETED, S.RETURNED} or to_status in states.TERMINAL[txn.type]:
        txn.completed_at = txn.updated_at
        fields.append("completed_at")
    txn.save(update_fields=fields)
    _record_event(txn, from_status=from_status, detail=detail, source=source)
    logger.info("%s %s: %s → %s (%s)", txn.type, txn.id, from_status, to_status, source)
    # The outbox: the email is recorded in this transaction and sent only after it commits.
    notifications.notification_record_for_transaction(
        transaction_id=txn.id, user_id=txn.user_id, event=notify_event or f"{txn.type}.{to_status}"
    )
    # Outgoing events (issue 19, wallet.events): the signed event for the client's backend, same transaction.
    events.event_record_for_transaction(
        transaction_id=txn.id,
        user_id=txn.user_id,
        transaction_type=txn.type,
        status=to_status,
        amount=txn.amount,
        currency=txn.currency,
    )


def _record_event(txn: Transaction, *, from_status: str, detail: str, source: str) -> None:
    TransactionEvent.objects.create(
        transaction=txn, from_status=from_status, to_status=txn.status, source=source, detail=detail[:255]
    )


def _provider_mismatch(txn: Transaction, *, provider_object_id: str, amount: int, currency: str) -> str:
    if txn.provider_object_id and txn.provider_object_id != provider_object_id:
        return f"Revio object {provider_object_id} does not match ours ({txn.provider_object_id})"
    if amount != txn.amount or currency != txn.currency:
        return f"Revio says {amount} {currency}; we hold {txn.amount} {txn.currency}"
    return ""


def _flag_for_review(txn: Transaction, reason: str, *, source: str) -> Applied:
    """Mark the transaction for an operator; returned (not raised) so the flag commits."""
    logger.error("%s %s flagged for review: %s", txn.type, txn.id, reason)
    txn.needs_review = True
    txn.review_reason = reason[:255]
    txn.save(update_fields=["needs_review", "review_reason"])
    _record_event(txn, from_status=txn.status, detail=f"flagged for review: {reason}", source=source)
    return Applied.FLAGGED


def _check_amount(*, amount: int, currency: str, low: int, high: int) -> None:
    if currency != settings.WALLET_CURRENCY:
        raise ValidationFailedError.for_fields(
            {"currency": [f"Only {settings.WALLET_CURRENCY} is supported."]}
        )
    if not low <= amount <= high:
        raise ValidationFailedError.for_fields(
            {"amount": [f"Must be between {low} and {high} (minor units)."]}
        )


def _check_withdrawal_limits(*, user_id: uuid.UUID, currency: str, amount: int, now: datetime) -> None:
    """Risk limits, read under the balance lock (and its advisory lock, which every writer of this user's
    withdrawals holds), so concurrent requests cannot slip past them together. One statement."""
    since = now - timedelta(hours=24)
    open_statuses = [S.PENDING, S.PROCESSING]
    usage = Transaction.objects.filter(
        # Only rows that can count: open ones, or from the last 24 hours (both indexed), not the history.
        Q(status__in=open_statuses) | Q(created_at__gte=since),
        user_id=user_id,
        type=TransactionType.WITHDRAWAL,
        currency=currency,
    ).aggregate(
        open_count=Count("id", filter=Q(status__in=open_statuses)),
        used=Sum("amount", filter=Q(created_at__gte=since) & ~Q(status=S.FAILED)),
    )
    if usage["open_count"] >= settings.WITHDRAWAL_MAX_OPEN:
        raise WithdrawalLimitError(
            f"At most {settings.WITHDRAWAL_MAX_OPEN} withdrawals can be in progress at once.",
            details={"limit": "max_open", "max_open": settings.WITHDRAWAL_MAX_OPEN},
        )
    used = usage["used"] or 0
    if used + amount > settings.WITHDRAWAL_DAILY_MAX_AMOUNT:
        raise WithdrawalLimitError(
            "This withdrawal would exceed the daily withdrawal limit.",
            details={
                "limit": "daily_amount",
                "daily_max": settings.WITHDRAWAL_DAILY_MAX_AMOUNT,
                "used": used,
            },
        )


def transaction_flag_for_review(*, transaction_id: uuid.UUID, reason: str, source: str) -> None:
    """Flag a deposit or withdrawal for an operator (a refund, a chargeback, a disagreeing record)."""
    with transaction.atomic():
        locked = Transaction.objects.select_for_update().get(id=transaction_id)
        _flag_for_review(locked, reason, source=source)
