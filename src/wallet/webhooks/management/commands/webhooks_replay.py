"""`manage.py webhooks_replay --status dead_lettered`: send failed events through processing again."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from wallet.webhooks.models import WebhookLog, WebhookStatus
from wallet.webhooks.services import webhook_replay


class Command(BaseCommand):
    help = "Replay failed or dead-lettered Revio webhook events (processing is idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status",
            choices=[WebhookStatus.FAILED, WebhookStatus.DEAD_LETTERED],
            default=WebhookStatus.DEAD_LETTERED,
        )
        parser.add_argument("--id", type=int, action="append", dest="ids", help="only these log ids")
        parser.add_argument("--actor", default="manage.py webhooks_replay")

    def handle(self, *args: Any, **options: Any) -> None:
        logs = WebhookLog.objects.filter(status=options["status"])
        if options["ids"]:
            logs = logs.filter(id__in=options["ids"])
        count = sum(
            webhook_replay(log_id=log_id, actor=options["actor"])
            for log_id in logs.values_list("id", flat=True)
        )
        self.stdout.write(f"replayed {count} event(s)")
