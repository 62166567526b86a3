"""Stuck-transaction recovery: find deposits and withdrawals that should have moved on, ask Revio, apply.

The job runs every RECONCILIATION_RECOVERY_INTERVAL_SECONDS (and `manage.py reconcile`):
1. Discover: transactions past their threshold get a StuckTransaction row (once per transaction and kind).
2. Claim: due rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED, and their next check time is moved
   on by the back-off (RECONCILIATION_BACKOFF_SECONDS) in the same commit, so two runs at once never
   check the same row. The apply services are idempotent anyway.
3. Check each claimed row outside any lock: read Revio's object and apply it through the transactions
   services, the same ones webhooks use. Withdrawals whose outcome is unknown are never sent again and
   never refunded without proof that Revio has no payout (docs/adr/0006-stuck-withdrawals.md).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from wallet.core import metrics
from wallet.reconciliation.models import StuckKind, StuckStatus, StuckTransaction
from wallet.revio.public import Payout, RevioError, RevioRejectedError, get_client
from wallet.revio.public import payouts as revio_payouts
from wallet.transactions import public as transactions

logger = logging.getLogger(__name__)

S = transactions.TransactionStatus
T = transactions.TransactionType
SOURCE = transactions.TransactionEvent.Source.RECONCILIATION


@dataclass
class RecoveryReport:
    discovered: int = 0
    checked: int = 0
    resolved: int = 0
    operator_tasks: int = 0
    alerts: int = 0
    results: dict[str, str] = field(default_factory=dict)  # transaction id -> what the check did


def backoff(checks: int) -> timedelta:
    """Wait after the `checks`-th check: the configured steps in turn, then the last one forever."""
    steps = settings.RECONCILIATION_BACKOFF_SECONDS
    return timedelta(seconds=steps[min(checks, len(steps)) - 1])


def recovery_run(*, now: datetime) -> RecoveryReport:
    """Discover stuck transactions, claim the due ones, and check each against Revio. Safe to run twice."""
    report = RecoveryReport()
    report.discovered = _discover(now=now)
    for row in _claim_due(now=now):
        report.checked += 1
        _check(row, now=now, report=report)
    if report.checked:
        logger.info(
            "recovery: %d discovered, %d checked, %d resolved, %d operator tasks",
            report.discovered,
            report.checked,
            report.resolved,
            report.operator_tasks,
        )
    return report


# -- discovery and claiming -------------------------------------------------------------------------------


def _stuck_filters(now: datetime) -> dict[str, Q]:
    return {
        StuckKind.DEPOSIT_PENDING: Q(
            type=T.DEPOSIT,
            status=S.PENDING,
            created_at__lte=now - timedelta(seconds=settings.RECONCILIATION_DEPOSIT_PENDING_SECONDS),
        ),
        # Only withdrawals whose payout request went out: never-sent ones belong to the payouts sweep.
        StuckKind.WITHDRAWAL_UNKNOWN: Q(
            type=T.WITHDRAWAL,
            status=S.PENDING,
            payout_requested_at__lte=now
            - timedelta(seconds=settings.RECONCILIATION_WITHDRAWAL_PENDING_SECONDS),
        ),
        StuckKind.WITHDRAWAL_PROCESSING: Q(
            type=T.WITHDRAWAL,
            status=S.PROCESSING,
            updated_at__lte=now - timedelta(seconds=settings.RECONCILIATION_WITHDRAWAL_PROCESSING_SECONDS),
        ),
    }


def _still_stuck(txn: transactions.Transaction, kind: str) -> bool:
    if kind == StuckKind.DEPOSIT_PENDING:
        return txn.type == T.DEPOSIT and txn.status == S.PENDING
    if kind == StuckKind.WITHDRAWAL_UNKNOWN:
        return txn.type == T.WITHDRAWAL and txn.status == S.PENDING
    return txn.type == T.WITHDRAWAL and txn.status == S.PROCESSING


def _discover(*, now: datetime) -> int:
    found = 0
    for kind, condition in _stuck_filters(now).items():
        known = StuckTransaction.objects.filter(kind=kind).values("transaction_id")
        ids = list(
            transactions.Transaction.objects.filter(condition)
            .exclude(id__in=known)
            .order_by("created_at")
            .values_list("id", flat=True)[: settings.RECONCILIATION_BATCH_SIZE * 5]
        )
        rows = [
            StuckTransaction(transaction_id=txn_id, kind=kind, first_seen_at=now, next_check_at=now)
            for txn_id in ids
        ]
        # A concurrent run may insert the same rows: the unique constraint keeps one.
        StuckTransaction.objects.bulk_create(rows, ignore_conflicts=True)
        found += len(rows)
    return found


def _claim_due(*, now: datetime) -> list[StuckTransaction]:
    with transaction.atomic():
        rows = list(
            StuckTransaction.objects.select_for_update(skip_locked=True)
            .filter(status=StuckStatus.WATCHING, next_check_at__lte=now)
            .order_by("next_check_at", "id")[: settings.RECONCILIATION_BATCH_SIZE]
        )
        for row in rows:
            row.checks += 1
            row.last_checked_at = now
            row.next_check_at = now + backoff(row.checks)
            row.save(update_fields=["checks", "last_checked_at", "next_check_at"])
    return rows


# -- checking one transaction -----------------------------------------------------------------------------


def _check(row: StuckTransaction, *, now: datetime, report: RecoveryReport) -> None:
    txn = transactions.transaction_find(transaction_id=row.transaction_id)
    assert txn is not None  # noqa: S101 - a foreign key: transactions are never deleted
    result = ""
    if _still_stuck(txn, row.kind):
        try:
            if row.kind == StuckKind.DEPOSIT_PENDING:
                result = _check_deposit(txn, now=now)
            elif row.kind == StuckKind.WITHDRAWAL_UNKNOWN:
                result = _check_withdrawal_unknown(txn, row, now=now)
            else:
                result = _check_withdrawal_processing(txn, row)
        except RevioError as exc:
            result = f"Revio could not be asked: {exc}"
            logger.warning("recovery of %s %s: %s", txn.type, txn.id, result)
        except transactions.IllegalTransitionError as exc:
            result = f"refused: {exc}"
        txn = transactions.transaction_find(transaction_id=row.transaction_id) or txn
    report.results[str(txn.id)] = result or f"no longer stuck: {txn.status}"

    update: dict[str, object] = {"last_result": (result or f"no longer stuck: {txn.status}")[:255]}
    if not _still_stuck(txn, row.kind):
        update.update(status=StuckStatus.RESOLVED, resolved_at=now)
        report.resolved += 1
    elif row.status == StuckStatus.OPERATOR:
        update.update(status=StuckStatus.OPERATOR, operator_reason=row.operator_reason)
        report.operator_tasks += 1
    if (
        _still_stuck(txn, row.kind)
        and row.alerted_at is None
        and now - row.first_seen_at >= timedelta(seconds=settings.RECONCILIATION_STUCK_ALERT_SECONDS)
    ):
        update["alerted_at"] = now
        report.alerts += 1
        metrics.increment("reconciliation_stuck_alerts")
        logger.error(
            "%s %s stuck since %s (%s, %d checks): %s",
            txn.type,
            txn.id,
            row.first_seen_at.isoformat(),
            row.kind,
            row.checks,
            update["last_result"],
        )
    StuckTransaction.objects.filter(id=row.id).update(**update)


def _check_deposit(txn: transactions.Transaction, *, now: datetime) -> str:
    if not txn.provider_object_id:
        # The purchase creation's outcome was unknown: the customer never got a checkout URL.
        horizon = timedelta(seconds=settings.RECONCILIATION_DEPOSIT_EXPIRY_SECONDS)
        if now - txn.created_at < horizon:
            return "no purchase id known yet; waiting for the expiry horizon"
        transactions.transaction_transition(
            transaction_id=txn.id,
            to_status=S.EXPIRED,
            source=SOURCE,
            detail="no Revio purchase known past the purchase expiry horizon",
        )
        return "expired: no Revio purchase known past the expiry horizon"
    purchase = get_client().purchase_get(txn.provider_object_id)
    if purchase.reference != str(txn.id):
        reason = f"purchase {purchase.id} names reference {purchase.reference}"
        transactions.transaction_flag_for_review(transaction_id=txn.id, reason=reason, source=SOURCE)
        return f"flagged for review: {reason}"
    applied = transactions.deposit_apply_provider_state(deposit_id=txn.id, purchase=purchase, source=SOURCE)
    return f"Revio purchase {purchase.status}: {applied}"


def _apply_payout(txn: transactions.Transaction, payout: Payout) -> str:
    if payout.reference != str(txn.id):
        reason = f"payout {payout.id} names reference {payout.reference}"
        transactions.transaction_flag_for_review(transaction_id=txn.id, reason=reason, source=SOURCE)
        return f"flagged for review: {reason}"
    applied = transactions.withdrawal_apply_provider_state(withdrawal_id=txn.id, payout=payout, source=SOURCE)
    return f"Revio payout {payout.id} {payout.status}: {applied}"


def _check_withdrawal_processing(txn: transactions.Transaction, row: StuckTransaction) -> str:
    if txn.payout_route == revio_payouts.RETIRED_ROUTE:
        return _hand_to_retired_route_operator(txn, row)
    if not txn.provider_object_id:
        return "processing without a payout id: nothing to look up"
    return _apply_payout(txn, revio_payouts.get_payouts().get(txn.provider_object_id))


def payouts_by_reference(reference: str) -> list[Payout] | None:
    """Revio's EFT payments carrying our reference, or None when Revio offers no such lookup (404/405)."""
    try:
        payouts = revio_payouts.get_payouts().find_by_reference(reference)
    except RevioRejectedError as exc:
        if exc.status in (404, 405):
            return None
        raise
    return [payout for payout in payouts if payout.reference == reference]


