"""When a movement took effect (`effective_at`), beside when it was recorded (`created_at`).

Existing journals and entries took effect when they were recorded: effective_at = created_at. Filling the
new column is an UPDATE, which the append-only triggers of 0002 refuse, so the fill switches them off for
its own statement only. ALTER TABLE ... DISABLE TRIGGER is transactional, and this migration is one
transaction, so no other session ever sees the ledger without its triggers (they wait on the table lock
instead: ledger writes pause for the fill; 0011-statement-dates.md gives the measured time per 100,000
entries).

INSERT is never refused, before or after; the balanced-journal constraint trigger fires on INSERT only.
"""

from django.db import migrations, models

POSTGRES_FILL = [
    "ALTER TABLE ledger_journals DISABLE TRIGGER ledger_journals_append_only",
    "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only",
    "UPDATE ledger_journals SET effective_at = created_at WHERE effective_at IS NULL",
    "UPDATE ledger_entries SET effective_at = created_at WHERE effective_at IS NULL",
    "ALTER TABLE ledger_journals ENABLE TRIGGER ledger_journals_append_only",
    "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only",
]

def _effective_at() -> models.DateTimeField:
    # No default (see models.py): every row is filled above, and every new one comes from journal_post.
    return models.DateTimeField(editable=False)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_append_only_and_balanced")]

    operations = [
        # Nullable and without a default first: a plain ADD COLUMN, no table rewrite.
        migrations.AddField(
            model_name="journal", name="effective_at", field=models.DateTimeField(null=True, editable=False)
        ),
        migrations.AddField(
            model_name="entry", name="effective_at", field=models.DateTimeField(null=True, editable=False)
        ),
        # No parameters are passed, so the statements reach PostgreSQL as written. Reversed: nothing to undo.
        migrations.RunSQL(POSTGRES_FILL, migrations.RunSQL.noop),
        migrations.AlterField(model_name="journal", name="effective_at", field=_effective_at()),
        migrations.AlterField(model_name="entry", name="effective_at", field=_effective_at()),
        migrations.AddConstraint(
            model_name="journal",
            constraint=models.CheckConstraint(
                condition=models.Q(effective_at__lte=models.F("created_at")),
                name="ledger_journal_effective_not_after_recorded",
            ),
        ),
        migrations.AddConstraint(
            model_name="entry",
            constraint=models.CheckConstraint(
                condition=models.Q(effective_at__lte=models.F("created_at")),
                name="ledger_entry_effective_not_after_recorded",
            ),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(
                fields=["account", "effective_at", "amount"], name="ledger_entry_effective_idx"
            ),
        ),
    ]
