"""Statements reconcile to the ledger, for random histories with late entries, and under concurrent writes.

For every history: opening == as-of at `from`, closing == as-of at `to`, the entries' sum == closing -
opening per figure, the last running balance == closing, and every entry effective in [from, to) (and no
other) is listed, once. As-of balances are also checked against a model of the history kept by the test,
and the as-of balance after everything against the cached balance row.
"""

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wallet.accounts.models import User
from wallet.core.db import run_in_retrying_transaction
from wallet.core.testing import proof_size
from wallet.ledger import services as ledger
from wallet.ledger.models import Entry
from wallet.ledger.selectors import balance_as_of, balance_get, ledger_problems
from wallet.statements.selectors import StatementInconsistentError, statement_get

CURRENCY = "ZAR"

# One step of a history: (operation, amount, how many seconds before now it took effect).
STEP = st.tuples(
    st.sampled_from(["deposit", "deposit", "reserve", "release", "settle", "return", "correction"]),
    st.integers(min_value=1, max_value=50_000),
    st.one_of(st.just(0), st.integers(min_value=0, max_value=7 * 24 * 3600)),
)


class History:
    """Posts movements through the ledger's services and remembers (figure, amount, effective_at)."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.moves: list[tuple[str, int, datetime]] = []
        self.reserved: list[tuple[uuid.UUID, int]] = []
        self.settled: list[tuple[uuid.UUID, int]] = []
        ledger.balance_ensure(user_id=user.id, currency=CURRENCY)

    def _in_txn(self, fn: Any) -> Any:
        def run() -> Any:
            return fn(ledger.balance_lock(user_id=self.user.id, currency=CURRENCY))

        key = ledger.balance_lock_key(user_id=self.user.id, currency=CURRENCY)
        return run_in_retrying_transaction(run, lock_keys=[key])

    def _record(self, journal: Any) -> None:
        for entry in journal.entries.select_related("account"):
            if entry.account.user_id == self.user.id:
                figure = "available" if entry.account.kind == "user_available" else "reserved"
                self.moves.append((figure, entry.amount, entry.effective_at))

    def step(self, op: str, amount: int, late_seconds: int) -> None:
        effective = timezone.now() - timedelta(seconds=late_seconds)
        balance = balance_get(user_id=self.user.id, currency=CURRENCY)
        txn = uuid.uuid4()
        if op == "deposit":
            journal = self._in_txn(
                lambda b: ledger.deposit_credit(
                    balance=b, amount=amount, transaction_id=txn, effective_at=effective
                )
            )
        elif op == "reserve" and balance.available >= amount:
            journal = self._in_txn(
                lambda b: ledger.withdrawal_reserve(balance=b, amount=amount, transaction_id=txn)
            )
            self.reserved.append((txn, amount))
        elif op in ("release", "settle") and self.reserved:
            txn, held = self.reserved.pop(0)
            post = ledger.withdrawal_release if op == "release" else ledger.withdrawal_settle
            journal = self._in_txn(lambda b: post(balance=b, amount=held, transaction_id=txn))
            if op == "settle":
                self.settled.append((txn, held))
        elif op == "return" and self.settled:
            txn, paid = self.settled.pop(0)
            journal = self._in_txn(
                lambda b: ledger.withdrawal_return(
                    balance=b,
                    amount=paid,
                    transaction_id=txn,
                    reason="=account closed",
                    effective_at=effective,
                )
            )
        elif op == "correction":
            signed = amount if balance.available < amount else -amount
            journal = self._in_txn(
                lambda b: ledger.correction_post(
                    balance=b, amount=signed, correction_id=txn, memo="+fix", effective_at=effective
                )
            )
        else:
            return
        self._record(journal)

    def as_of(self, instant: datetime) -> dict[str, int]:
        totals = {"available": 0, "reserved": 0, "debt": 0}
        for figure, amount, effective in self.moves:
            if effective < instant:
                totals[figure] += amount
        return totals


def _figures(figures: Any) -> dict[str, int]:
    return {"available": figures.available, "reserved": figures.reserved, "debt": figures.debt}


def assert_reconciles(history: History, start: datetime, end: datetime) -> None:
    user_id = history.user.id
    statement = statement_get(user_id=user_id, currency=CURRENCY, start=start, end=end, now=timezone.now())
    opening = _figures(balance_as_of(user_id=user_id, currency=CURRENCY, as_of=start))
    closing = _figures(balance_as_of(user_id=user_id, currency=CURRENCY, as_of=end))
    assert statement.opening == opening == history.as_of(start)
    assert statement.closing == closing == history.as_of(end)
    for figure in ("available", "reserved"):
        moved = sum(line.entry.amount for line in statement.lines if line.entry.figure == figure)
        assert moved == closing[figure] - opening[figure]
    if statement.lines:
        assert statement.lines[-1].running == closing
    effective = [line.entry.effective_at for line in statement.lines]
    assert effective == sorted(effective)
    assert all(start <= at < end for at in effective)  # half-open: from included, to excluded
    expected_ids = set(
        Entry.objects.filter(
            account__user_id=user_id, effective_at__gte=start, effective_at__lt=end
        ).values_list("id", flat=True)
    )
    listed = [line.entry.entry_id for line in statement.lines]
    assert len(listed) == len(set(listed))
    assert set(listed) == expected_ids


@pytest.mark.django_db
@settings(
    max_examples=proof_size(default=25, slow=300),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=st.lists(STEP, min_size=1, max_size=14),
    cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=4),
)
def test_statements_reconcile_to_the_ledger_for_random_histories(
    steps: list[tuple[str, int, int]], cuts: list[tuple[int, int]]
) -> None:
    user = User.objects.create(email=f"history-{uuid.uuid4().hex}@example.com")
    history = History(user)
    for op, amount, late in steps:
        history.step(op, amount, late)
    moments = sorted({at for _, _, at in history.moves})
    # Candidate boundaries: the entries' own instants (boundaries fall exactly on entries) and instants
    # around them, so that periods split histories, including between a late entry and earlier ones.
    candidates = [*moments, *(m + timedelta(microseconds=1) for m in moments)]
    if moments:
        candidates += [moments[0] - timedelta(days=1), moments[-1] + timedelta(seconds=1)]
    else:
        candidates += [timezone.now() - timedelta(days=1), timezone.now()]
    for a, b in cuts:
        start, end = sorted((candidates[a % len(candidates)], candidates[b % len(candidates)]))
        if start == end:
            end = start + timedelta(seconds=1)
        assert_reconciles(history, start, end)
    # After everything, the as-of balance is the live one.
    after = timezone.now() + timedelta(seconds=1)
    live = balance_get(user_id=user.id, currency=CURRENCY)
    assert _figures(balance_as_of(user_id=user.id, currency=CURRENCY, as_of=after)) == _figures(live)
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_late_entry_lands_in_the_period_it_took_effect_in(make_user: Any) -> None:
    user = make_user()
    history = History(user)
    now = timezone.now()
    history.step("deposit", 7_000, 0)  # recorded and effective now
    history.step("deposit", 3_000, 2 * 24 * 3600)  # recorded now, effective two days ago
    earlier = statement_get(
        user_id=user.id,
        currency=CURRENCY,
        start=now - timedelta(days=3),
        end=now - timedelta(days=1),
        now=now,
    )
    assert [line.entry.amount for line in earlier.lines] == [3_000]
    assert earlier.opening == {"available": 0, "reserved": 0, "debt": 0}
    assert earlier.closing == {"available": 3_000, "reserved": 0, "debt": 0}
    line = earlier.lines[0].entry
    assert line.recorded_at - line.effective_at >= timedelta(days=2) - timedelta(seconds=5)
    later = statement_get(
        user_id=user.id,
        currency=CURRENCY,
        start=now - timedelta(days=1),
        end=timezone.now() + timedelta(seconds=1),
        now=now,
    )
    assert [line.entry.amount for line in later.lines] == [7_000]
    assert later.opening == earlier.closing
    assert later.closing == {"available": 10_000, "reserved": 0, "debt": 0}


@pytest.mark.django_db(transaction=True)
def test_as_of_reads_and_statements_are_one_snapshot_during_concurrent_writes(make_user: Any) -> None:
    """Writers move money between available and reserved (the total stays put) while readers read."""
    user = make_user()
    history = History(user)
    history.step("deposit", 1_000_000, 0)
    start = timezone.now() - timedelta(days=1)
    total = 1_000_000
    stop = threading.Event()
    failures: list[str] = []
    reads = {"as_of": 0, "statements": 0}

    def writer() -> None:
        try:
            while not stop.is_set():
                txn = uuid.uuid4()
                for post in (ledger.withdrawal_reserve, ledger.withdrawal_release):
                    history._in_txn(
                        lambda b, post=post, txn=txn: post(balance=b, amount=1_000, transaction_id=txn)
                    )
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"writer: {exc!r}")
        finally:
            connection.close()

    def reader() -> None:
        try:
            for _ in range(proof_size(default=60, slow=600)):
                figures = balance_as_of(user_id=user.id, currency=CURRENCY, as_of=timezone.now())
                if figures.available + figures.reserved != total:
                    failures.append(f"as-of read mixed two moments: {figures}")
                reads["as_of"] += 1
                try:
                    statement = statement_get(
                        user_id=user.id,
                        currency=CURRENCY,
                        start=start,
                        end=timezone.now(),
                        now=timezone.now(),
                    )
                except StatementInconsistentError as exc:
                    failures.append(f"statement: {exc}")
                    continue
                if sum(statement.closing.values()) != total:
                    failures.append(f"statement closing mixed two moments: {statement.closing}")
                reads["statements"] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"reader: {exc!r}")
        finally:
            connection.close()

    writers = [threading.Thread(target=writer) for _ in range(2)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=120)
    stop.set()
    for thread in writers:
        thread.join(timeout=60)
    assert failures == []
    assert reads["statements"] >= 2 * proof_size(default=60, slow=600)
    written = Entry.objects.filter(account__user_id=user.id).count()
    assert written > 4  # the writers did write while the readers read
    assert ledger_problems() == []
