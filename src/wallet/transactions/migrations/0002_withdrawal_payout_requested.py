"""Track whether a withdrawal's payout request was sent, so a queued one is sent once and an unknown one never.

Withdrawals that exist already were all sent (or attempted) when they were created: they are marked so.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="transaction",
            name="payout_requested_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="transaction",
            name="payout_attempts",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="Payout requests sent to Revio (at most one unless Revio refused it)."
            ),
        ),
        migrations.RunSQL(
            "UPDATE transactions SET payout_requested_at = created_at, payout_attempts = 1 "
            "WHERE type = 'withdrawal'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
