"""Concurrency through a running server (issue #8, reliability note R1, R4, R13).

The server is gunicorn (several worker processes, each with threads, as in production and in benchmarks/),
started once for this module against this run's test database, Redis and the session's Revio sandbox. Every
request below is real HTTP from a thread of its own, released together by a barrier; the checks read the
database the server wrote and the sandbox's own record of payouts (EFT payments).

Limits: the per-user money-write rate limit (60/min) and the withdrawal risk limits (5 open, 50,000 a day)
would refuse most of 200 withdrawals by policy before the money logic saw them. They are raised in the
server's environment so that the balance lock, the ledger and the idempotency record are what decide; the
limiter and the risk limits have tests of their own.
"""

import base64
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.db import connection

from conftest import PASSWORD
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.testing import proof_size, unused_port
from wallet.ledger.selectors import balance_get, ledger_problems
from wallet.revio.client import get_client
from wallet.transactions import services
from wallet.transactions.models import Transaction

pytestmark = [pytest.mark.proof, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[4]
WORKERS, THREADS = 3, 4
CLIENT_TIMEOUT = 120.0  # 200 requests queue on 2 cores; a timeout is counted, and must not happen
SEED = 8_2026
BANK = {
    "account_holder": "Thandi Nkosi",
    "account_number": "62001234567",
    "bank_code": "250655",
    "account_type": "current",
}


# --------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    sandbox: SandboxProcess
    webhook_key: rsa.RSAPrivateKey  # pinned as Revio's company key in the server's environment
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.webhook_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(
    django_db_setup: None, revio_sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    test_database = connection.settings_dict["NAME"]  # the test run's database, after its setup
    database_url = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{test_database}"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    port = unused_port()
    folder = tmp_path_factory.mktemp("gunicorn")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST", "DJANGO_", "REVIO_", "WITHDRAWAL_", "RATE_LIMIT_", "WEBHOOK_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",  # same keys (JWT, encryption) as this process
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
        EMAIL_FILE_PATH=str(folder / "emails"),
        REVIO_BASE_URL=revio_sandbox.api_url,
        REVIO_API_KEY=revio_sandbox.api_key,
        REVIO_BRAND_ID=revio_sandbox.brand_id,
        REVIO_READ_TIMEOUT="30",  # a slow sandbox under this load must not turn into unknown outcomes
        # Payouts go through the sandbox's EFT payments API (one OAuth2 token, shared through Redis).
        REVIO_EFT_BASE_URL=revio_sandbox.eft_base_url,
        REVIO_EFT_TOKEN_URL=revio_sandbox.eft_token_url,
        REVIO_EFT_CLIENT_ID=revio_sandbox.eft_credentials()[0],
        REVIO_EFT_CLIENT_SECRET=revio_sandbox.eft_credentials()[1],
        REVIO_PUBLIC_KEY=pem.decode(),
        REVIO_WEBHOOK_PUBLIC_KEY="",
        REVIO_WEBHOOK_ID="",
        # The sandbox's own success_callback deliveries are signed with its key, not the pinned one:
        # send them to a closed port rather than have them refused here.
        PUBLIC_BASE_URL=f"http://127.0.0.1:{unused_port()}",
        # Policy limits raised so the money logic decides (module docstring).
        WITHDRAWAL_MAX_OPEN="1000000",
        WITHDRAWAL_DAILY_MAX_AMOUNT=str(10**12),
        RATE_LIMIT_MONEY_WRITE_USER="1000000/min",
        RATE_LIMIT_REFRESH_IP="1000000/min",
        RATE_LIMIT_LOGIN_IP="1000000/min",
        RATE_LIMIT_LOGIN_ACCOUNT="1000000/min",
        RATE_LIMIT_WEBHOOK_SOURCE="1000000/min",
    )
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "config.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS), "--threads", str(THREADS),
        "--worker-class", "wallet.core.http.gunicorn_worker.QueueTimedThreadWorker",
        "--backlog", "2048", "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning",
    ]  # fmt: skip
    log = folder / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Server(f"http://127.0.0.1:{port}", revio_sandbox, key, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"gunicorn exited:\n{running.output()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{running.url}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"gunicorn did not become ready:\n{running.output()}"
            time.sleep(0.2)
        yield running
    finally:
        _stop(process)


# --------------------------------------------------------------------------------------------------------
# Helpers: funding, bursts, the sandbox's payouts
# --------------------------------------------------------------------------------------------------------


def fund(user: User, amount: int, revio: SandboxProcess) -> None:
    """A real deposit, paid at the sandbox and applied as its webhook would apply it."""
    deposit = services.deposit_create(user_id=user.id, email=user.email, amount=amount, currency="ZAR")
    assert deposit.provider_object_id
    revio.control.purchase_pay(deposit.provider_object_id)
    purchase = get_client().purchase_get(deposit.provider_object_id)
    services.deposit_apply_provider_state(
        deposit_id=deposit.id,
        purchase=purchase,
        source="webhook",
    )


def login(server: Server, user: User) -> dict[str, str]:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token", json={"email": user.email, "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@dataclass
class Outcome:
    status: int | None  # None: no answer (timeout or transport error)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    failure: str = ""

    def code(self) -> str | None:
        try:
            return str(httpx.Response(200, content=self.body).json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return None


Call = Callable[[httpx.Client], httpx.Response]


def burst(calls: list[Call]) -> list[Outcome]:
    """Run every call from a thread of its own, all released at once; outcomes in the calls' order."""
    outcomes: list[Outcome] = [Outcome(status=None, failure="not run")] * len(calls)
    barrier = threading.Barrier(len(calls))
    limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=len(calls))
    with httpx.Client(timeout=CLIENT_TIMEOUT, limits=limits) as client:

        def run(index: int) -> None:
            barrier.wait()
            try:
                response = calls[index](client)
                outcomes[index] = Outcome(response.status_code, response.content, dict(response.headers))
            except httpx.HTTPError as exc:
                outcomes[index] = Outcome(status=None, failure=type(exc).__name__)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes


def withdraw_call(url: str, access: str, amount: int, key: str | None = None) -> Call:
    headers = {"Authorization": f"Bearer {access}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"amount": amount, "bank_account": BANK}
    return lambda client: client.post(f"{url}/api/v1/withdrawals", json=body, headers=headers)


class BalanceWatch:
    """Samples the balance row while a burst runs: the lowest available figure any reader could see."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.lowest: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                available = balance_get(user_id=self.user.id, currency="ZAR").available
                self.lowest = available if self.lowest is None else min(self.lowest, available)
                self.samples += 1
                time.sleep(0.02)
        finally:
            connection.close()

    def __enter__(self) -> "BalanceWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def payouts_by_reference(server: Server, references: list[str]) -> Counter[str]:
    """How many EFT payments the sandbox holds for each contractReference, through its API."""
    counts: Counter[str] = Counter()
    with server.sandbox.eft_client(timeout=30) as client:
        for reference in references:
            response = client.get("v2/payment/eft", params={"contractReference": reference})
            response.raise_for_status()
            counts[reference] = len(response.json()["results"])
    return counts


def sandbox_payout_mark(server: Server) -> int:
    with contextlib.closing(_sandbox_db(server)) as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM eft_payments").fetchone()[0])


def sandbox_payouts_since(server: Server, mark: int) -> list[str]:
    """References of every EFT payment the sandbox created after `mark`, read from its store: a payout
    sent for a withdrawal we do not have (an orphan) would show up here and nowhere else."""
    query = "SELECT contract_reference FROM eft_payments WHERE seq > ?"
    with contextlib.closing(_sandbox_db(server)) as db:
        return [str(row[0]) for row in db.execute(query, (mark,))]


def _sandbox_db(server: Server) -> sqlite3.Connection:
    path = server.sandbox.data_dir / "sandbox.db"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def assert_server_healthy(server: Server) -> None:
    """Still running, still answering, and nothing it logged was an unhandled exception."""
    assert server.process.poll() is None, server.output()
    assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
    assert "Traceback" not in server.log.read_text(errors="replace"), server.output()


def summarise(outcomes: list[Outcome]) -> Counter[str]:
    summary: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.status is None:
            summary["timeouts" if "Timeout" in outcome.failure else "transport errors"] += 1
        elif outcome.status >= 500:
            summary["5xx"] += 1
        else:
            summary[str(outcome.status)] += 1
    return summary


# --------------------------------------------------------------------------------------------------------
# a. 200 concurrent withdrawals on one wallet
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("amounts", ["mixed", "equal"])
def test_concurrent_withdrawals_on_one_wallet_never_overdraw(
    server: Server,
    make_user: Callable[..., User],
    revio: SandboxProcess,
    amounts: str,
    report_figure: Callable[[str], None],
) -> None:
    tries = proof_size(200, 200)
    rng = random.Random(f"{SEED}-{amounts}")
    if amounts == "mixed":
        initial = 300_000
        requested = [rng.randrange(1_000, 9_001) for _ in range(tries)]
    else:
        initial, amount = 61_000, 1_500
        requested = [amount] * tries
    assert sum(requested) > initial  # more is asked for than there is
    user = make_user()
    fund(user, initial, revio)
    access = login(server, user)["access"]
    mark = sandbox_payout_mark(server)

    with BalanceWatch(user) as watch:
        outcomes = burst([withdraw_call(server.url, access, a) for a in requested])

    summary = summarise(outcomes)
    accepted = [(a, o) for a, o in zip(requested, outcomes, strict=True) if o.status == 201]
    refused = [(a, o) for a, o in zip(requested, outcomes, strict=True) if o.status == 409]
    balance = balance_get(user_id=user.id, currency="ZAR")
    withdrawals = list(Transaction.objects.filter(user=user, type="withdrawal"))
    references = [str(w.id) for w in withdrawals]
    payouts = payouts_by_reference(server, references)
    new_payouts = sandbox_payouts_since(server, mark)
    overdrafts = int(balance.available < 0) + int(watch.lowest is not None and watch.lowest < 0)
    report_figure(
        f"concurrent withdrawals (HTTP, gunicorn {WORKERS}x{THREADS}, {tries}, {amounts} amounts): "
        f"accepted {len(accepted)}, refused {len(refused)}, overdrafts {overdrafts}, "
        f"payouts {sum(payouts.values())}, 5xx {summary['5xx']}, timeouts {summary['timeouts']}"
    )

    assert summary["5xx"] == 0, [o for o in outcomes if o.status and o.status >= 500][:3]
    assert summary["timeouts"] == summary["transport errors"] == 0
    assert len(accepted) + len(refused) == tries
    assert {o.code() for _, o in refused} <= {"insufficient_funds"}
    # Nothing overdrawn: at the end, while it ran (sampled), and in total.
    assert overdrafts == 0
    spent = sum(a for a, _ in accepted)
    assert spent <= initial
    assert (balance.available, balance.reserved) == (initial - spent, spent)
    # Nothing refused wrongly: the balance only fell during the burst, so each refusal saw at least what is
    # left now, and it was refused only because it asked for more.
    assert all(a > balance.available for a, _ in refused)
    if amounts == "equal":
        assert len(accepted) == initial // requested[0]
    # One withdrawal, accepted by Revio, and exactly one payout, per 201.
    assert len(withdrawals) == len(accepted)
    assert {w.status for w in withdrawals} <= {"processing"}
    assert payouts == Counter(dict.fromkeys(references, 1))
    assert sorted(new_payouts) == sorted(references)  # no payout for anything else
    assert watch.samples > 0
    assert ledger_problems() == []
    assert_server_healthy(server)


# --------------------------------------------------------------------------------------------------------
# b. Deposit credits (paid webhooks) racing withdrawals
# --------------------------------------------------------------------------------------------------------


def paid_event(server: Server, deposit: Transaction) -> tuple[bytes, str]:
    """Revio's purchase, as its API serves it, delivered as purchase.paid and signed with the pinned key."""
    with server.sandbox.api_client() as client:
        event = client.get(f"purchases/{deposit.provider_object_id}/").raise_for_status().json()
    event["event_type"] = "purchase.paid"
    body = json.dumps(event).encode()
    return body, server.sign(body)


def test_deposit_credits_racing_withdrawals_add_up(
    server: Server,
    make_user: Callable[..., User],
    revio: SandboxProcess,
    report_figure: Callable[[str], None],
) -> None:
    initial, deposit_amount, withdrawal_amount = 20_000, 5_000, 3_000
    deposits_count, withdrawals_count = proof_size(20, 60), proof_size(40, 120)
    user = make_user()
    fund(user, initial, revio)
    access = login(server, user)["access"]
    deposits = []
    for _ in range(deposits_count):
        deposit = services.deposit_create(
            user_id=user.id, email=user.email, amount=deposit_amount, currency="ZAR"
        )
        assert deposit.provider_object_id
        revio.control.purchase_pay(deposit.provider_object_id)
        deposits.append(deposit)
    events = [paid_event(server, deposit) for deposit in deposits]

    def deliver(body: bytes, signature: str) -> Call:
        headers = {"Content-Type": "application/json", "X-Signature": signature}
        return lambda client: client.post(
            f"{server.url}/api/v1/webhooks/revio", content=body, headers=headers
        )

    calls = [deliver(*event) for event in events]
    calls += [withdraw_call(server.url, access, withdrawal_amount) for _ in range(withdrawals_count)]
    order = list(range(len(calls)))
    random.Random(SEED).shuffle(order)  # credits and debits interleaved in the threads' start order
    with BalanceWatch(user) as watch:
        shuffled = burst([calls[i] for i in order])
    outcomes = [Outcome(None)] * len(calls)
    for position, index in enumerate(order):
        outcomes[index] = shuffled[position]
    webhook_outcomes, withdrawal_outcomes = outcomes[:deposits_count], outcomes[deposits_count:]

    summary = summarise(outcomes)
    accepted = sum(o.status == 201 for o in withdrawal_outcomes)
    refused = [o for o in withdrawal_outcomes if o.status == 409]
    credited = Transaction.objects.filter(id__in=[d.id for d in deposits], status="completed").count()
    balance = balance_get(user_id=user.id, currency="ZAR")
    expected_available = initial + credited * deposit_amount - accepted * withdrawal_amount
    report_figure(
        f"deposit credits racing withdrawals (HTTP): {deposits_count} paid webhooks, {credited} credited; "
        f"{withdrawals_count} withdrawals, {accepted} accepted, {len(refused)} refused; "
        f"final balance {'adds up' if balance.available == expected_available else 'DOES NOT ADD UP'}, "
        f"overdrafts {int((watch.lowest or 0) < 0 or balance.available < 0)}, 5xx {summary['5xx']}"
    )
    assert summary["5xx"] == summary["timeouts"] == summary["transport errors"] == 0
    assert [o.status for o in webhook_outcomes] == [200] * deposits_count
    assert credited == deposits_count  # every paid purchase credited...
    assert accepted + len(refused) == withdrawals_count
    assert {o.code() for o in refused} <= {"insufficient_funds"}
    assert (balance.available, balance.reserved) == (expected_available, accepted * withdrawal_amount)
    assert balance.available >= 0
    assert watch.lowest is None or watch.lowest >= 0
    # ...exactly once: the same deliveries again are duplicates and move nothing.
    again = burst([deliver(*event) for event in events])
    assert {o.status for o in again} == {200}
    assert {httpx.Response(200, content=o.body).json()["status"] for o in again} == {"duplicate"}
    assert balance_get(user_id=user.id, currency="ZAR") == balance
    assert ledger_problems() == []
    assert_server_healthy(server)


# --------------------------------------------------------------------------------------------------------
# c. The same Idempotency-Key from 50 threads
# --------------------------------------------------------------------------------------------------------


def test_one_idempotency_key_from_fifty_threads_withdraws_once(
    server: Server,
    make_user: Callable[..., User],
    revio: SandboxProcess,
    report_figure: Callable[[str], None],
) -> None:
    threads, amount = proof_size(50, 50), 5_000
    user = make_user()
    fund(user, 50_000, revio)
    access = login(server, user)["access"]
    key = f"proof-{uuid.uuid4()}"

    outcomes = burst([withdraw_call(server.url, access, amount, key) for _ in range(threads)])

    summary = summarise(outcomes)
    created = [o for o in outcomes if o.status == 201]
    originals = [o for o in created if o.headers.get("idempotent-replayed") != "true"]
    in_flight = [o for o in outcomes if o.status == 409]
    withdrawals = list(Transaction.objects.filter(user=user, type="withdrawal"))
    payouts = payouts_by_reference(server, [str(w.id) for w in withdrawals])
    replays = len(created) - len(originals)
    report_figure(
        f"one Idempotency-Key from {threads} threads (HTTP): withdrawals {len(withdrawals)}, "
        f"payouts {sum(payouts.values())}, executed {len(originals)}, replays {replays}, "
        f"409 in flight {len(in_flight)}, other {threads - len(created) - len(in_flight)}"
    )
    assert summary["5xx"] == summary["timeouts"] == summary["transport errors"] == 0
    assert len(created) + len(in_flight) == threads
    assert len(originals) == 1  # exactly one request executed
    assert {o.body for o in created} == {originals[0].body}  # every replay byte-identical to it
    assert {o.code() for o in in_flight} <= {"request_in_progress"}
    assert len(withdrawals) == 1
    assert payouts == Counter({str(withdrawals[0].id): 1})
    balance = balance_get(user_id=user.id, currency="ZAR")
    assert (balance.available, balance.reserved) == (45_000, 5_000)

    # Once done: the same request is a replay of the same bytes; the key with another body is 422.
    (replay,) = burst([withdraw_call(server.url, access, amount, key)])
    assert replay.status == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.body == originals[0].body
    (reused,) = burst([withdraw_call(server.url, access, amount + 1, key)])
    assert reused.status == 422
    assert reused.code() == "idempotency_key_reused"
    assert Transaction.objects.filter(user=user, type="withdrawal").count() == 1
    assert ledger_problems() == []
    assert_server_healthy(server)


# --------------------------------------------------------------------------------------------------------
# d. 50 parallel refreshes of one refresh token
# --------------------------------------------------------------------------------------------------------


def test_fifty_parallel_refreshes_of_one_token_let_exactly_one_win(
    server: Server, make_user: Callable[..., User], report_figure: Callable[[str], None]
) -> None:
    threads = proof_size(50, 50)
    user = make_user()
    refresh = login(server, user)["refresh"]

    def call(client: httpx.Client) -> httpx.Response:
        return client.post(f"{server.url}/api/v1/auth/token/refresh", json={"refresh": refresh})

    outcomes = burst([call] * threads)
    summary = summarise(outcomes)
    winners = [o for o in outcomes if o.status == 200]
    report_figure(
        f"parallel refreshes of one refresh token (HTTP, gunicorn): {threads} tried, "
        f"{len(winners)} succeeded, {summary['401']} refused, 5xx {summary['5xx']}"
    )
    assert summary == Counter({"200": 1, "401": threads - 1})
    assert all(o.code() for o in outcomes if o.status == 401)  # refusals in the one error shape
    # The winner's new refresh token works; the old one stays dead.
    new_refresh = httpx.Response(200, content=winners[0].body).json()["refresh"]
    url = f"{server.url}/api/v1/auth/token/refresh"
    with httpx.Client(timeout=30) as client:
        assert client.post(url, json={"refresh": new_refresh}).status_code == 200
        assert client.post(url, json={"refresh": refresh}).status_code == 401
    assert_server_healthy(server)
