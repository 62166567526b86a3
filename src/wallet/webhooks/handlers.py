"""Webhook handlers: what each kind of event does, chosen from a table by object type, then event type.

Each handler re-reads the object from Revio (the body is a trigger, Revio's current state is the truth)
and applies it through the wallet's state-guarded, idempotent services. It returns (status, what
happened, flagged for review), or raises RetryLaterError when the answer must wait.
"""

import contextlib
import contextvars
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings

from wallet.revio.public import (
    Payout,
    PayoutOutcome,
    Purchase,
    RevioError,
    RevioRejectedError,
    get_client,
    purchase_take_back,
)
from wallet.revio.public import payouts as revio_payouts
from wallet.transactions import public as transactions
from wallet.webhooks.errors import RetryLaterError
from wallet.webhooks.models import EFT_OBJECT_TYPE, WebhookLog, WebhookStatus

logger = logging.getLogger(__name__)

RevioObject = TypeVar("RevioObject", Purchase, Payout)
Outcome = tuple[str, str, bool]
Handler = Callable[[WebhookLog], Outcome]

# Refunds and chargebacks debit the user (wallet.transactions.reversals); a reversed chargeback is flagged.
_REVERSAL_EVENTS = {"payment.refunded": "refund", "payment.charged_back": "chargeback"}


def _our_transaction(log: WebhookLog, expected_type: str) -> Any:
    """The deposit or withdrawal the event's reference names, or why there is none."""
    try:
        transaction_id = uuid.UUID(log.reference)
    except ValueError:
        return None
    txn = transactions.transaction_find(transaction_id=transaction_id)
    if txn is None:
        # Revio can be faster than our own commit; or it is not ours. Retrying tells them apart.
        raise RetryLaterError(f"no {expected_type} {transaction_id} (yet)")
    return txn if txn.type == expected_type else None


def _outcome(applied: str, *, event_status: str, provider_status: str) -> Outcome:
    if applied == transactions.Applied.CHANGED:
        return WebhookStatus.PROCESSED, f"applied: Revio says {provider_status}", False
    if applied == transactions.Applied.FLAGGED:
        return WebhookStatus.PROCESSED, "flagged for review: Revio's object disagrees with ours", True
    if applied == transactions.Applied.STALE or event_status != provider_status:
        return (
            WebhookStatus.IGNORED,
            f"stale: the event says {event_status or '?'}, Revio now says {provider_status}; already applied",
            False,
        )
    return WebhookStatus.PROCESSED, f"no change needed: already {provider_status}", False


def _apply_purchase(log: WebhookLog) -> Outcome:
    def apply(deposit: Any, purchase: Purchase) -> str:
        return transactions.deposit_apply_provider_state(
            deposit_id=deposit.id, purchase=purchase, source=transactions.TransactionEvent.Source.WEBHOOK
        )

    return _apply_revio_object(
        log,
        transactions.TransactionType.DEPOSIT,
        lambda purchase_id: _reread(*_purchase_read(purchase_id)),
        apply,
    )


def _apply_eft_payment(log: WebhookLog) -> Outcome:
    """Re-read the EFT payment the callback names with our own token, and apply what the EFT API says.

    Nothing from the unsigned body is trusted: not the status, not the reference, not the amount. An id
    the EFT API does not know is ignored; a payment is applied to the withdrawal its contractReference
    names, and only if that withdrawal was sent by EFT.
    """
    source = transactions.TransactionEvent.Source.WEBHOOK
    try:
        payout = _reread(
            ("eft_payment", log.object_id), lambda: revio_payouts.get_payouts().get(log.object_id)
        )
    except RevioRejectedError as exc:
        if exc.status == 404:
            return WebhookStatus.IGNORED, "no such EFT payment at Revio: nothing to apply", False
        raise RetryLaterError(f"could not read EFT payment {log.object_id}: {exc}") from exc
    except RevioError as exc:
        raise RetryLaterError(f"could not read EFT payment {log.object_id}: {exc}") from exc
    try:
        withdrawal_id = uuid.UUID(payout.reference)
    except ValueError:
        return WebhookStatus.IGNORED, "the payment's contractReference is not one of our withdrawals", False
    withdrawal = transactions.transaction_find(transaction_id=withdrawal_id)
    if withdrawal is None:
        # Revio can be faster than our own commit; or it is not ours. Retrying tells them apart.
        raise RetryLaterError(f"no withdrawal {withdrawal_id} (yet)")
    if withdrawal.type != transactions.TransactionType.WITHDRAWAL:
        return WebhookStatus.IGNORED, "the payment's contractReference is not one of our withdrawals", False
    if withdrawal.payout_route and withdrawal.payout_route != revio_payouts.ROUTE:
        # Sent by the retired gateway route: an EFT payment for it may be a second payout.
        transactions.transaction_flag_for_review(
            transaction_id=withdrawal.id,
            reason=f"EFT payment {payout.id} names a withdrawal paid out via {withdrawal.payout_route}",
            source=source,
        )
        return WebhookStatus.PROCESSED, "flagged for review: an EFT payment for a gateway payout", True
    if payout.outcome == PayoutOutcome.UNKNOWN:
        # DISPUTED, INTERNAL_FAILURE or a state we do not know: whether money moved is unclear.
        transactions.transaction_flag_for_review(
            transaction_id=withdrawal.id,
            reason=f"EFT payment {payout.id} is {payout.status}: an operator decides",
            source=source,
        )
        return WebhookStatus.PROCESSED, f"flagged for review: the EFT payment is {payout.status}", True
    applied = transactions.withdrawal_apply_provider_state(
        withdrawal_id=withdrawal.id, payout=payout, source=source
    )
    return _outcome(applied, event_status=_event_status(log), provider_status=payout.status)


