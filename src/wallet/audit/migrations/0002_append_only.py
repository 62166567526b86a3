"""The database refuses UPDATE and DELETE on audit events, whatever code (or SQL prompt) tries.

The chain head (audit_chain_head) is updated by every writer and is not covered; it only points at the last
row, and audit_verify checks it against the rows.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""

POSTGRES_DOWN = """
DROP TRIGGER audit_events_append_only ON audit_events;
DROP FUNCTION audit_refuse_change();
"""

class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        # No parameters are passed, so PL/pgSQL's % placeholders reach PostgreSQL as written.
        migrations.RunSQL(POSTGRES_UP, POSTGRES_DOWN),
    ]
