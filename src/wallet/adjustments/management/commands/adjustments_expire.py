"""`manage.py adjustments_expire`: mark undecided correction proposals past their expiry as expired."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from wallet.adjustments.services import adjustments_expire


class Command(BaseCommand):
    help = "Mark pending balance-correction proposals past their expiry time as expired (audited)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = adjustments_expire(now=timezone.now())
        self.stdout.write(f"adjustments_expire: {count} proposal(s) expired")
