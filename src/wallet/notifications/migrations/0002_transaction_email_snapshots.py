"""Emails about a deposit or withdrawal now render from a snapshot kept with the row (issue 21): rows not
yet sent, recorded before that, get theirs from the transaction as it is now, which is what they would
have shown when sent."""

from typing import Any

from django.db import migrations


def snapshot_unsent(apps: Any, schema_editor: Any) -> None:
    notification = apps.get_model("notifications", "Notification")
    transaction = apps.get_model("transactions", "Transaction")
    rows = notification.objects.filter(
        transaction_id__isnull=False, status__in=["pending", "failed"], context={}
    ).only("id", "transaction_id")
    for row in rows.iterator(chunk_size=500):
        txn = transaction.objects.filter(id=row.transaction_id).first()
        if txn is None:
            continue  # the send gives it up as it did before: nothing to render
        row.context = {
            "amount": txn.amount,
            "currency": txn.currency,
            "bank_account_masked": txn.bank_account_masked or "",
            "failure_reason": txn.failure_reason or "",
        }
        row.save(update_fields=["context"])


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("transactions", "0007_deposit_reversals"),
    ]

    operations = [migrations.RunPython(snapshot_unsent, migrations.RunPython.noop)]
