"""Query parameters for instants and periods: ISO 8601 with an offset, not in the future.

An instant without an offset (naive) is refused rather than guessed: the same digits name different
instants in different time zones, and a balance "as of" the wrong one is a wrong answer, not an error.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from wallet.ledger import public as ledger

# How far past our clock an instant may be (a client's clock a little ahead); beyond it, 400.
FUTURE_SKEW = timedelta(minutes=5)
MAX_STATEMENT_PERIOD = timedelta(days=366)


class InstantField(serializers.DateTimeField):
    """An ISO 8601 timestamp with a UTC offset (Z or ±hh:mm), at most FUTURE_SKEW after now; as UTC."""

    default_error_messages = {
        "unparseable": (
            "Must be an ISO 8601 timestamp with an offset, e.g. 2026-12-01T00:00:00Z "
            "(in a URL, write + as %2B)."
        ),
        "naive": "Must carry a UTC offset (Z or ±hh:mm): a timestamp without one names no single instant.",
        "future": "Must not be in the future.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 64:
            self.fail("unparseable")
        try:
            # Upper case: RFC 3339 allows a lower-case t and z, fromisoformat does not.
            parsed = datetime.fromisoformat(value.strip().upper())
        except ValueError:
            self.fail("unparseable")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive")
        try:
            instant = parsed.astimezone(UTC)
        except (OverflowError, ValueError):  # e.g. year 1 with a positive offset
            self.fail("unparseable")
        if instant > timezone.now() + FUTURE_SKEW:
            self.fail("future")
        return instant


class BalanceQuerySerializer(serializers.Serializer[Any]):
    as_of = InstantField(
        required=False,
        help_text=(
            "The balance as it stood at this instant (ISO 8601 with an offset), summed from the ledger "
            "entries that took effect before it. Without it: the balance now."
        ),
    )


class StatementQuerySerializer(serializers.Serializer[Any]):
    # "from" is a Python keyword: the field is declared under another name and renamed below.
    from_ = InstantField(help_text="Start of the period, included (ISO 8601 with an offset).")
    to = InstantField(help_text="End of the period, excluded (ISO 8601 with an offset).")
    format = serializers.ChoiceField(
        choices=("json", "csv"),
        required=False,
        help_text="json (default) or csv; `Accept: text/csv` also selects CSV.",
    )

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs["from"], attrs["to"]
        if start >= end:
            raise serializers.ValidationError({"to": ["Must be after `from`."]})
        if end - start > MAX_STATEMENT_PERIOD:
            raise serializers.ValidationError(
                {"to": [f"A statement covers at most {MAX_STATEMENT_PERIOD.days} days."]}
            )
        return attrs


def figures_serializer() -> type[serializers.Serializer[Any]]:
    """{available, reserved, ...}: one integer per figure of the balance (ledger.BALANCE_FIGURES)."""
    fields = {
        name: serializers.IntegerField(help_text=f"Minor units, {name}.") for name in ledger.BALANCE_FIGURES
    }
    return type("StatementFiguresSerializer", (serializers.Serializer,), fields)
