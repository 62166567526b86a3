"""The statement's JSON shape (the CSV is written from it)."""

from typing import Any

from rest_framework import serializers

from wallet.statements.http.params import figures_serializer
from wallet.statements.selectors import Statement, StatementLine

Figures = figures_serializer()


class StatementLineOutputSerializer(serializers.Serializer[StatementLine]):
    entry_id = serializers.IntegerField(source="entry.entry_id")
    journal_id = serializers.UUIDField(source="entry.journal_id")
    transaction_id = serializers.UUIDField(
        source="entry.transaction_id",
        allow_null=True,
        help_text="The deposit or withdrawal (or correction) that caused it.",
    )
    type = serializers.CharField(source="entry.type", help_text="The journal kind, e.g. deposit_credit.")
    description = serializers.CharField(source="entry.description")
    account = serializers.CharField(source="entry.figure", help_text="Which figure it moves: available, ...")
    amount = serializers.IntegerField(source="entry.amount", help_text="Signed minor units.")
    currency = serializers.CharField(source="entry.currency")
    effective_at = serializers.DateTimeField(
        source="entry.effective_at", help_text="When it took effect: what places it in the period."
    )
    recorded_at = serializers.DateTimeField(
        source="entry.recorded_at", help_text="When it was recorded; later than effective_at if it came late."
    )
    running_balance = Figures(source="running", help_text="Every figure of the balance after this entry.")


class StatementOutputSerializer(serializers.Serializer[Statement]):
    user_id = serializers.UUIDField()
    currency = serializers.CharField()
    from_ = serializers.DateTimeField(source="start", help_text="Included.")
    to = serializers.DateTimeField(source="end", help_text="Excluded.")
    generated_at = serializers.DateTimeField(
        help_text="When this statement was produced; entries recorded later are not in it."
    )
    opening_balance = Figures(source="opening", help_text="As of `from`.")
    closing_balance = Figures(source="closing", help_text="As of `to`.")
    entries = StatementLineOutputSerializer(
        source="lines", many=True, help_text="In the order they took effect."
    )

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        return {("from" if name == "from_" else name): field for name, field in fields.items()}
