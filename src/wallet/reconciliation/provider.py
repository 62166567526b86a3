"""Provider reconciliation: our deposits and withdrawals of a period against Revio's objects, one by one.

Revio documents no list endpoints, so every object is read with a GET by its id (purchases from the
gateway, payouts from the EFT API); webhook events and confirmed EFT callbacks of the period that name
objects we do not know cover what we never recorded. A run records discrepancies by class
and proposes what to do. It moves money in one case only, what is safe (issue 16): a refund or chargeback
Revio made on a credited deposit whose payment.* event we never applied is debited through the same
service the event uses (transactions.reversal_apply_from_revio, once per amount; the event, if it comes
later, links to it). Everything else is recovery's and operators' work.

Late changes: besides the period's transactions, every open transaction and every deposit completed in the
last RECONCILIATION_LOOKBACK_DAYS is re-read, since chargebacks arrive months after the payment. A
REVERSED purchase is never counted as a completed deposit.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from wallet.reconciliation.models import (
    Discrepancy,
    DiscrepancyKind,
    ReconciliationRun,
    RunStatus,
)
from wallet.reconciliation.recovery import payouts_by_reference
from wallet.revio.public import (
    Payout,
    PayoutOutcome,
    Purchase,
    PurchaseOutcome,
    PurchaseTakeBack,
    RevioRejectedError,
    get_client,
    purchase_take_back,
)
from wallet.revio.public import payouts as revio_payouts
from wallet.transactions import public as transactions
from wallet.webhooks import public as webhooks

logger = logging.getLogger(__name__)

R = TypeVar("R")

S = transactions.TransactionStatus
T = transactions.TransactionType

# Our status each Revio outcome should have led to (what recovery or a webhook would apply).
_DEPOSIT_EXPECTED: dict[PurchaseOutcome, set[str]] = {
    PurchaseOutcome.PENDING: {S.PENDING},
    PurchaseOutcome.ATTEMPT_FAILED: {S.PENDING},
    PurchaseOutcome.PAID: {S.COMPLETED},
    PurchaseOutcome.CANCELLED: {S.CANCELLED},
    PurchaseOutcome.EXPIRED: {S.EXPIRED},
    PurchaseOutcome.FAILED: {S.FAILED},
    # REVERSED is not here: a reversed purchase is compared by what was taken back (_compare_take_back).
}
_CLOSED_UNPAID = {S.CANCELLED, S.EXPIRED, S.FAILED}
_WITHDRAWAL_EXPECTED: dict[PayoutOutcome, set[str]] = {
    PayoutOutcome.ACCEPTED: {S.PROCESSING},
    PayoutOutcome.PENDING: {S.PROCESSING},
    PayoutOutcome.SUCCEEDED: {S.COMPLETED},
    PayoutOutcome.FAILED: {S.FAILED, S.RETURNED},
}


@dataclass
class _Context:
    run: ReconciliationRun
    # Does the EFT API's lookup by reference work (a sandbox extension)? None until first asked.
    lookup_available: bool | None = None
    retired_route: int = 0  # withdrawals sent by the retired gateway route: not compared


def provider_reconciliation_run(
    *, date_from: date, date_to: date, triggered_by: str, now: datetime | None = None
) -> ReconciliationRun:
    """Compare the period [date_from, date_to] (UTC days, inclusive) with Revio; returns the finished run.

    A failure part-way is recorded on the run (status failed, the error) and the discrepancies found so far
    are kept; the run can simply be started again.
    """
    now = now or timezone.now()
    run = ReconciliationRun.objects.create(
        period_start=date_from, period_end=date_to, triggered_by=triggered_by[:64], started_at=now
    )
    ctx = _Context(run=run)
    resolved = transactions.refunds_resolve_pending(now=now)  # admin refunds whose answer was lost
    if resolved["completed"] or resolved["restored"]:
        run.notes += (
            f"Admin refunds with a lost answer: {resolved['completed']} confirmed by Revio's purchase, "
            f"{resolved['restored']} restored (Revio shows no such refund).\n"
        )
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    try:
        lookback = now - timedelta(days=settings.RECONCILIATION_LOOKBACK_DAYS)
        rows = transactions.Transaction.objects.filter(
            Q(created_at__gte=start, created_at__lt=end)
            | Q(status__in=[S.PENDING, S.PROCESSING])  # every open one, however old
            | Q(type=T.DEPOSIT, status=S.COMPLETED, completed_at__gte=lookback)  # late refunds, chargebacks
        )
        for txn in rows.order_by("created_at").iterator(chunk_size=200):
            if txn.type == T.DEPOSIT:
                run.deposits_checked += 1
                _compare_deposit(ctx, txn)
            else:
                run.withdrawals_checked += 1
                _compare_withdrawal(ctx, txn)
        _compare_webhook_objects(ctx, start=start, end=end)
        if ctx.lookup_available is False:
            run.notes += (
                "The EFT API offers no lookup by reference (404/405): a second payout for one withdrawal "
                "and payouts we never recorded are found only through callbacks.\n"
            )
        if ctx.retired_route:
            run.notes += (
                f"{ctx.retired_route} withdrawal(s) sent by the retired gateway payout route were not "
                "compared: no API can read them back; open ones are operator tasks.\n"
            )
        run.status = RunStatus.COMPLETED
    except Exception as exc:
        logger.exception("reconciliation run %s failed", run.id)
        run.status = RunStatus.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:4000]
    run.finished_at = timezone.now()
    run.discrepancies_found = run.discrepancies.count()
    run.save()
    if run.discrepancies_found:
        logger.warning(
            "reconciliation run %s (%s..%s): %d discrepancies",
            run.id,
            date_from,
            date_to,
            run.discrepancies_found,
        )
    return run


def _record(
    ctx: _Context,
    kind: str,
    *,
    detail: str,
    proposal: str,
    txn: transactions.Transaction | None = None,
    object_type: str = "",
    object_id: str = "",
    theirs: dict[str, Any] | None = None,
) -> None:
    Discrepancy.objects.create(
        run=ctx.run,
        kind=kind,
        transaction=txn,
        object_type=object_type,
        object_id=object_id,
        ours=_ours(txn) if txn else {},
        theirs=theirs or {},
        detail=detail[:500],
        proposal=proposal[:500],
    )


def _ours(txn: transactions.Transaction) -> dict[str, Any]:
    return {
        "id": str(txn.id),
        "type": txn.type,
        "status": txn.status,
        "amount": txn.amount,
        "currency": txn.currency,
        "provider_object_id": txn.provider_object_id or "",
        "created_at": txn.created_at.isoformat(),
    }


def _theirs(obj: Purchase | Payout) -> dict[str, Any]:
    return {
        "id": obj.id,
        "status": obj.status,
        "amount": obj.amount,
        "currency": obj.currency,
        "reference": obj.reference,
    }


def _read_or_record_missing(
    ctx: _Context,
    txn: transactions.Transaction,
    read: Callable[[str], R],
    *,
    object_type: str,
    proposal: str,
) -> R | None:
    """Revio's object for our transaction, or None after recording that Revio does not have it (a 404)."""
    object_id = txn.provider_object_id or ""
    try:
        return read(object_id)
    except RevioRejectedError as exc:
        if exc.status != 404:
            raise
    _record(
        ctx,
        DiscrepancyKind.MISSING_REVIO,
        txn=txn,
        object_type=object_type,
        object_id=object_id,
        detail=f"Revio has no {object_type} {object_id}",
        proposal=proposal,
    )
    return None


