"""Record which payout route sent each withdrawal (docs/adr/0007-payout-routes.md).

Withdrawals sent before this existed all went through the gateway's /payouts/: they are marked so.
"""

from typing import Any

from django.db import migrations, models


def mark_sent_withdrawals(apps: Any, schema_editor: Any) -> None:
    Transaction = apps.get_model("transactions", "Transaction")
    Transaction.objects.filter(type="withdrawal", payout_requested_at__isnull=False).update(
        payout_route="gateway"
    )
    Transaction.objects.filter(type="withdrawal", provider_object_id__isnull=False).update(
        payout_route="gateway"
    )


class Migration(migrations.Migration):
    dependencies = [("transactions", "0002_withdrawal_payout_requested")]

    operations = [
        migrations.AddField(
            model_name="transaction",
            name="payout_route",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.RunPython(mark_sent_withdrawals, migrations.RunPython.noop),
    ]
