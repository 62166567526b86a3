"""The reconciliation app's write services, gathered: recovery, provider reconciliation, the monitor."""

from datetime import date, datetime, timedelta

from wallet.reconciliation.invariants import invariants_check
from wallet.reconciliation.models import ReconciliationRun, RunStatus
from wallet.reconciliation.provider import provider_reconciliation_run
from wallet.reconciliation.recovery import RecoveryReport, recovery_run, stuck_check_again
from wallet.transactions import public as transactions

__all__ = [
    "RecoveryReport",
    "invariants_check",
    "payouts_send_queued",
    "provider_reconciliation_daily",
    "provider_reconciliation_run",
    "recovery_run",
    "stuck_check_again",
]


def provider_reconciliation_daily(*, now: datetime) -> ReconciliationRun | None:
    """Reconcile yesterday (UTC) unless a completed run already covers it; a failed one is run again."""
    day: date = (now - timedelta(days=1)).date()
    done = ReconciliationRun.objects.filter(
        period_start__lte=day, period_end__gte=day, status=RunStatus.COMPLETED
    ).exists()
    if done:
        return None
    return provider_reconciliation_run(date_from=day, date_to=day, triggered_by="schedule", now=now)


def payouts_send_queued(*, now: datetime) -> dict[str, int]:
    """Send the payouts queued while Revio was down (each exactly once; see transactions services)."""
    return transactions.withdrawals_send_queued(now=now)
