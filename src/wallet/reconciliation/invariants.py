"""The invariant monitor: the books balance, balances equal their entries, reserved money matches the
withdrawals in flight, and what our ledger says Revio holds for us is what Revio says it holds (its company
balance, platform fact 6). A violation is an alert (error log, metric, Sentry event), and every check is
stored.
"""

import logging
import time
from datetime import datetime

import sentry_sdk
from django.db import connection, transaction

from wallet.core import metrics
from wallet.ledger import public as ledger
from wallet.reconciliation.models import InvariantCheck
from wallet.revio.public import CompanyBalance, RevioError, get_client

logger = logging.getLogger(__name__)


def clearing_held() -> dict[str, int]:
    """What our ledger says Revio holds for us, by currency: the Revio clearing account's entries, negated
    (a credited deposit is -amount there, a settled payout +amount, a bank return -amount)."""
    with connection.cursor() as cursor:
        # The ledger's tables, read-only, in the caller's snapshot.
        cursor.execute(
            """
            SELECT a.currency, COALESCE(SUM(e.amount), 0)
            FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
            WHERE a.kind = 'revio_clearing' AND a.user_id IS NULL
            GROUP BY a.currency
            """
        )
        return {currency: -int(total) for currency, total in cursor.fetchall()}


def clearing_problems(theirs: dict[str, CompanyBalance]) -> list[str]:
    """Our clearing position against Revio's gross balance (before its fees, which our ledger does not
    book). While a payment or payout is on its way (paid at Revio, its event not applied yet) the two
    differ for a moment; a difference that stays is money one side does not know about."""
    ours = clearing_held()
    problems = []
    for currency in sorted(set(ours) | set(theirs)):
        held = ours.get(currency, 0)
        revio = theirs[currency].gross if currency in theirs else 0
        if held != revio:
            problems.append(
                f"revio_clearing_position ({currency}): our ledger says Revio holds {held}, Revio's gross "
                f"balance is {revio} (Revio {'more' if revio > held else 'less'} by {abs(revio - held)})"
            )
    return problems


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
    skipped: list[str] = []
    theirs: dict[str, CompanyBalance] | None = None
    try:
        theirs = get_client().company_balance()  # read before the snapshot: no transaction over HTTP
    except RevioError as exc:
        skipped.append(f"revio_clearing_position: not compared, Revio's balance could not be read: {exc}")
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                # One snapshot for every query: a withdrawal committing mid-check is not a false alarm.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        problems = ledger.ledger_problems() + reserved_problems()
        if theirs is not None:
            problems += clearing_problems(theirs)
    check = InvariantCheck.objects.create(
        checked_at=now,
        ok=not problems,
        problems=problems,
        skipped=skipped,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    if problems:
        metrics.increment("invariant_violations")
        summary = f"invariant monitor: {len(problems)} violation(s); first: {problems[0]}"
        logger.error("%s (check %s)", summary, check.id, extra={"problems": problems[:50]})
        sentry_sdk.capture_message(summary, level="error")
    return check
