"""A bank test with reads, after Jepsen's bank workload (issue #8; reliability note R3).

Jepsen's bank test moves money between accounts while other clients read every balance, and requires every
read to sum to the conserved total with no negative and no missing balance. The wallet has no transfers
between users; its movements are deposit credits (Revio clearing -> available), reservations (available ->
reserved), releases (reserved -> available), settlements (reserved -> clearing) and returns (clearing ->
available), every one a journal whose entries sum to zero. So the conserved total is the ledger's: at every
instant all entries sum to 0, and what users hold equals what the clearing account owes them:
    sum over users of (available + reserved) + clearing + corrections = 0.

Writers run real money movements through the services against the real sandbox: deposits (purchase paid at
Revio, read back, applied), withdrawals (reserved, paid out through Revio) that then succeed, fail, or succeed
and come back from the bank. Readers read concurrently:
- consistent readers: all balances in one snapshot (a REPEATABLE READ transaction, or one SELECT statement).
  Each read must satisfy the conservation law, show every wallet (none missing), none negative, each balance
  equal to its own entries, and each reserved amount equal to the user's withdrawals in flight.
- product-path readers: the balance selector with the cache (what GET /api/v1/balance serves), user by user,
  and the endpoint itself. Not atomic across users, so per user only: never negative, never missing, and the
  (available, reserved) pair must be a state that user's ledger actually passed through (no torn read).
"""

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.testing import proof_size
from wallet.ledger.errors import InsufficientFundsError
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get, ledger_problems
from wallet.reconciliation.invariants import reserved_problems
from wallet.revio.client import get_client
from wallet.revio.contracts import BankAccount
from wallet.revio.payouts import get_payouts
from wallet.transactions import services
from wallet.transactions.errors import DepositNotStartedError, DepositOutcomeUnknownError
from wallet.transactions.tests.conftest import BANK

pytestmark = pytest.mark.proof

WALLETS = proof_size(8, 16)
WRITERS = proof_size(4, 8)
CONSISTENT_READERS = proof_size(2, 4)
PRODUCT_READERS = proof_size(2, 3)
SECONDS = proof_size(10.0, 120.0)
SEED = 8_2026
AMOUNTS = [1_000, 2_500, 4_000, 7_500, 12_000]


@dataclass
class History:
    """What every thread did and saw (shared; list.append and Counter updates under the lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    operations: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    reads: Counter[str] = field(default_factory=Counter)
    # Product-path reads: (user, available, reserved).
    observed: list[tuple[str, int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def anomaly(self, kind: str, detail: str) -> None:
        with self.lock:
            self.anomalies[kind] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{kind}: {detail}")


# -- writers ----------------------------------------------------------------------------------------------


def _deposit(sandbox: SandboxProcess, owner: User, amount: int) -> str:
    try:
        deposit = services.deposit_create(user_id=owner.id, email=owner.email, amount=amount, currency="ZAR")
    except (DepositNotStartedError, DepositOutcomeUnknownError) as exc:  # Revio slow or refusing: no money
        return f"deposit not started ({exc.code})"
    assert deposit.provider_object_id
    sandbox.control.purchase_pay(deposit.provider_object_id)
    purchase = get_client().purchase_get(deposit.provider_object_id)
    services.deposit_apply_provider_state(
        deposit_id=deposit.id,
        purchase=purchase,
        source="webhook",
    )
    return "deposit"


def _apply_payout(withdrawal: Any) -> None:
    assert withdrawal.provider_object_id
    payout = get_payouts().get(withdrawal.provider_object_id)  # the EFT payment, read back
    services.withdrawal_apply_provider_state(
        withdrawal_id=withdrawal.id,
        payout=payout,
        source="webhook",
    )


def _withdraw(sandbox: SandboxProcess, owner: User, amount: int, ending: str) -> str:
    try:
        withdrawal = services.withdrawal_create(
            user_id=owner.id,
            email=owner.email,
            amount=amount,
            currency="ZAR",
            bank_account=BankAccount(**BANK),
        )
        withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    except InsufficientFundsError:
        return "refused: insufficient funds"
    if withdrawal.status != "processing" or not withdrawal.provider_object_id:
        # Revio's answer was lost (a busy machine): the money stays reserved for reconciliation to settle.
        return "withdrawal, outcome unknown"
    control = sandbox.control
    if ending == "fail":
        control.eft_payment_fail(withdrawal.provider_object_id)
    else:
        control.eft_payment_succeed(withdrawal.provider_object_id)
    _apply_payout(withdrawal)
    if ending == "return":
        control.eft_payment_return(withdrawal.provider_object_id)
        _apply_payout(withdrawal)
    return f"withdrawal, {ending}"


def _writer(
    index: int, sandbox: SandboxProcess, owners: list[User], stop: threading.Event, history: History
) -> None:
    rng = random.Random(SEED + index)
    try:
        while not stop.is_set():
            owner = rng.choice(owners)
            amount = rng.choice(AMOUNTS)
            if rng.random() < 0.4:
                done = _deposit(sandbox, owner, amount)
            else:
                done = _withdraw(sandbox, owner, amount, rng.choice(["succeed", "fail", "return"]))
            with history.lock:
                history.operations[done] += 1
    except Exception as exc:  # noqa: BLE001 - reported and failed on below, with the thread named
        history.errors.append(f"writer {index}: {type(exc).__name__}: {exc}")
    finally:
        connection.close()


# -- readers ----------------------------------------------------------------------------------------------

_SNAPSHOT = """
    WITH user_accounts AS (
        SELECT b.user_id, b.available, b.reserved,
               COALESCE((SELECT SUM(amount) FROM ledger_entries e
                         WHERE e.account_id = b.available_account_id), 0) AS available_entries,
               COALESCE((SELECT SUM(amount) FROM ledger_entries e
                         WHERE e.account_id = b.reserved_account_id), 0) AS reserved_entries,
               COALESCE((SELECT SUM(t.amount) FROM transactions t
                         WHERE t.user_id = b.user_id AND t.type = 'withdrawal'
                           AND t.status IN ('pending', 'processing')), 0) AS in_flight
        FROM balances b WHERE b.user_id::text = ANY(%(users)s)
    )
    SELECT 'user', user_id::text, available, reserved, available_entries, reserved_entries, in_flight
    FROM user_accounts
    UNION ALL
    SELECT 'totals', '',
           (SELECT COALESCE(SUM(available + reserved), 0) FROM balances),
           (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
              JOIN ledger_accounts a ON a.id = e.account_id WHERE a.user_id IS NULL),
           (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries),
           (SELECT COUNT(*) FROM balances WHERE available < 0 OR reserved < 0),
           0
