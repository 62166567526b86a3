"""Money-moving transactions: queued on advisory locks, retried as a whole on conflicts.

Row locks (SELECT ... FOR UPDATE) serialise movements on one balance. Most movements run at READ COMMITTED,
every read they make covered by their locks (docs/adr/0003, "Amendment"); a movement that reads rows its
locks do not cover (four-eyes adjustments) asks for SERIALIZABLE, and PostgreSQL then aborts one of two
conflicting transactions (SQLSTATE 40001). A deadlock (40P01) aborts one too; both are safe to run again
from the start, so the whole function is retried a bounded number of times.

Queueing before the snapshot: a SERIALIZABLE transaction takes its snapshot at its first statement. If it
then waits on a row lock held by another transaction that updates the row and commits, PostgreSQL must
abort the waiter (40001), so on a busy balance every waiter fails and retries. Callers therefore name the
balances they will lock (`lock_keys`), and contenders queue on PostgreSQL advisory locks for those keys,
taken in sorted order *before* the transaction starts. The row lock stays the guard; the advisory lock only
makes waiting cheap. Advisory locks are session locks, released in `finally` (and by PostgreSQL if the
connection drops), so this needs session pooling, not PgBouncer's transaction mode (docs/adr/0003).
"""

import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from django.db import DatabaseError, connection, connections, router, transaction
from django.db.models import Field, Model

from wallet.core import metrics
from wallet.core.errors import ApplicationError

logger = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=Model)

RETRYABLE_SQLSTATES = {"40001": "serialization_failure", "40P01": "deadlock_detected"}


class TransactionConflictError(ApplicationError):
    """Raised when a money-moving transaction kept conflicting with others and was given up; safe to retry."""

    code = "transaction_conflict"
    http_status = 503
    default_message = "The system is busy with other changes to this balance; retry in a moment."


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, derived from a name such as 'balance:<user>:ZAR'."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _queued_on(lock_keys: Sequence[str]) -> Iterator[None]:
    if not lock_keys or connection.in_atomic_block:
        yield
        return
    keys = sorted({advisory_key(name) for name in lock_keys})  # one fixed order: no deadlocks between them
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for key in reversed(keys):
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


SERIALIZABLE = "SERIALIZABLE"
# For movements whose every read is of rows that only writers holding the same advisory lock (and the row
# lock) change: the locks alone serialise them, and READ COMMITTED takes no predicate locks, so there are no
# false 40001 conflicts between different users' movements (docs/adr/0003, "Amendment").
READ_COMMITTED = "READ COMMITTED"


def run_in_retrying_transaction(
    fn: Callable[[], T],
    *,
    lock_keys: Sequence[str] = (),
    attempts: int = 5,
    isolation: str = SERIALIZABLE,
) -> T:
    """Run `fn` in one durable transaction at `isolation`, queued on `lock_keys`, retrying on 40001/40P01.

    `isolation=READ_COMMITTED` is for callers whose reads are all covered by `lock_keys` and row locks;
    the default, SERIALIZABLE, for those that read anything else. Balance movements go through
    wallet.ledger's balance_movement, which calls this.

    `lock_keys` names the rows `fn` will lock (see the module docstring); contenders queue on them first.
    `fn` must have no side effects outside the database (enqueue with transaction.on_commit instead), since
    it may run more than once.

    :raises TransactionConflictError: still conflicting after `attempts` tries.
    """
    if isolation not in {SERIALIZABLE, READ_COMMITTED}:
        raise ValueError(f"unsupported isolation level {isolation!r}")
    with _queued_on(lock_keys):
        return _run_with_retries(fn, attempts=attempts, isolation=isolation)


def _run_with_retries(fn: Callable[[], T], *, attempts: int, isolation: str = SERIALIZABLE) -> T:
    for attempt in range(1, attempts + 1):
        # Only the outermost transaction can choose its isolation level; inside a test's transaction the
        # surrounding block decides.
        outermost = not connection.in_atomic_block
        try:
            with transaction.atomic(durable=outermost):
                if outermost and isolation != READ_COMMITTED:
                    # READ COMMITTED is the connection's default: no statement needed for it.
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
                return fn()
        except DatabaseError as exc:
            reason = RETRYABLE_SQLSTATES.get(_sqlstate(exc) or "")
            if reason is None or not outermost:
                raise
            metrics.increment(f"db_{reason}_retries")
            if attempt == attempts:
                metrics.increment("db_conflicts_given_up")
                logger.error("transaction gave up after %d attempts (%s)", attempts, reason)
                raise TransactionConflictError() from exc
            logger.info("transaction retry %d after %s", attempt, reason)
            # Jittered exponential backoff so the conflicting transactions do not collide again in step.
            time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")  # pragma: no cover


def insert_if_absent(instance: Model) -> bool:
    """INSERT the instance unless a unique constraint already holds such a row; True if it was inserted.

    One statement (INSERT ... ON CONFLICT DO NOTHING RETURNING the key), where `save()` inside a savepoint
    costs three and raises on a conflict, and `bulk_create(ignore_conflicts=True)` cannot say whether the
    row went in. A conflict leaves the caller's transaction usable. Field defaults and `pre_save` (auto_now)
    apply as for `save()`; the instance gets its primary key and counts as saved.
    """
    meta = instance._meta
    alias = router.db_for_write(type(instance))
    target = connections[alias]
    # A serial primary key left unset is the database's to fill.
    fields = [
        field
        for field in meta.concrete_fields
        if not (field.primary_key and getattr(instance, field.attname) is None)
    ]
    values = [field.get_db_prep_save(field.pre_save(instance, add=True), target) for field in fields]
    quote = target.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING {}".format(  # noqa: S608  # nosec B608
        quote(meta.db_table),
        ", ".join(quote(str(field.column)) for field in fields),
        ", ".join(["%s"] * len(fields)),
        quote(str(meta.pk.column)),
    )
    with target.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    setattr(instance, meta.pk.attname, row[0])
    instance._state.adding = False
    instance._state.db = alias
    return True


@functools.cache
def _row_shape(model: type[Model]) -> tuple[str, tuple[str, ...]]:
    fields = model._meta.concrete_fields
    return ", ".join(f'"{field.column}"' for field in fields), tuple(field.attname for field in fields)


def model_columns(model: type[Model]) -> str:
    """The quoted columns of every concrete field, in the order `model_from_row` reads them back."""
    return _row_shape(model)[0]


def model_from_row(model: type[M], row: Sequence[Any], *, alias: str) -> M:
    """An instance from a row of `model_columns(model)`, as the ORM would load it from database `alias`."""
    return model.from_db(alias, _row_shape(model)[1], row)


def select_one(model: type[M], **lookup: Any) -> M | None:
    """The row of `model` whose fields equal `lookup` (fields that name at most one row), or None.

    For the hottest reads (the user of every authenticated request, an Idempotency-Key's record): the ORM
    spends more CPU building such a SELECT than PostgreSQL spends answering it, so this is one fixed
    statement (ADR 0008).
    """
    alias = router.db_for_read(model)
    target = connections[alias]
    meta = model._meta
    fields = [cast(Field[Any, Any], meta.get_field(name)) for name in lookup]
    where = " AND ".join(f"{target.ops.quote_name(str(field.column))} = %s" for field in fields)
    params = [
        field.get_db_prep_value(value, target) for field, value in zip(fields, lookup.values(), strict=True)
    ]
    sql = f"SELECT {model_columns(model)} FROM {target.ops.quote_name(meta.db_table)} WHERE {where}"  # noqa: S608  # nosec B608
    with target.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else model_from_row(model, row, alias=alias)
