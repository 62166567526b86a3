"""Database-level guarantees for the ledger, whatever code (or person with a SQL prompt) writes to it.

- Entries and journals are append-only: UPDATE and DELETE raise. Corrections are reversing journals.
- A deferred constraint trigger checks at commit that each journal's entries sum to zero.
"""

from django.db import migrations

from wallet.core.migrations_helpers import append_only

POSTGRES_UP = """
CREATE FUNCTION ledger_check_journal_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced RECORD;
BEGIN
    SELECT currency, SUM(amount) AS total INTO unbalanced FROM ledger_entries
        WHERE journal_id = NEW.journal_id GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal % does not balance: % %', NEW.journal_id, unbalanced.total, unbalanced.currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_journal_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_journal_balanced();
"""

POSTGRES_DOWN = """
DROP TRIGGER ledger_journal_balanced ON ledger_entries;
DROP FUNCTION ledger_check_journal_balanced();
"""

class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        append_only(
            function="ledger_refuse_change", label="ledger", tables=["ledger_entries", "ledger_journals"]
        ),
        # No parameters are passed, so PL/pgSQL's % placeholders reach PostgreSQL as written.
        migrations.RunSQL(POSTGRES_UP, POSTGRES_DOWN),
    ]