def _check_withdrawal_unknown(txn: transactions.Transaction, row: StuckTransaction, *, now: datetime) -> str:
    if txn.payout_route == revio_payouts.RETIRED_ROUTE:
        return _hand_to_retired_route_operator(txn, row)
    if txn.provider_object_id:
        return _apply_payout(txn, revio_payouts.get_payouts().get(txn.provider_object_id))
    found = payouts_by_reference(str(txn.id))
    if found is not None and len(found) == 1:
        return "found by reference: " + _apply_payout(txn, found[0])
    if found is not None and len(found) > 1:
        reason = f"{len(found)} payouts at Revio carry this withdrawal's reference: possible double payout"
        return _hand_to_operator(txn, row, reason=reason)
    requested_at = txn.payout_requested_at or txn.created_at
    age = now - requested_at
    if (
        found == []
        and settings.RECONCILIATION_PAYOUT_LOOKUP_AUTHORITATIVE
        and age >= timedelta(seconds=settings.RECONCILIATION_UNSENT_SAFE_SECONDS)
    ):
        transactions.withdrawal_fail_unsent(
            withdrawal_id=txn.id,
            reason="The payment provider never received this payout; the amount is back in your balance.",
            source=SOURCE,
        )
        return "failed, reservation returned: Revio's lookup shows no payout with this reference"
    evidence = "lookup unavailable" if found is None else "lookup empty but not authoritative or too recent"
    if age >= timedelta(seconds=settings.RECONCILIATION_OPERATOR_AFTER_SECONDS):
        return _hand_to_operator(
            txn, row, reason=f"payout outcome unknown since {requested_at.isoformat()}; {evidence}"
        )
    return f"no evidence yet ({evidence}); waiting for payout.created or a later check"