def _compare_deposit(ctx: _Context, txn: transactions.Transaction) -> None:
    if not txn.provider_object_id:
        if txn.status == S.COMPLETED:
            _record(
                ctx,
                DiscrepancyKind.MISSING_REVIO,
                txn=txn,
                detail="a completed deposit with no Revio purchase id",
                proposal="Find the purchase in Revio's dashboard; if none was paid, correct the balance.",
            )
        return  # never created at Revio (refused, or its outcome unknown and expired): nothing to compare
    purchase = _read_or_record_missing(
        ctx,
        txn,
        get_client().purchase_get,
        object_type="purchase",
        proposal="Check with Revio; if the money never arrived, an operator correction reverses it.",
    )
    if purchase is None:
        return
    _compare_object(ctx, txn, purchase, "purchase")
    if purchase.outcome in {PurchaseOutcome.PAID, PurchaseOutcome.REVERSED}:
        _compare_take_back(ctx, txn, purchase)
    expected = _DEPOSIT_EXPECTED.get(purchase.outcome)
    if purchase.outcome == PurchaseOutcome.PAID and txn.status in _CLOSED_UNPAID:
        _record(
            ctx,
            DiscrepancyKind.PAID_AFTER_EXPIRY,
            txn=txn,
            object_type="purchase",
            object_id=purchase.id,
            theirs=_theirs(purchase),
            detail=f"we closed the deposit ({txn.status}); Revio's purchase was paid after all",
            proposal="Recovery credits it (the money arrived; the state machine allows it, logged as late).",
        )
    elif expected is not None and txn.status not in expected:
        _record(
            ctx,
            DiscrepancyKind.STATUS_MISMATCH,
            txn=txn,
            object_type="purchase",
            object_id=purchase.id,
            theirs=_theirs(purchase),
            detail=f"we hold {txn.status}; Revio's purchase is {purchase.status}",
            proposal="Run recovery (manage.py reconcile) to apply Revio's state; review if it refuses.",
        )