"""


def _check_snapshot(rows: list[tuple[Any, ...]], users: list[str], history: History, style: str) -> None:
    seen = set()
    for kind, user_id, available, reserved, available_entries, reserved_entries, in_flight in rows:
        if kind == "totals":
            # The totals row: users' holdings, platform accounts, all entries, negative balances.
            users_hold, platform = available, reserved
            all_entries, negatives = available_entries, reserved_entries
            if users_hold + platform != 0 or all_entries != 0:
                history.anomaly(
                    "wrong-total", f"{style}: users hold {users_hold}, platform {platform}, all {all_entries}"
                )
            if negatives:
                history.anomaly("negative-value", f"{style}: {negatives} balances below zero")
            continue
        seen.add(user_id)
        if available < 0 or reserved < 0:
            history.anomaly("negative-value", f"{style}: user {user_id}: {available}/{reserved}")
        if (available, reserved) != (available_entries, reserved_entries):
            history.anomaly(
                "balance-not-its-entries",
                f"{style}: user {user_id}: row {available}/{reserved}, "
                f"entries {available_entries}/{reserved_entries}",
            )
        if reserved != in_flight:
            history.anomaly("reserved-not-in-flight", f"{style}: user {user_id}: {reserved} vs {in_flight}")
    for missing in set(users) - seen:
        history.anomaly("nil-balance", f"{style}: user {missing} missing")


def _consistent_reader(index: int, users: list[str], stop: threading.Event, history: History) -> None:
    try:
        while not stop.is_set():
            style = "repeatable read" if index % 2 == 0 else "one statement"
            if style == "repeatable read":
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    cursor.execute(_SNAPSHOT, {"users": users})
                    rows = cursor.fetchall()
            else:  # autocommit: one statement sees one snapshot at READ COMMITTED
                with connection.cursor() as cursor:
                    cursor.execute(_SNAPSHOT, {"users": users})
                    rows = cursor.fetchall()
            _check_snapshot(rows, users, history, style)
            with history.lock:
                history.reads[style] += 1
    except Exception as exc:  # noqa: BLE001
        history.errors.append(f"reader {index}: {type(exc).__name__}: {exc}")
    finally:
        connection.close()


def _product_reader(index: int, owners: list[User], stop: threading.Event, history: History) -> None:
    """Read each wallet the way the product does: the cached selector, and GET /api/v1/balance."""
    clients = {}
    for owner in owners:
        client = APIClient()
        client.force_authenticate(user=owner)  # authentication is tested elsewhere; the balance is read here
        clients[owner.id] = client
    try:
        while not stop.is_set():
            for owner in owners:
                if index % 2 == 0:
                    figures = balance_get(user_id=owner.id, currency="ZAR", cached=True)
                    available, reserved, style = figures.available, figures.reserved, "selector (cached)"
                else:
                    response = clients[owner.id].get("/api/v1/balance")
                    if response.status_code != 200:
                        history.anomaly("read-failed", f"GET /balance answered {response.status_code}")
                        continue
                    body = response.json()
                    available, reserved, style = body["available"], body["reserved"], "GET /api/v1/balance"
                if available is None or reserved is None:
                    history.anomaly("nil-balance", f"{style}: user {owner.id}")
                elif available < 0 or reserved < 0:
                    history.anomaly("negative-value", f"{style}: user {owner.id}: {available}/{reserved}")
                with history.lock:
                    history.reads[style] += 1
                    history.observed.append((str(owner.id), available, reserved))
    except Exception as exc:  # noqa: BLE001
        history.errors.append(f"product reader {index}: {type(exc).__name__}: {exc}")
    finally:
        connection.close()


def _states_passed_through(user_id: str) -> set[tuple[int, int]]:
    """Every (available, reserved) the user's balance held: its journals replayed in commit order.

    One user's movements are serialised by the balance row lock, so their entry ids follow commit order.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.journal_id, MIN(e.id),
                   SUM(CASE WHEN a.kind = 'user_available' THEN e.amount ELSE 0 END),
                   SUM(CASE WHEN a.kind = 'user_reserved' THEN e.amount ELSE 0 END)
            FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
            WHERE a.user_id::text = %s GROUP BY e.journal_id ORDER BY 2
            """,
            [user_id],
        )
        available = reserved = 0
        states = {(0, 0)}
        for _journal, _first, available_change, reserved_change in cursor.fetchall():
            available += available_change
            reserved += reserved_change
            states.add((available, reserved))
    return states


@pytest.mark.django_db(transaction=True)
def test_every_read_sums_to_the_conserved_total_while_money_moves(
    revio: SandboxProcess, settings: Any, report_figure: Callable[[str], None]
) -> None:
    # Risk limits and the money-write rate limit have tests of their own: here the ledger decides.
    settings.REVIO_READ_TIMEOUT = 10.0  # a slow answer on a busy machine is not what this test is about
    settings.WITHDRAWAL_MAX_OPEN = 10_000
    settings.WITHDRAWAL_DAILY_MAX_AMOUNT = 10**12
    tag = uuid.uuid4().hex[:8]
    owners = [
        User.objects.create_user(email=f"bank-{tag}-{i}@example.com", password="not used")
        for i in range(WALLETS)
    ]
    for owner in owners:  # every wallet exists and holds money before the readers start
        assert _deposit(revio, owner, 20_000) == "deposit"
    users = [str(owner.id) for owner in owners]

    history = History()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(i, revio, owners, stop, history)) for i in range(WRITERS)
    ]
    threads += [
        threading.Thread(target=_consistent_reader, args=(i, users, stop, history))
        for i in range(CONSISTENT_READERS)
    ]
    threads += [
        threading.Thread(target=_product_reader, args=(i, owners, stop, history))
        for i in range(PRODUCT_READERS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads)
    assert history.errors == []

    # Product-path reads: each must be a state that wallet's ledger really passed through.
    passed_through = {user: _states_passed_through(user) for user in users}
    for user, available, reserved in history.observed:
        if (available, reserved) not in passed_through[user]:
            history.anomaly("torn-read", f"user {user}: {available}/{reserved} was never the balance")

    # After the run: the books, and one last consistent read.
    assert ledger_problems() == []
    assert reserved_problems() == []
    final = History()
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT, {"users": users})
        _check_snapshot(cursor.fetchall(), users, final, "final")
    assert final.anomalies == Counter()

    movements = (
        Journal.objects.filter(entries__account__user__in=owners).distinct().count()
    )  # journals that moved these wallets' money, the initial deposits included
    writes = sum(n for op, n in history.operations.items() if op == "deposit" or op.startswith("withdrawal,"))
    consistent = history.reads["repeatable read"] + history.reads["one statement"]
    product = sum(history.reads.values()) - consistent
    anomalies = sum(history.anomalies.values())
    assert anomalies == 0, history.examples
    assert writes > 0
    assert consistent > 0
    assert product > 0
    report_figure(
        f"bank test: {WALLETS} wallets, {WRITERS} writers, {CONSISTENT_READERS + PRODUCT_READERS} readers, "
        f"{writes:,} money operations ({movements:,} journals, "
        f"{history.operations['refused: insufficient funds']:,} refused for funds), "
        f"{consistent:,} consistent reads, {product:,} per-user reads (selector + API), "
        f"anomalies {anomalies} ({elapsed:.0f} s)"
    )


def test_the_checker_reports_each_kind_of_anomaly() -> None:
    """The checker above can fail: a wrong total, a negative, a missing wallet and a torn balance are seen."""
    history = History()
    users = ["a", "b"]
    rows = [
        ("user", "a", 5, -1, 5, -1, -1),  # negative reserved
        ("user", "b", 7, 0, 6, 0, 0),  # the row says 7, its entries 6
        ("totals", "", 100, -99, 0, 0, 0),  # users hold 100, the platform owes 99
    ]
    _check_snapshot(rows, users, history, "crafted")
    assert set(history.anomalies) == {"negative-value", "balance-not-its-entries", "wrong-total"}
    _check_snapshot([("totals", "", 0, 0, 1, 1, 0)], users, history, "crafted")
    assert history.anomalies["nil-balance"] == 2
    assert history.anomalies["wrong-total"] == 2
    assert history.anomalies["negative-value"] == 2
