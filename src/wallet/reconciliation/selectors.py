"""Reads of reconciliation's records for other apps."""

from wallet.reconciliation.models import ReconciliationRun, RunStatus


def latest_run_discrepancies() -> int | None:
    """Discrepancies the latest completed provider reconciliation found (None before the first run): one
    row through reconciliation_run_started_idx, read from the run's own tally rather than counted."""
    return (
        ReconciliationRun.objects.filter(status=RunStatus.COMPLETED)
        .order_by("-started_at")
        .values_list("discrepancies_found", flat=True)
        .first()
    )
