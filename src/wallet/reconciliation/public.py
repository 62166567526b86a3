"""Reconciliation: stuck-transaction recovery, provider reconciliation, the invariant monitor.

It reads Revio and applies what it learns only through the transactions services; it proposes, and
never moves money on its own authority. Other apps import from here only.
"""

from wallet.reconciliation.models import (
    Discrepancy,
    DiscrepancyKind,
    InvariantCheck,
    ReconciliationRun,
    StuckKind,
    StuckStatus,
    StuckTransaction,
)
from wallet.reconciliation.selectors import latest_run_discrepancies
from wallet.reconciliation.services import (
    RecoveryReport,
    invariants_check,
    payouts_send_queued,
    provider_reconciliation_daily,
    provider_reconciliation_run,
    recovery_run,
    stuck_check_again,
)

__all__ = [
    "Discrepancy",
    "DiscrepancyKind",
    "InvariantCheck",
    "ReconciliationRun",
    "RecoveryReport",
    "StuckKind",
    "StuckStatus",
    "StuckTransaction",
    "invariants_check",
    "latest_run_discrepancies",
    "payouts_send_queued",
    "provider_reconciliation_daily",
    "provider_reconciliation_run",
    "recovery_run",
    "stuck_check_again",
]