def _hand_to_retired_route_operator(txn: transactions.Transaction, row: StuckTransaction) -> str:
    """A payout sent through the retired gateway route cannot be read back (the gateway has no payouts,
    and the EFT API does not know it): "not found" there is no proof that no money left, so a person
    settles it from Revio's dashboard (transactions migration 0005)."""
    return _hand_to_operator(
        txn, row, reason="sent by the retired gateway payout route; check Revio's dashboard"
    )


def _hand_to_operator(txn: transactions.Transaction, row: StuckTransaction, *, reason: str) -> str:
    """Never a second payout, never a refund of money that may have left: a person decides."""
    row.status = StuckStatus.OPERATOR
    row.operator_reason = reason[:255]
    transactions.transaction_flag_for_review(
        transaction_id=txn.id, reason=f"operator task: {reason}", source=SOURCE
    )
    metrics.increment("reconciliation_operator_tasks")
    logger.error("withdrawal %s needs an operator: %s", txn.id, reason)
    return f"operator task: {reason}"


def stuck_check_again(*, stuck_ids: list[int], now: datetime) -> int:
    """Make watched rows due now, or put operator tasks back under watch (an operator's action)."""
    return StuckTransaction.objects.filter(
        id__in=stuck_ids, status__in=[StuckStatus.WATCHING, StuckStatus.OPERATOR]
    ).update(status=StuckStatus.WATCHING, next_check_at=now)
