"""`manage.py reconcile`: recovery of stuck transactions (default), provider reconciliation, invariants.

manage.py reconcile                                            # stuck transactions + queued payouts
manage.py reconcile --provider --from 2026-11-01 --to 2026-11-30
manage.py reconcile --invariants                               # exits 1 on a violation
"""

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from wallet.reconciliation import services
from wallet.reconciliation.models import RunStatus


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value}") from exc


class Command(BaseCommand):
    help = "Recover stuck transactions, or reconcile a period with Revio (--provider), or check invariants."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", action="store_true", help="compare a period with Revio")
        parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (default yesterday)")
        parser.add_argument("--to", dest="date_to", help="last day, inclusive (default --from)")
        parser.add_argument("--invariants", action="store_true", help="run the invariant monitor")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["invariants"]:
            check = services.invariants_check(now=now)
            for line in check.problems:
                self.stderr.write(line)
            for line in check.skipped:
                self.stdout.write(f"skipped: {line}")
            if not check.ok:
                raise CommandError(f"invariants: {len(check.problems)} violation(s)")
            self.stdout.write("invariants: ok")
            return
        if options["provider"]:
            date_from = (
                _day(options["date_from"]) if options["date_from"] else (now - timedelta(days=1)).date()
            )
            date_to = _day(options["date_to"]) if options["date_to"] else date_from
            if date_to < date_from:
                raise CommandError("--to is before --from")
            run = services.provider_reconciliation_run(
                date_from=date_from, date_to=date_to, triggered_by="manage.py reconcile", now=now
            )
            self.stdout.write(
                f"run {run.id} {run.status}: {run.deposits_checked} deposits, {run.withdrawals_checked} "
                f"withdrawals, {run.events_checked} webhook objects, {run.discrepancies_found} discrepancies"
            )
            if run.status != RunStatus.COMPLETED:
                raise CommandError(f"run {run.id} failed: {run.error}")
            return
        report = services.recovery_run(now=now)
        sent = services.payouts_send_queued(now=now)
        self.stdout.write(
            f"recovery: {report.discovered} newly stuck, {report.checked} checked, "
            f"{report.resolved} resolved, {report.operator_tasks} operator tasks, {report.alerts} alerts; "
            f"queued payouts: {sent or 'none'}"
        )
