"""Risk limits hold under concurrency: many simultaneous withdrawals of one user cannot pass a limit together.

The reservation runs at READ COMMITTED (docs/adr/0003, amendment): the limits' reads are safe only because
every writer of a user's withdrawals holds the balance's advisory lock. These tests would fail if a path
wrote withdrawals without it, or if the limit were read before the lock.
"""

import json
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.revio.contracts import BankAccount, Payout, PayoutOutcome
from wallet.transactions import services
from wallet.transactions.errors import WithdrawalLimitError
from wallet.transactions.models import Transaction, TransactionType
from wallet.transactions.tests.conftest import BANK

pytestmark = pytest.mark.django_db(transaction=True)


def _race(user: User, *, attempts: int, amount: int) -> list[str]:
    outcomes: list[str] = []
    barrier = threading.Barrier(attempts)

    def withdraw() -> None:
        try:
            barrier.wait()
            services.withdrawal_create(
                user_id=user.id,
                email=user.email,
                amount=amount,
                currency="ZAR",
                bank_account=BankAccount(**BANK),
            )
            outcomes.append("accepted")
        except WithdrawalLimitError as exc:
            outcomes.append(f"limit:{exc.details['limit']}")
        finally:
            connection.close()

    threads = [threading.Thread(target=withdraw) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_withdrawals_cannot_pass_the_daily_limit_together(
    make_user: Callable[..., User],
    fund: Callable[[User, int], Transaction],
    settings: Any,
    report_figure: Callable[[str], None],
) -> None:
    settings.WITHDRAWAL_DAILY_MAX_AMOUNT = 5_000
    settings.WITHDRAWAL_MAX_OPEN = 100
    user = make_user()
    fund(user, 50_000)

    outcomes = _race(user, attempts=20, amount=1_000)

    assert outcomes.count("accepted") == 5
    assert outcomes.count("limit:daily_amount") == 15
    withdrawn = Transaction.objects.filter(user=user, type=TransactionType.WITHDRAWAL)
    assert sum(withdrawn.values_list("amount", flat=True)) == 5_000
    figures = balance_get(user_id=user.id, currency="ZAR")
    assert (figures.available, figures.reserved) == (45_000, 5_000)
    report_figure(
        f"concurrent withdrawals against a daily limit of 5,000: 20 tried, "
        f"{outcomes.count('accepted')} accepted, withdrawn {sum(withdrawn.values_list('amount', flat=True))}"
    )


def test_concurrent_withdrawals_cannot_pass_the_open_withdrawals_limit_together(
    make_user: Callable[..., User], fund: Callable[[User, int], Transaction], settings: Any
) -> None:
    settings.WITHDRAWAL_MAX_OPEN = 3
    user = make_user()
    fund(user, 50_000)

    outcomes = _race(user, attempts=20, amount=1_000)

    assert outcomes.count("accepted") == 3
    assert outcomes.count("limit:max_open") == 17
    assert Transaction.objects.filter(user=user, type=TransactionType.WITHDRAWAL).count() == 3


def test_acceptance_without_the_balance_lock_still_applies_once(
    make_user: Callable[..., User], fund: Callable[[User, int], Transaction], settings: Any
) -> None:
    """Revio's acceptance locks only the withdrawal's row: ten concurrent applications record one change."""
    from wallet.transactions.models import TransactionEvent

    user = make_user()
    fund(user, 5_000)
    withdrawal = Transaction.objects.create(
        id=uuid.uuid4(), user=user, type=TransactionType.WITHDRAWAL, amount=1_000, currency="ZAR"
    )
    results: list[str] = []
    barrier = threading.Barrier(10)

    def accept() -> None:
        try:
            barrier.wait()
            results.append(
                services.withdrawal_apply_provider_state(
                    withdrawal_id=withdrawal.id,
                    payout=Payout(
                        id="payout-1",
                        status="created",
                        outcome=PayoutOutcome.ACCEPTED,
                        amount=1_000,
                        currency="ZAR",
                        reference=str(withdrawal.id),
                        updated_on=0,
                        is_test=False,
                    ),
                    source=TransactionEvent.Source.WEBHOOK,
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["changed"] + ["unchanged"] * 9
    withdrawal.refresh_from_db()
    assert withdrawal.status == "processing"
    assert withdrawal.events.filter(to_status="processing").count() == 1


@pytest.mark.django_db
def test_the_limits_read_only_open_and_recent_withdrawals_however_long_the_history(user: User) -> None:
    # Under the balance lock, the risk limits must not scan a user's whole history: with 3,000 settled
    # withdrawals older than a day and two open ones, the statement reads a handful of rows.
    old = timezone.now() - timedelta(days=30)
    Transaction.objects.bulk_create(
        Transaction(
            user_id=user.id,
            type="withdrawal",
            status="completed",
            amount=100,
            currency="ZAR",
            created_at=old,
            updated_at=old,
        )
        for _ in range(3_000)
    )
    Transaction.objects.bulk_create(
        Transaction(user_id=user.id, type="withdrawal", status=status, amount=700, currency="ZAR")
        for status in ("pending", "processing")
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transactions")
    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        services.check_withdrawal_limits(user_id=user.id, currency="ZAR", amount=100, now=timezone.now())
    ((sql, params),) = [c for c in captured if "COUNT" in c[0]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0][0]["Plan"]

    def rows_read(node: dict[str, Any]) -> int:
        own = (
            node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            if "Relation Name" in node
            else 0
        )
        return own + sum(rows_read(child) for child in node.get("Plans", []))

    assert rows_read(plan) <= 10, json.dumps(plan)[:2000]
