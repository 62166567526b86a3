"""`manage.py audit_verify`: walk the audit chain; exit 1 naming the first broken row."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wallet.audit.models import AuditEvent
from wallet.audit.selectors import audit_chain_problems


class Command(BaseCommand):
    help = "Check the audit log's hash chain. Exits 1 naming the first broken row if it was tampered with."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = audit_chain_problems()
        if problems:
            for problem in problems:
                self.stderr.write(problem.message)
            first = problems[0]
            where = f"row {first.event_id}" if first.event_id is not None else "the chain head"
            raise CommandError(f"audit_verify: chain broken at {where}: {first.message}")
        self.stdout.write(f"audit_verify: ok ({AuditEvent.objects.count()} rows, chain intact)")