def _apply_revio_object(
    log: WebhookLog,
    transaction_type: str,
    read: Callable[[str], RevioObject],
    apply: Callable[[Any, RevioObject], str],
) -> Outcome:
    """Re-read the event's object from Revio and apply its current state to the transaction it names."""
    txn = _our_transaction(log, transaction_type)
    if txn is None:
        return WebhookStatus.IGNORED, f"the reference is not one of our {transaction_type}s", False
    try:
        obj = read(log.object_id)
    except RevioError as exc:
        raise RetryLaterError(f"could not read {log.object_type} {log.object_id} from Revio: {exc}") from exc
    if obj.reference != str(txn.id):
        transactions.transaction_flag_for_review(
            transaction_id=txn.id,
            reason=f"{log.object_type} {obj.id} names reference {obj.reference}",
            source=transactions.TransactionEvent.Source.WEBHOOK,
        )
        return (
            WebhookStatus.PROCESSED,
            f"flagged for review: Revio's {log.object_type} names another reference",
            True,
        )
    applied = apply(txn, obj)
    return _outcome(applied, event_status=_event_status(log), provider_status=obj.status)


def _flag_refund(log: WebhookLog) -> Outcome:
    """Refunds and chargebacks take money back outside the wallet: an operator decides what to do."""
    related = json.loads(log.body).get("related_to") or {}
    purchase_id = related.get("id") if isinstance(related, dict) else None
    deposit = transactions.transaction_find_by_provider_object(
        transaction_type=transactions.TransactionType.DEPOSIT, provider_object_id=str(purchase_id or "")
    )
    if deposit is None:
        logger.error("%s for unknown purchase %s (webhook %s)", log.event_type, purchase_id, log.id)
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} for an unknown purchase", True
    transactions.transaction_flag_for_review(
        transaction_id=deposit.id, reason=f"Revio sent {log.event_type}", source="webhook"
    )
    return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} on deposit {deposit.id}", True


def _apply_reversal_payment(log: WebhookLog) -> Outcome:
    """A refund or chargeback Payment: debit the user once per payment id (issue 16).

    The body is Revio's signed Payment (verified at intake): its id, amount and the purchase it names
    (`related_to`) are Revio's. The purchase is re-read from Revio all the same, and the debit is applied
    only if the purchase names our deposit and accounts for what was taken back (reversals.py).
    """
    body = json.loads(log.body)
    related = body.get("related_to")
    purchase_id = related.get("id") if isinstance(related, dict) else None
    payment = body.get("payment") if isinstance(body.get("payment"), dict) else {}
    amount, currency = payment.get("amount", body.get("amount")), payment.get("currency")
    if not isinstance(purchase_id, str) or not purchase_id:
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} names no purchase", True
    if body.get("status") != "success":
        return WebhookStatus.IGNORED, f"{log.event_type} is {body.get('status')!r}, not success", False
    if not (isinstance(amount, int) and not isinstance(amount, bool) and amount > 0) or not isinstance(
        currency, str
    ):
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} has no valid amount", True
    deposit = transactions.transaction_find_by_provider_object(
        transaction_type=transactions.TransactionType.DEPOSIT, provider_object_id=purchase_id
    )
    if deposit is None:  # not linked to its purchase yet (or not ours): the reference tells
        deposit = _our_transaction(log, transactions.TransactionType.DEPOSIT)
    if deposit is None:
        logger.error("%s for unknown purchase %s (webhook %s)", log.event_type, purchase_id, log.id)
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} for an unknown purchase", True
    try:
        state = _reread(*_take_back_read(purchase_id))
    except RevioError as exc:
        raise RetryLaterError(f"could not read purchase {purchase_id} from Revio: {exc}") from exc
    source = transactions.TransactionEvent.Source.WEBHOOK
    if state.reference != str(deposit.id) or (
        deposit.provider_object_id and deposit.provider_object_id != purchase_id
    ):
        transactions.transaction_flag_for_review(
            transaction_id=deposit.id,
            reason=f"{log.event_type} {log.object_id}: purchase {purchase_id} is not this deposit's",
            source=source,
        )
        return WebhookStatus.PROCESSED, f"flagged for review: {log.event_type} names another purchase", True
    applied = transactions.reversal_apply_from_revio(
        deposit_id=deposit.id,
        reversal=transactions.RevioReversal(
            kind=_REVERSAL_EVENTS[log.event_type],
            payment_id=log.object_id,
            amount=amount,
            currency=currency,
            purchase_taken_back=state.taken_back,
        ),
        origin=transactions.ReversalOrigin.REVIO,
        source=source,
    )
    flagged = applied == transactions.ReversalApplied.FLAGGED
    return WebhookStatus.PROCESSED, f"{log.event_type} {log.object_id}: {applied}", flagged