def _compare_take_back(ctx: _Context, txn: transactions.Transaction, purchase: Purchase) -> None:
    """Refunds and chargebacks Revio made that we have not applied: classified, and on a credited deposit
    applied (debited once; debt allowed), as the payment.* event would have been."""
    state = purchase_take_back(get_client(), purchase.id)
    ours = transactions.reversal_totals(deposit_id=txn.id)
    gaps = {
        transactions.ReversalKind.CHARGEBACK: state.charged_back - ours.get("chargeback", 0),
        transactions.ReversalKind.REFUND: state.refunded - ours.get("refund", 0),
    }
    # Taken back but not explained by the attempts: by the purchase's status (a full chargeback says so).
    unexplained = state.taken_back - sum(ours.values()) - sum(g for g in gaps.values() if g > 0)
    if unexplained > 0:
        kind = (
            transactions.ReversalKind.CHARGEBACK
            if state.status == "chargeback"
            else transactions.ReversalKind.REFUND
        )
        gaps[kind] += unexplained
    for kind, gap in gaps.items():
        if gap > 0:
            _apply_take_back(ctx, txn, purchase, state, kind=kind, amount=gap)


def _apply_take_back(
    ctx: _Context,
    txn: transactions.Transaction,
    purchase: Purchase,
    state: PurchaseTakeBack,
    *,
    kind: str,
    amount: int,
) -> None:
    discrepancy = (
        DiscrepancyKind.CHARGED_BACK
        if kind == transactions.ReversalKind.CHARGEBACK
        else DiscrepancyKind.REFUNDED
    )
    theirs = {**_theirs(purchase), "taken_back": state.taken_back, "refunded": state.refunded,
              "charged_back": state.charged_back}  # fmt: skip
    if txn.status != S.COMPLETED:
        _record(
            ctx,
            discrepancy,
            txn=txn,
            object_type="purchase",
            object_id=purchase.id,
            theirs=theirs,
            detail=f"Revio took back {amount} ({kind}) of a deposit we never credited ({txn.status})",
            proposal="Nothing to take back from the user; check with Revio that no credit is owed.",
        )
        return
    applied = transactions.reversal_apply_from_revio(
        deposit_id=txn.id,
        reversal=transactions.RevioReversal(
            kind=kind,
            payment_id=None,
            amount=amount,
            currency=txn.currency,
            purchase_taken_back=state.taken_back,
        ),
        origin=transactions.ReversalOrigin.RECONCILIATION,
        source=transactions.TransactionEvent.Source.RECONCILIATION,
    )
    _record(
        ctx,
        discrepancy,
        txn=txn,
        object_type="purchase",
        object_id=purchase.id,
        theirs=theirs,
        detail=f"Revio took back {amount} ({kind}) that we had not applied: {applied}",
        proposal=(
            "Applied: the user was debited (debt if short); its payment event, if it comes, links to it."
            if applied == transactions.ReversalApplied.DEBITED
            else "Not applied (flagged): an operator compares the purchase with our refunds and chargebacks."
        ),
    )


