"""Statements: a period of a user's ledger, read in one snapshot of the database.

A statement covers the half-open period [start, end): an entry belongs to it when it took effect at or
after `start` and before `end` (docs/adr/0011-statement-dates.md). Its opening balance is the as-of
balance at `start`, its closing balance the as-of balance at `end`, and each line carries the running
balance after its entry; the three reads share one snapshot, so they agree even while money moves.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import connections, transaction

from wallet.ledger import public as ledger


@dataclass(frozen=True)
class StatementLine:
    entry: ledger.StatementEntry
    running: dict[str, int]  # every figure of the balance after this entry


@dataclass(frozen=True)
class Statement:
    user_id: UUID
    currency: str
    start: datetime
    end: datetime
    generated_at: datetime
    opening: dict[str, int]
    closing: dict[str, int]
    lines: list[StatementLine]


class StatementInconsistentError(RuntimeError):
    """The lines do not lead from the opening to the closing balance: a bug, never served."""


@contextmanager
def _one_snapshot() -> Iterator[None]:
    # The database the ledger is read from (a replica, if the router sends these reads there).
    alias = ledger.ledger_read_alias()
    outermost = not connections[alias].in_atomic_block
    with transaction.atomic(using=alias):
        if outermost:
            with connections[alias].cursor() as cursor:
                # One snapshot for every read below; READ ONLY, as a statement writes nothing.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _figures(figures: ledger.BalanceFigures) -> dict[str, int]:
    return {name: int(getattr(figures, name)) for name in ledger.BALANCE_FIGURES}


def statement_get(
    *, user_id: UUID, currency: str, start: datetime, end: datetime, now: datetime
) -> Statement:
    """The user's statement for [start, end) in one currency (start before end; the caller checks)."""
    with _one_snapshot():
        opening = _figures(ledger.balance_as_of(user_id=user_id, currency=currency, as_of=start))
        closing = _figures(ledger.balance_as_of(user_id=user_id, currency=currency, as_of=end))
        entries = ledger.entry_list_effective_between(
            user_id=user_id, currency=currency, start=start, end=end
        )
    running = dict(opening)
    lines = []
    for entry in entries:
        running[entry.figure] += entry.amount
        lines.append(StatementLine(entry=entry, running=dict(running)))
    if running != closing:
        raise StatementInconsistentError(
            f"statement of {user_id} for [{start}, {end}): opening {opening} + entries = {running}, "
            f"but the closing balance is {closing}"
        )
    return Statement(
        user_id=user_id,
        currency=currency,
        start=start,
        end=end,
        generated_at=now,
        opening=opening,
        closing=closing,
        lines=lines,
    )
