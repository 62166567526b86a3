"""Serializer fields stricter than DRF's defaults, for money."""

from typing import Any

from rest_framework import serializers


class MinorUnitsField(serializers.IntegerField):
    """An amount in minor units: a JSON integer, nothing else.

    DRF's IntegerField accepts "100", 100.0 and true; an amount of money must not be guessed from those.
    """

    default_error_messages = {
        "not_integer": "Must be a whole number of minor units (cents), e.g. 15000 for R 150.00.",
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_integer")
        return int(super().to_internal_value(data))
