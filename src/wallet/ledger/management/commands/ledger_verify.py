"""`manage.py ledger_verify`: every journal balances and every cached balance equals its entries."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wallet.ledger.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check the ledger: journals sum to zero and cached balances equal their entries. Exits 1 if not."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_problems()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"ledger_verify: {len(problems)} problem(s) found")
        self.stdout.write("ledger_verify: ok (every journal balances; every balance equals its entries)")
