"""Operations that several apps' migrations share. Migrations import only this from wallet code: it must
keep producing the same SQL for the migrations already written with it."""

from django.db import migrations


def append_only(*, function: str, label: str, tables: list[str]) -> migrations.RunSQL:
    """Make the database refuse UPDATE and DELETE on `tables`, whatever code (or SQL prompt) tries: one
    PL/pgSQL function `function` raising restrict_violation ("<label> rows are append-only"), and a
    BEFORE UPDATE OR DELETE trigger `<table>_append_only` on each table. Reversible."""
    triggers = "".join(
        f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {function}();"""
        for table in tables
    )
    up = f"""
CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{label} rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
{triggers}
"""
    down = "".join(f"DROP TRIGGER {table}_append_only ON {table};\n" for table in tables)
    # No parameters are passed, so PL/pgSQL's % placeholders reach PostgreSQL as written.
    return migrations.RunSQL(up, down + f"DROP FUNCTION {function}();\n")
