"""Deposits: creating one with its Revio purchase, and applying what Revio says happened to the purchase.

Nothing is credited when a deposit is created; only Revio's confirmation (a webhook or reconciliation,
through deposit_apply_provider_state) credits it, once, under the balance lock (ledger.balance_movement).
"""

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from wallet.core import idempotency
from wallet.ledger import public as ledger
from wallet.revio.public import (
    Purchase,
    PurchaseOutcome,
    RevioNotCreatedError,
    RevioOutcomeUnknownError,
    RevioUnavailableError,
    get_client,
)
from wallet.transactions.errors import (
    DepositNotStartedError,
    DepositOutcomeUnknownError,
    DepositProviderUnavailableError,
)
from wallet.transactions.models import Transaction, TransactionType
from wallet.transactions.models import TransactionStatus as S
from wallet.transactions.services.shared import (
    Applied,
    Source,
    check_amount,
    flag_for_review,
    provider_mismatch,
    record_event,
    transition,
)

logger = logging.getLogger(__name__)


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
    check_amount(
        amount=amount, currency=currency, low=settings.DEPOSIT_MIN_AMOUNT, high=settings.DEPOSIT_MAX_AMOUNT
    )
    deposit = Transaction(
        id=uuid.uuid4(), user_id=user_id, type=TransactionType.DEPOSIT, amount=amount, currency=currency
    )
    with transaction.atomic():
        deposit.save(force_insert=True)
        record_event(deposit, from_status="", detail="created", source=Source.API)
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
        deposit.failure_reason = reason  # before the transition: its email shows the reason
        transition(deposit, S.FAILED, source=Source.API, detail=reason, also_save=["failure_reason"])


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
        mismatch = provider_mismatch(
            locked, provider_object_id=purchase.id, amount=purchase.amount, currency=purchase.currency
        )
        if mismatch:
            return flag_for_review(locked, mismatch, source=source)
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
            return flag_for_review(
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
            return flag_for_review(locked, "Revio's purchase is a test object: not credited", source=source)
        transition(
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
