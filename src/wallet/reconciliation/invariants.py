"""The invariant monitor: the books balance, balances equal their entries, reserved money matches the
withdrawals in flight. A violation is an alert (error log, metric, Sentry event), and every check is stored.
"""

import logging
import time
from datetime import datetime

import sentry_sdk
from django.db import connection, transaction

from wallet.core import metrics
from wallet.ledger import public as ledger
from wallet.reconciliation.models import InvariantCheck

logger = logging.getLogger(__name__)

CLEARING_SKIPPED = (
    "revio_clearing_position: not compared. Revio documents no balance, settlement or list endpoint, so "
    "what Revio holds for us cannot be read; provider reconciliation compares object by object instead."
)


def reserved_problems() -> list[str]:
    """Each user's reserved balance must equal the sum of their open (pending or processing) withdrawals."""
    with connection.cursor() as cursor:
        # The ledger's balances table, read-only, joined in SQL so both sides come from one snapshot.
        cursor.execute(
            """
            WITH open_withdrawals AS (
                SELECT user_id, currency, SUM(amount) AS total FROM transactions
                WHERE type = 'withdrawal' AND status IN ('pending', 'processing')
                GROUP BY user_id, currency
            )
            SELECT COALESCE(b.user_id, o.user_id), COALESCE(b.currency, o.currency),
                   COALESCE(b.reserved, 0), COALESCE(o.total, 0)
            FROM balances b
            FULL OUTER JOIN open_withdrawals o ON o.user_id = b.user_id AND o.currency = b.currency
            WHERE COALESCE(b.reserved, 0) <> COALESCE(o.total, 0)
            """
        )
        return [
            f"user {user_id} ({currency}): reserved {reserved} but open withdrawals sum to {total}"
            for user_id, currency, reserved, total in cursor.fetchall()
        ]


def invariants_check(*, now: datetime) -> InvariantCheck:
    """Run every check in one consistent snapshot, store the result, and alert on any violation."""
    started = time.monotonic()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # One snapshot for every query: a withdrawal committing mid-check is not a false alarm.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        problems = ledger.ledger_problems() + reserved_problems()
    check = InvariantCheck.objects.create(
        checked_at=now,
        ok=not problems,
        problems=problems,
        skipped=[CLEARING_SKIPPED],
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    if problems:
        metrics.increment("invariant_violations")
        summary = f"invariant monitor: {len(problems)} violation(s); first: {problems[0]}"
        logger.error("%s (check %s)", summary, check.id, extra={"problems": problems[:50]})
        sentry_sdk.capture_message(summary, level="error")
    return check
