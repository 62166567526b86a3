"""The database refuses UPDATE and DELETE on audit events, whatever code (or SQL prompt) tries.

The chain head (audit_chain_head) is updated by every writer and is not covered; it only points at the last
row, and audit_verify checks it against the rows.
"""

from django.db import migrations

from wallet.core.migrations_helpers import append_only


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [append_only(function="audit_refuse_change", label="audit", tables=["audit_events"])]