def _compare_withdrawal(ctx: _Context, txn: transactions.Transaction) -> None:
    if txn.payout_route == revio_payouts.RETIRED_ROUTE:
        ctx.retired_route += 1
        return
    sent = txn.payout_requested_at or txn.provider_object_id
    found = _lookup(ctx, str(txn.id)) if sent else []
    if found is not None and len(found) > 1:
        _record(
            ctx,
            DiscrepancyKind.DUPLICATE,
            txn=txn,
            object_type="payout",
            object_id=",".join(p.id for p in found)[:64],
            theirs={"payouts": [_theirs(p) for p in found]},
            detail=f"{len(found)} payouts at Revio carry this withdrawal's reference",
            proposal="Cancel or recover the extra payout with Revio; then correct the balance if it paid.",
        )
    payout: Payout | None = None
    if txn.provider_object_id:
        payout = _read_or_record_missing(
            ctx,
            txn,
            revio_payouts.get_payouts().get,
            object_type="payout",
            proposal="Check with Revio whether the money left before any correction.",
        )
        if payout is None:
            return
    elif found:
        payout = found[0]
    if payout is None:
        return  # never sent, or refused at creation: nothing at Revio to compare with
    _compare_object(ctx, txn, payout, "payout")
    expected = _WITHDRAWAL_EXPECTED.get(payout.outcome)
    if payout.outcome == PayoutOutcome.SUCCEEDED and txn.status == S.FAILED:
        _record(
            ctx,
            DiscrepancyKind.SUCCESS_AFTER_REFUND,
            txn=txn,
            object_type="payout",
            object_id=payout.id,
            theirs=_theirs(payout),
            detail="we failed the withdrawal and returned the money; Revio's payout succeeded",
            proposal="The money left twice over: claw it back from the user (debt) or book the loss.",
        )
    elif expected is not None and txn.status not in expected:
        _record(
            ctx,
            DiscrepancyKind.STATUS_MISMATCH,
            txn=txn,
            object_type="payout",
            object_id=payout.id,
            theirs=_theirs(payout),
            detail=f"we hold {txn.status}; Revio's payout is {payout.status}",
            proposal=(
                "Run recovery to apply Revio's state. If we hold failed and Revio paid, the money left "
                "twice over: recover it from the user or book the loss with a correction."
            ),
        )


def _compare_object(
    ctx: _Context, txn: transactions.Transaction, obj: Purchase | Payout, object_type: str
) -> None:
    differences = []
    if obj.amount != txn.amount:
        differences.append(f"amount: ours {txn.amount}, Revio {obj.amount}")
    if obj.currency != txn.currency:
        differences.append(f"currency: ours {txn.currency}, Revio {obj.currency}")
    if obj.reference != str(txn.id):
        differences.append(f"reference: Revio names {obj.reference or '(none)'}")
    if differences:
        _record(
            ctx,
            DiscrepancyKind.AMOUNT_MISMATCH,
            txn=txn,
            object_type=object_type,
            object_id=obj.id,
            theirs=_theirs(obj),
            detail="; ".join(differences),
            proposal="Flag for review; settle the difference with a four-eyes correction once understood.",
        )


def _lookup(ctx: _Context, reference: str) -> list[Payout] | None:
    if ctx.lookup_available is False:
        return None
    found = payouts_by_reference(reference)
    ctx.lookup_available = found is not None
    return found


def _compare_webhook_objects(ctx: _Context, *, start: datetime, end: datetime) -> None:
    """Revio objects that webhook events of the period name and we do not know."""
    events = webhooks.webhook_objects_reported_between(start=start, end=end)
    seen: set[tuple[str, str]] = set()
    for event in events:
        key = (event["object_type"], event["object_id"])
        if key in seen:
            continue
        seen.add(key)
        ctx.run.events_checked += 1
        txn_type = T.DEPOSIT if event["object_type"] == "purchase" else T.WITHDRAWAL
        if transactions.transaction_find_by_provider_object(
            transaction_type=txn_type, provider_object_id=event["object_id"]
        ):
            continue
        ours = _transaction_named(event["reference"], txn_type)
        theirs = {"event_type": event["event_type"], "reference": event["reference"]}
        if ours is not None and ours.provider_object_id:
            _record(
                ctx,
                DiscrepancyKind.DUPLICATE,
                txn=ours,
                object_type=event["object_type"],
                object_id=event["object_id"],
                theirs=theirs,
                detail=(
                    f"a second Revio {event['object_type']} {event['object_id']} names this transaction, "
                    f"which is linked to {ours.provider_object_id}"
                ),
                proposal="Check the second object at Revio; cancel it, or recover money it moved.",
            )
        elif ours is not None:
            continue  # ours, not linked yet: recovery or the event's processing links it
        else:
            _record(
                ctx,
                DiscrepancyKind.MISSING_OURS,
                object_type=event["object_type"],
                object_id=event["object_id"],
                theirs=theirs,
                detail=f"Revio {event['object_type']} {event['object_id']} is not one of our transactions",
                proposal="Find out who created it (another integration, a test key); no money moved here.",
            )


def _transaction_named(reference: str, txn_type: str) -> transactions.Transaction | None:
    try:
        txn_id = uuid.UUID(reference)
    except (ValueError, TypeError):
        return None
    txn = transactions.transaction_find(transaction_id=txn_id)
    return txn if txn is not None and txn.type == txn_type else None
