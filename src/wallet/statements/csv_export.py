"""A statement as CSV: one table, the opening balance first and the closing balance last.

Every text cell that a spreadsheet would run as a formula (leading = + - @ TAB CR) is prefixed with a
quote, so it shows as text. Amounts are integer minor units, with the currency in its own column.
"""

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell that cannot run as a formula; numbers and empty cells pass through unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def statement_csv(statement: Mapping[str, Any]) -> str:
    """The CSV text of a serialized statement (the JSON shape of StatementOutputSerializer)."""
    figures = list(statement["opening_balance"])
    header = [
        "row",
        "effective_at",
        "recorded_at",
        "entry_id",
        "transaction_id",
        "type",
        "description",
        "account",
        "amount",
        "currency",
        *(f"running_{name}" for name in figures),
    ]

    def balance_row(row: str, at: str, description: str, balance: Mapping[str, int]) -> list[Any]:
        return [row, at, "", "", "", "", description, "", "", statement["currency"]] + [
            balance[name] for name in figures
        ]

    rows: list[list[Any]] = [
        balance_row("opening_balance", statement["from"], "Opening balance", statement["opening_balance"])
    ]
    for entry in statement["entries"]:
        rows.append(
            [
                "entry",
                entry["effective_at"],
                entry["recorded_at"],
                entry["entry_id"],
                entry["transaction_id"] or "",
                entry["type"],
                entry["description"],
                entry["account"],
                entry["amount"],
                entry["currency"],
                *(entry["running_balance"][name] for name in figures),
            ]
        )
    rows.append(
        balance_row("closing_balance", statement["to"], "Closing balance", statement["closing_balance"])
    )
    return _write([header, *rows])


def _write(rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
    return out.getvalue()
