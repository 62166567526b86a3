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

SQLITE_UP = [
    f"CREATE TRIGGER audit_events_no_{op.lower()} BEFORE {op} ON audit_events "
    f"BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: {op} on audit_events refused'); END;"
    for op in ("UPDATE", "DELETE")
]
SQLITE_DOWN = [f"DROP TRIGGER audit_events_no_{op.lower()};" for op in ("UPDATE", "DELETE")]


def _run(statements_by_vendor: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        # A raw cursor without parameters, so PL/pgSQL's % placeholders are not taken for the driver's.
        with schema_editor.connection.cursor() as cursor:
            for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": [POSTGRES_UP], "sqlite": SQLITE_UP}),
            _run({"postgresql": [POSTGRES_DOWN], "sqlite": SQLITE_DOWN}),
        ),
    ]