def _event_status(log: WebhookLog) -> str:
    status = json.loads(log.body).get("status")
    return status if isinstance(status, str) else ""


# The object type decides first (a purchase event is re-read as a purchase whatever its event type); then
# the event type, for Payment events.
_BY_OBJECT_TYPE: dict[str, Handler] = {
    "purchase": _apply_purchase,
    EFT_OBJECT_TYPE: _apply_eft_payment,
}
_BY_EVENT_TYPE: dict[str, Handler] = {
    "payment.refunded": _apply_reversal_payment,  # issue 16: refunds and chargebacks move money
    "payment.charged_back": _apply_reversal_payment,
    "payment.chargeback_reversed": _flag_refund,
}


def event_dispatch(log: WebhookLog) -> Outcome:
    """Apply the event with its handler; returns (status, what happened, flagged for review)."""
    handler = _BY_OBJECT_TYPE.get(log.object_type) or _BY_EVENT_TYPE.get(log.event_type)
    if handler is None:
        return WebhookStatus.IGNORED, f"no action for {log.object_type} events", False
    return handler(log)


# -- re-reads from Revio, made ahead for a batch -----------------------------------------------------------

_prefetched: contextvars.ContextVar[dict[Hashable, "Future[Any]"] | None] = contextvars.ContextVar(
    "webhook_rereads", default=None
)
_pool_lock = threading.Lock()
_pool_of: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked worker starts its own


def _pool() -> ThreadPoolExecutor:
    with _pool_lock:
        pool = _pool_of.get(os.getpid())
        if pool is None:
            pool = ThreadPoolExecutor(
                max_workers=settings.WEBHOOK_REREAD_CONCURRENCY, thread_name_prefix="webhook-reread"
            )
            _pool_of[os.getpid()] = pool
        return pool


def _reread(key: Hashable, read: Callable[[], Any]) -> Any:
    """The batch's prefetched answer for this read (its error re-raised here, where the handler catches
    it), used once; otherwise the read, made now."""
    prefetched = _prefetched.get()
    future = prefetched.pop(key, None) if prefetched is not None else None
    return read() if future is None else future.result()


Read = tuple[Hashable, Callable[[], Any]]  # a Revio read and the key that names it within a batch


def _purchase_read(purchase_id: str) -> Read:
    return ("purchase", purchase_id), lambda: get_client().purchase_get(purchase_id)


def _purchase_reread(purchase_id: str) -> Purchase:
    purchase: Purchase = _reread(*_purchase_read(purchase_id))
    return purchase


def _eft_payment_read(payment_id: str) -> Read:
    return ("eft_payment", payment_id), lambda: revio_payouts.get_payouts().get(payment_id)


def _take_back_read(purchase_id: str) -> Read:
    return ("take_back", purchase_id), lambda: purchase_take_back(get_client(), purchase_id)


def _reread_of(log: WebhookLog) -> Read | None:
    """The one Revio read the event's handler will make, or None (no read, or not known before it runs)."""
    if log.object_type == "purchase":
        return _purchase_read(log.object_id)
    if log.object_type == EFT_OBJECT_TYPE:
        return _eft_payment_read(log.object_id)
    if log.event_type in _REVERSAL_EVENTS:
        body = json.loads(log.body)
        related = body.get("related_to")
        purchase_id = related.get("id") if isinstance(related, dict) else None
        if isinstance(purchase_id, str) and purchase_id and body.get("status") == "success":
            return _take_back_read(purchase_id)
    return None


@contextlib.contextmanager
def prefetched_rereads(batch: Sequence[WebhookLog]) -> Iterator[None]:
    """Start the batch's re-reads from Revio at once, WEBHOOK_REREAD_CONCURRENCY at a time, for its
    handlers to pick up. The reads touch no database, so the applies stay on the caller's connection.

    An answer read a moment before its event is applied is as good as one read then: Revio's state is the
    truth either way, and the wallet's state machines only move forward. A read the handler turns out not
    to need (it found nothing to apply first) is made and dropped. A lone event is read by its handler.
    """
    if len(batch) < 2 or _prefetched.get() is not None:
        yield
        return
    futures: dict[Hashable, Future[Any]] = {}
    for log in batch:
        reread = _reread_of(log)
        if reread is not None and reread[0] not in futures:
            futures[reread[0]] = _pool().submit(reread[1])
    token = _prefetched.set(futures)
    try:
        yield
    finally:
        _prefetched.reset(token)
        for future in futures.values():  # unused: let them finish; their answers are dropped
            future.cancel()
