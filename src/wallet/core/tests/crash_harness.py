"""The crash harness: the wallet as real processes (gunicorn, a Celery worker, a Redis of its own, the session
sandbox, the test's PostgreSQL) that a test can kill with SIGKILL at named crash points and restart.

Crash points (wallet.core.faults) are armed in every process for the whole module, and disarmed by their
marker files: a point whose `<name>.fired` file exists never fires. Arming a point at one step of a workload
is deleting its marker; the first process that reaches it then kills itself and writes its pid back into the
marker, which tells the harness which process died (web or worker). No process has to be restarted to arm a
different point, so one set of processes serves a whole module.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from revio_sandbox.testing import Delivery, SandboxProcess
from scripts.testenv import _as_postgres_user, _postgres_bindir
from wallet.accounts.models import User
from wallet.core.faults import CRASH_POINTS
from wallet.core.testing import unused_port
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get, ledger_problems
from wallet.reconciliation.invariants import reserved_problems
from wallet.reconciliation.models import StuckStatus, StuckTransaction
from wallet.reconciliation.recovery import recovery_run
from wallet.transactions import resolutions
from wallet.transactions.errors import ResolutionNotPendingError
from wallet.transactions.models import DepositReversal, Transaction
from wallet.transactions.refunds import refunds_resolve_pending
from wallet.transactions.services import withdrawals_send_queued
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.services import webhook_process, webhooks_sweep
from wallet.webhooks.tests.test_worker import RedisServer

ROOT = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent
LEASE_SECONDS = 3
# The web process's wait for Revio: long enough for a late answer we provoke, short enough for a test.
REVIO_READ_TIMEOUT = 6
# How long the payouts worker may take to try a new withdrawal's payout: take its message, and wait for
# Revio's answer up to the read timeout (twice, for a redelivery after a worker died).
PAYOUT_WINDOW = 2 * REVIO_READ_TIMEOUT + 3
# A webhook sent while a server is down arrives this much later: inside the outage.
OUTAGE_WEBHOOK_DELAY_MS = 3000


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Managed:
    """One child process with its own session (so its whole group can be killed) and a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap(self) -> int | None:
        """Wait for a process that is dying (it killed itself) and forget it; its return code."""
        if self.process is None:
            return None
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self.process = None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class PostgresControl:
    """Kill the test's PostgreSQL the hard way (immediate shutdown: no checkpoint, crash recovery at start)
    and start it again with the options it was started with."""

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            self.data = Path(cursor.fetchone()[0])
        self.prefix, _, _ = _as_postgres_user()
        self.pg_ctl = str(_postgres_bindir() / "pg_ctl")
        # testenv.py logs next to the data folder; a server of someone else's gets a log of our own.
        self.log = self.data.parent / "postgres.log"
        self.options = self._options()

    def _options(self) -> str:
        # postmaster.opts holds the command line the server runs with: binary, then its arguments.
        words = shlex.split((self.data / "postmaster.opts").read_text())[1:]
        kept: list[str] = []
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word == "-D":
                skip = True
                continue
            kept.append(word)
        return " ".join(shlex.quote(word) for word in kept)

    def kill(self) -> None:
        connection.close()  # this process's connection dies with the server; drop it first
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                self.pg_ctl,
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                self.options,
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        connection.close()


class System:
    """gunicorn + Celery worker + Redis, against the test database and the session sandbox."""

    def __init__(self, *, sandbox: SandboxProcess, workdir: Path) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.markers = workdir / "crash-markers"
        self.markers.mkdir(exist_ok=True)
        self.disarm_all()
        self.redis = RedisServer(workdir)
        self.port = unused_port()
        self.webhook_id = ""
        self._postgres: PostgresControl | None = None
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": self.redis.url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_VISIBILITY_TIMEOUT": "5",
            "WEBHOOK_PROCESSING_LEASE_SECONDS": str(LEASE_SECONDS),
            "IDEMPOTENCY_LEASE_SECONDS": "3",
            "REFUND_FOUR_EYES_THRESHOLD": str(REFUND_FOUR_EYES_THRESHOLD),
            "REVIO_BASE_URL": sandbox.api_url,
            "REVIO_API_KEY": sandbox.api_key,
            "REVIO_BRAND_ID": sandbox.brand_id,
            "REVIO_READ_TIMEOUT": str(REVIO_READ_TIMEOUT),
            # Payouts go through the sandbox's EFT payments API, with its own OAuth2 credentials.
            "REVIO_EFT_BASE_URL": sandbox.eft_base_url,
            "REVIO_EFT_TOKEN_URL": sandbox.eft_token_url,
            "REVIO_EFT_CLIENT_ID": sandbox.eft_credentials()[0],
            "REVIO_EFT_CLIENT_SECRET": sandbox.eft_credentials()[1],
            "PUBLIC_BASE_URL": self.url,
            "WALLET_CRASH_POINTS": ",".join(sorted(CRASH_POINTS)),
            "WALLET_CRASH_MARKER_DIR": str(self.markers),
            "LOG_LEVEL": "WARNING",
        }
        self.web: Managed | None = None
        self.worker: Managed | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def postgres(self) -> PostgresControl:
        # Looked up when first needed: only the database seeds need the server's data folder.
        if self._postgres is None:
            self._postgres = PostgresControl()
        return self._postgres

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/v1/webhooks/revio"

    # -- crash points ---------------------------------------------------------------------------------

    def disarm_all(self) -> None:
        for name in CRASH_POINTS:
            (self.markers / f"{name}.fired").write_text("disarmed")

    def arm(self, point: str) -> None:
        assert point in CRASH_POINTS, point
        self.disarm_all()
        (self.markers / f"{point}.fired").unlink()

    def fired_pid(self, point: str) -> int | None:
        """The pid that fired the point since it was armed, or None."""
        marker = self.markers / f"{point}.fired"
        if not marker.exists():
            return None
        text = marker.read_text()
        return int(text) if text.isdigit() else None

    # -- processes ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._durable_commits(True)
        self.redis.start()
        with self.sandbox.api_client() as client:
            created = client.post(
                "webhooks/", json={"title": "crash harness", "all_events": True, "callback": self.webhook_url}
            )
            created.raise_for_status()
            self.webhook_id = created.json()["id"]
        self.env["REVIO_WEBHOOK_ID"] = self.webhook_id
        self.sandbox.eft_register_callback(f"{self.webhook_url}/eft")  # EFT_PAYMENT callbacks: triggers
        self.start_web()
        self.start_worker()

    def stop(self) -> None:
        for managed in (self.worker, self.web):
            if managed is not None:
                managed.kill(signal.SIGTERM)
        self.redis.stop()
        self._durable_commits(False)
        if self.webhook_id:
            with self.sandbox.api_client() as client:
                client.delete(f"webhooks/{self.webhook_id}/")
            self.sandbox.control.eft_delete_callbacks(url_prefix=self.url)

    def _durable_commits(self, on: bool) -> None:
        """The test server runs with synchronous_commit=off (testenv.py, for speed): a crash of PostgreSQL
        then loses the last acknowledged commits, which no production database would do and which breaks
        every promise built on a commit (a reservation that was answered, a claimed payout request).
        The processes connect to this database only, so it gets production's durable commits here."""
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        with connection.cursor() as cursor:
            if on:
                cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = on")
            else:
                cursor.execute(f"ALTER DATABASE {name} RESET synchronous_commit")

    def start_web(self) -> None:
        # Two workers: when one dies at a crash point, the master starts another (as in production).
        command = [
            str(BIN / "gunicorn"), "config.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", "2", "--threads", "4", "--worker-class", "gthread",
            "--timeout", "60", "--graceful-timeout", "2", "--log-level", "warning",
        ]  # fmt: skip
        self.web = Managed("web", command, self.env, self.workdir / "web.log")
        self.web.start()
        self.wait_web_ready()

    def web_worker_pids(self) -> set[int]:
        assert self.web is not None
        try:
            return {child.pid for child in psutil.Process(self.web.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def wait_web_ready(self) -> None:
        def ready() -> bool:
            assert self.web is not None
            if not self.web.alive():
                raise AssertionError(f"gunicorn exited:\n{self.web.tail()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code < 500 and (
                    len(self.web_worker_pids()) == 2
                )
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=60, what="gunicorn to serve")

    def start_worker(self) -> None:
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "-Q", "default,webhooks,payouts,reconciliation",
            "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "INFO",
        ]  # fmt: skip
        log = self.workdir / "worker.log"
        offset = log.stat().st_size if log.exists() else 0
        self.worker = Managed("worker", command, self.env, log)
        self.worker.start()

        def ready() -> bool:
            assert self.worker is not None
            if not self.worker.alive():
                raise AssertionError(f"the Celery worker exited:\n{self.worker.tail()}")
            with log.open("rb") as handle:
                handle.seek(offset)
                return b"ready" in handle.read()

        wait_until(ready, timeout=60, what="the Celery worker to start")

    def role_of(self, pid: int, web_pids: set[int]) -> str:
        if self.worker is not None and pid == self.worker.pid:
            return "worker"
        if pid in web_pids:
            return "web"
        return f"unknown pid {pid}"

    def restart_after_crash(self, role: str) -> None:
        """Bring back what a crash point killed: a new Celery worker, or wait for gunicorn's new worker."""
        if role == "worker":
            assert self.worker is not None
            code = self.worker.reap()
            assert code == -signal.SIGKILL, code
            self.start_worker()
        elif role == "web":
            self.wait_web_ready()

    def restart_redis(self, *, down_for: Callable[[], None]) -> None:
        """Stop Redis (its data is lost: queued task messages, cache, rate-limit counters), run `down_for`
        while it is down, and start it again on the same port."""
        self.redis.stop()
        down_for()
        self.redis.start()


# -- seeded scenarios ---------------------------------------------------------------------------------------

BANK = {
    "account_holder": "Thandi Nkosi",
    "account_number": "62001234567",
    "bank_code": "250655",
    "account_type": "current",
}
WITHDRAWAL_POINTS = ("withdrawal.reserved", "withdrawal.payout_claimed", "withdrawal.payout_accepted")
WEBHOOK_POINTS = ("webhook.claimed", "webhook.applied", "ledger.journal_written")
DATABASE_KILLED = "database killed mid-withdrawal"
REDIS_RESTARTED = "redis restarted + revio timing out"
# Issue 16's money paths. An admin refund through the API (the web process dies after the debit committed,
# or after Revio refunded the card); a chargeback's signed payment.charged_back and a payout's success after
# we had failed and refunded it (the clawback), each with the worker dying in the debit's transaction or
# after it committed; an operator's four-eyes resolution of an unknown outcome, in the operator's own
# process, dying in its transaction or after it committed.
REFUND_POINTS = ("refund.debited", "refund.answered")
APPROVAL_DEBITED = "refund approval, refund.debited"
APPROVAL_ANSWERED = "refund approval, refund.answered"
APPROVAL_POINTS = (APPROVAL_DEBITED, APPROVAL_ANSWERED)
# The web process's four-eyes threshold: the harness's immediate refunds are below it, approvals above.
REFUND_FOUR_EYES_THRESHOLD = 4_999
IMMEDIATE_REFUND = 2_000
CHARGEBACK_APPLIED = "chargeback, webhook.applied"
CHARGEBACK_JOURNAL = "chargeback, ledger.journal_written"
CLAWBACK_APPLIED = "clawback, webhook.applied"
CLAWBACK_JOURNAL = "clawback, ledger.journal_written"
RESOLUTION_APPROVED = "resolution.approved"
RESOLUTION_JOURNAL = "resolution, ledger.journal_written"
REVERSAL_POINTS = (CHARGEBACK_APPLIED, CHARGEBACK_JOURNAL, CLAWBACK_APPLIED, CLAWBACK_JOURNAL)
RESOLUTION_POINTS = (RESOLUTION_APPROVED, RESOLUTION_JOURNAL)
# seed % len(SCENARIOS) picks the scenario, so a run of consecutive seeds covers every one of them.
SCENARIOS = (
    *WITHDRAWAL_POINTS,
    *WEBHOOK_POINTS,
    DATABASE_KILLED,
    REDIS_RESTARTED,
    *REFUND_POINTS,
    *REVERSAL_POINTS,
    *RESOLUTION_POINTS,
    *APPROVAL_POINTS,
)
# The crash point each scenario arms (the name, unless the scenario aims a shared point at a new path).
POINT = {
    APPROVAL_DEBITED: "refund.debited",
    APPROVAL_ANSWERED: "refund.answered",
    CHARGEBACK_APPLIED: "webhook.applied",
    CHARGEBACK_JOURNAL: "ledger.journal_written",
    CLAWBACK_APPLIED: "webhook.applied",
    CLAWBACK_JOURNAL: "ledger.journal_written",
    RESOLUTION_JOURNAL: "ledger.journal_written",
}
# Who is expected to die where: the web process reserves withdrawals and serves admin refunds, the worker
# sends withdrawals' payouts (issue 18) and processes webhooks (the journal of ledger.journal_written is
# the deposit credit that a purchase.paid webhook applies, or the chargeback's or clawback's debit), an
# operator's process approves a resolution.
VICTIM = {
    "withdrawal.reserved": "web",
    "withdrawal.payout_claimed": "worker",
    "withdrawal.payout_accepted": "worker",
    **dict.fromkeys(WEBHOOK_POINTS, "worker"),
    DATABASE_KILLED: "database",
    REDIS_RESTARTED: "redis",
    **dict.fromkeys(REFUND_POINTS, "web"),
    **dict.fromkeys(APPROVAL_POINTS, "web"),
    **dict.fromkeys(REVERSAL_POINTS, "worker"),
    **dict.fromkeys(RESOLUTION_POINTS, "operator"),
}
# What the customer's first request sees: the proof that the failure hit the window it was aimed at (the
# web process dies mid-request after the commit; the payouts worker dies after the 201; the worker has
# Revio's answer but no database; Revio did not answer in time).
CLIENT_SAW = {
    "withdrawal.reserved": "connection lost",
    "withdrawal.payout_claimed": "201",
    "withdrawal.payout_accepted": "201",
    **dict.fromkeys(WEBHOOK_POINTS, "payment made at Revio"),
    DATABASE_KILLED: "201 pending",
    REDIS_RESTARTED: "201 pending",
    **dict.fromkeys(REFUND_POINTS, "connection lost"),  # the admin's request
    **dict.fromkeys(APPROVAL_POINTS, "connection lost"),  # the second admin's approval
    CHARGEBACK_APPLIED: "chargeback at Revio",
    CHARGEBACK_JOURNAL: "chargeback at Revio",
    CLAWBACK_APPLIED: "payout completed at Revio after it failed",
    CLAWBACK_JOURNAL: "payout completed at Revio after it failed",
    **dict.fromkeys(RESOLUTION_POINTS, "operator's approval lost"),
}
# ADR 0006: a payout request claimed but never sent leaves no evidence at Revio; with a lookup that is not
# authoritative it is never refunded blindly nor sent again, it becomes an operator task.
OPERATOR_TASKS = {"withdrawal.payout_claimed": 1}


@dataclass(frozen=True)
class Plan:
    seed: int
    scenario: str
    deposits: tuple[int, ...]
    withdrawals: tuple[int, ...]
    payout_outcomes: tuple[str, ...]  # "succeed" or "fail" for each withdrawal's payout

    @property
    def victim(self) -> str:
        return VICTIM[self.scenario]


def plan(seed: int) -> Plan:
    rng = random.Random(seed)
    deposits = tuple(rng.randrange(5_000, 30_000, 100) for _ in range(rng.randint(1, 2)))
    count = rng.randint(1, 2)
    share = sum(deposits) // (count + 1)
    withdrawals = tuple(rng.randrange(1_000, max(share, 1_100), 100) for _ in range(count))
    return Plan(
        seed=seed,
        scenario=SCENARIOS[seed % len(SCENARIOS)],
        deposits=deposits,
        withdrawals=withdrawals,
        payout_outcomes=tuple(rng.choice(("succeed", "fail")) for _ in withdrawals),
    )


@dataclass
class Failure:
    """What happened, as recorded: which point fired, in which process, and what the client saw."""

    point: str
    victim: str
    client_saw: str


@dataclass
class Figures:
    crashed: bool = False
    double_payouts: int = 0
    double_credits: int = 0
    lost_webhooks: int = 0
    non_final: int = 0
    operator_tasks: int = 0
    refused_deliveries: int = 0  # webhook attempts we did not accept (a server down), delivered again later
    double_reversals: int = 0  # a refund or chargeback debited twice, or taken back other than Revio did
    problems: list[str] = field(default_factory=list)


class Api:
    """The customer's HTTP client against gunicorn, with JWT auth and idempotency keys."""

    def __init__(self, base_url: str, email: str, password: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/api/v1/", timeout=30)
        token = self.http.post("auth/token", json={"email": email, "password": password})
        assert token.status_code == 200, token.text
        self.http.headers["Authorization"] = f"Bearer {token.json()['access']}"

    def close(self) -> None:
        self.http.close()

    def post_once(self, path: str, body: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
        """One attempt: ("201", body) or ("500", ...), or ("connection lost", {}) when the server died."""
        try:
            response = self.http.post(path, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            return "connection lost", {}
        return str(response.status_code), response.json() if response.content else {}

    def post(self, path: str, body: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
        """Retry with the same key, as a client whose request failed should, until it gets an answer."""
        deadline = time.monotonic() + 30
        while True:
            status, answer = self.post_once(path, body, key)
            retryable = status in {"connection lost", "409"} or status.startswith("5")
            if not retryable or time.monotonic() > deadline:
                return status, answer
            time.sleep(0.3)


class Scenario:
    """Run one plan's workload against the system, fire its failure, recover, and measure the result."""

    def __init__(self, system: System, the_plan: Plan, user: Any, password: str) -> None:
        self.system, self.plan, self.user = system, the_plan, user
        self.password = password
        self.control = system.sandbox.control
        self.api = Api(system.url, user.email, password)
        self.failure: Failure | None = None
        self.payments_mark = self.eft_payments_mark()

    # -- the workload ---------------------------------------------------------------------------------

    def run(self) -> Failure:
        try:
            for index, amount in enumerate(self.plan.deposits):
                self._deposit(amount, arm=index == 0 and self.plan.scenario in WEBHOOK_POINTS)
            for index, amount in enumerate(self.plan.withdrawals):
                self._withdraw(amount, first=index == 0)
            scenario = self.plan.scenario
            if scenario in REFUND_POINTS:
                self._admin_refund()
            elif scenario in APPROVAL_POINTS:
                self._refund_approval()
            elif scenario in (CHARGEBACK_APPLIED, CHARGEBACK_JOURNAL):
                self._chargeback()
            elif scenario in (CLAWBACK_APPLIED, CLAWBACK_JOURNAL):
                self._clawback()
            elif scenario in RESOLUTION_POINTS:
                self._operator_resolves()
        finally:
            self.api.close()
        assert self.failure is not None, f"seed {self.plan.seed}: no failure happened"
        return self.failure

    def _deposit(self, amount: int, *, arm: bool) -> None:
        status, answer = self.api.post("deposits", {"amount": amount}, key=str(uuid.uuid4()))
        assert status == "201", (status, answer)
        deposit = Transaction.objects.get(id=answer["id"])
        assert deposit.provider_object_id
        self.settle()  # nothing else in flight: the armed point must be reached by this payment's events
        web_pids = self.system.web_worker_pids()
        if arm:
            self.system.arm(self.plan.scenario)
        self.control.purchase_pay(deposit.provider_object_id)
        if arm:
            self._crashed(self.plan.scenario, web_pids, client_saw="payment made at Revio")
            self.recover()
        else:
            self.settle()
        deposit.refresh_from_db()
        assert deposit.status == "completed", (
            f"seed {self.plan.seed}: deposit {deposit.status} after recovery"
        )

    def _withdraw(self, amount: int, *, first: bool) -> None:
        body = {"amount": amount, "bank_account": BANK}
        key = str(uuid.uuid4())
        scenario = self.plan.scenario
        if first and scenario in WITHDRAWAL_POINTS:
            web_pids = self.system.web_worker_pids()
            self.system.arm(scenario)
            status, _ = self.api.post_once("withdrawals", body, key)
            self._crashed(scenario, web_pids, client_saw=status)
        elif first and scenario == DATABASE_KILLED:
            self._withdraw_while(self._kill_database, body, key, late_answer=True)
        elif first and scenario == REDIS_RESTARTED:
            self._withdraw_while(self._restart_redis, body, key, late_answer=False)
        elif first and scenario in RESOLUTION_POINTS:
            # Revio answers 500 and creates nothing: the outcome is unknown to us (ADR 0015), the withdrawal
            # stays pending, and only an operator can say it was not paid.
            self.control.fail_next("eft.payments.create", status=500)
        # The client retries its request (the same key): never a second withdrawal for one request.
        status, answer = self.api.post("withdrawals", body, key)
        assert status == "201", (status, answer)

    def _withdraw_while(
        self, hit: Callable[[Callable[[], None]], None], body: dict[str, Any], key: str, *, late_answer: bool
    ) -> None:
        """Send a withdrawal whose EFT payment Revio creates but answers late (or never); once it exists
        at Revio, while the payouts worker still waits for the answer, `hit` takes a server down until the
        customer has had an answer (the callable it is given waits for that)."""
        if late_answer:  # answered before the worker gives up: it has something to record
            self.control.timeout_after_processing(
                "eft.payments.create", seconds=REVIO_READ_TIMEOUT - 1.5, then="answer"
            )
        else:  # never answered in time: the outcome is unknown
            self.control.timeout_after_processing(
                "eft.payments.create", seconds=REVIO_READ_TIMEOUT + 1, then="drop"
            )
        # The payment's first callbacks (NEW, then QUEUED at once) are held back into the outage: otherwise
        # they could settle the state before the failure lands, and they should meet the broken server.
        self.control.delay_next_event(
            OUTAGE_WEBHOOK_DELAY_MS, event_type="EFT_PAYMENT.*", target="eft", count=2
        )
        answers: list[str] = []
        sender = threading.Thread(
            target=lambda: answers.append(" ".join(map(str, self._answer(body, key))).strip())
        )
        sender.start()
        withdrawal = wait_until(
            lambda: Transaction.objects.filter(
                user_id=self.user.id, type="withdrawal", payout_requested_at__isnull=False
            ).first(),
            what="the payout request to be claimed",
        )
        wait_until(lambda: self.payouts_at_revio(withdrawal.id), what="Revio to create the payout")
        hit(lambda: sender.join(timeout=60))
        assert not sender.is_alive()
        self.failure = Failure(
            self.plan.scenario, self.plan.victim, client_saw=answers[0] if answers else "none"
        )

    def _answer(self, body: dict[str, Any], key: str) -> tuple[str, str]:
        status, answer = self.api.post_once("withdrawals", body, key)
        return status, str(answer.get("status", ""))

    def _kill_database(self, answered: Callable[[], None]) -> None:
        self.system.postgres.kill()
        answered()  # the customer had the 201 before the payout was sent (issue 18)
        time.sleep(REVIO_READ_TIMEOUT)  # Revio's late answer reaches the payouts worker without a database
        self.system.postgres.start()

    def _restart_redis(self, answered: Callable[[], None]) -> None:
        self.system.restart_redis(down_for=answered)  # Revio timed out while Redis was down

    def _crashed(self, point: str, web_pids: set[int], *, client_saw: str) -> None:
        pid = wait_until(lambda: self.system.fired_pid(point), what=f"crash point {point} to fire")
        victim = self.system.role_of(pid, web_pids)
        self.system.restart_after_crash(victim)
        self.failure = Failure(self.plan.scenario, victim, client_saw)

    # -- issue 16's paths -----------------------------------------------------------------------------

    def _finance_admin(self, name: str) -> User:
        return User.objects.create_user(
            email=f"{name}-{uuid.uuid4().hex[:8]}@example.com",
            password=self.password,
            role=User.Role.ADMIN,
            admin_duty=User.Duty.FINANCE,
        )

    def _first(self, kind: str) -> Transaction:
        found = Transaction.objects.filter(user_id=self.user.id, type=kind).order_by("created_at").first()
        assert found is not None
        return found

    def _admin_refund(self) -> None:
        """A finance admin refunds half the first deposit through the API (debt allowed: the user may have
        withdrawn); the web process dies at the armed point; the admin retries with the same key."""
        admin = self._finance_admin("crash-finance")
        api = Api(self.system.url, admin.email, self.password)
        try:
            deposit = self._first("deposit")
            path = f"admin/deposits/{deposit.id}/refunds"
            body = {"amount": IMMEDIATE_REFUND, "allow_debt": True, "reason": "crash harness"}
            key = str(uuid.uuid4())
            self.settle()
            web_pids = self.system.web_worker_pids()
            self.system.arm(self.plan.scenario)
            status, _ = api.post_once(path, body, key)
            self._crashed(self.plan.scenario, web_pids, client_saw=status)
            # The same key answers the refund already debited; it is never debited or sent a second time.
            status, answer = api.post(path, body, key)
            assert status == "201", (status, answer)
            assert answer["status"] in {"pending", "completed"}, answer
        finally:
            api.close()

    def _refund_approval(self) -> None:
        """A finance admin proposes refunding the whole first deposit (above the threshold: nothing moves);
        a second approves it and the web process dies at the armed point; the approver retries, which is
        refused (it is no longer a proposal): never debited or sent twice."""
        proposer, approver = self._finance_admin("crash-proposer"), self._finance_admin("crash-approver")
        first, second = (Api(self.system.url, admin.email, self.password) for admin in (proposer, approver))
        try:
            deposit = self._first("deposit")
            body = {"amount": deposit.amount, "allow_debt": True, "reason": "crash harness"}
            status, proposed = first.post(f"admin/deposits/{deposit.id}/refunds", body, str(uuid.uuid4()))
            assert (status, proposed.get("status")) == ("202", "proposed"), (status, proposed)
            approve = f"admin/refunds/{proposed['id']}/approve"
            self.settle()
            point = POINT[self.plan.scenario]
            web_pids = self.system.web_worker_pids()
            self.system.arm(point)
            status = self._post_without_key(second, approve)
            self._crashed(point, web_pids, client_saw=status)
            retried = second.http.post(approve)
            assert retried.status_code == 409, retried.text
            assert retried.json()["error"]["code"] == "refund_not_proposed"
        finally:
            first.close()
            second.close()

    @staticmethod
    def _post_without_key(api: Api, path: str) -> str:
        try:
            return str(api.http.post(path).status_code)
        except httpx.TransportError:
            return "connection lost"

    def _chargeback(self) -> None:
        """The card holder's bank takes the whole first deposit back (after the user withdrew part of it:
        debt); the worker dies applying Revio's signed payment.charged_back."""
        deposit = self._first("deposit")
        self.settle()
        self.system.arm(POINT[self.plan.scenario])
        self.control.purchase_chargeback(deposit.provider_object_id or "")
        self._crashed(POINT[self.plan.scenario], set(), client_saw=CLIENT_SAW[self.plan.scenario])

    def _clawback(self) -> None:
        """The first payout fails (the reservation is released), then Revio reports it completed: the
        worker dies clawing the amount back."""
        wait_until(self.payouts_idle, timeout=60, what="the payouts worker to send the payout")
        withdrawal = self._first("withdrawal")
        payout_id = withdrawal.provider_object_id
        assert withdrawal.status == "processing", withdrawal
        assert payout_id, withdrawal
        self.settle()
        self.control.eft_payment_fail(payout_id)
        wait_until(
            lambda: Transaction.objects.filter(id=withdrawal.id, status="failed").exists(),
            what="the failed payout to be released",
        )
        self.settle()
        self.system.arm(POINT[self.plan.scenario])
        self.control.eft_payment_set_status(payout_id, "COMPLETED")
        self._crashed(POINT[self.plan.scenario], set(), client_saw=CLIENT_SAW[self.plan.scenario])

    def _operator_resolves(self) -> None:
        """One finance admin proposes "not paid" for the unknown withdrawal; a second approves it in a process
        of their own, which dies at the armed point; they approve again, and it is applied exactly once."""
        wait_until(self.payouts_idle, timeout=60, what="the payouts worker to try the payout")
        withdrawal = self._first("withdrawal")
        assert withdrawal.status == "pending", withdrawal
        assert withdrawal.payout_requested_at, withdrawal
        self.settle()
        proposer, approver = self._finance_admin("crash-proposer"), self._finance_admin("crash-approver")
        resolution = resolutions.withdrawal_resolution_propose(
            withdrawal_id=withdrawal.id,
            proposed_by=proposer,
            outcome="not_paid",
            note="Revio's dashboard shows no payment for this reference",
            now=timezone.now(),
        )
        point = POINT.get(self.plan.scenario, self.plan.scenario)
        self.system.arm(point)
        program = (
            "import uuid\n"
            "from django.utils import timezone\n"
            "from wallet.accounts.models import User\n"
            "from wallet.transactions import resolutions\n"
            f"resolutions.withdrawal_resolution_approve(resolution_id=uuid.UUID('{resolution.id}'), "
            f"approver=User.objects.get(id=uuid.UUID('{approver.id}')), now=timezone.now())\n"
        )
        log = self.system.workdir / "operator.log"
        operator = Managed(
            "operator", [sys.executable, "manage.py", "shell", "-c", program], self.system.env, log
        )
        operator.start()
        pid = operator.pid
        code = operator.reap()
        assert code == -signal.SIGKILL, (code, operator.tail())
        assert self.system.fired_pid(point) == pid
        self.failure = Failure(self.plan.scenario, "operator", CLIENT_SAW[self.plan.scenario])
        # The operator, unsure whether it took, approves again.
        if self.plan.scenario == RESOLUTION_APPROVED:  # it had committed: refused, nothing moves again
            try:
                resolutions.withdrawal_resolution_approve(
                    resolution_id=resolution.id, approver=approver, now=timezone.now()
                )
            except ResolutionNotPendingError:
                pass
            else:
                raise AssertionError("a committed resolution was approved a second time")
        else:  # it had rolled back: this approval applies it
            resolutions.withdrawal_resolution_approve(
                resolution_id=resolution.id, approver=approver, now=timezone.now()
            )

    # -- recovery -------------------------------------------------------------------------------------

    def deliveries(self) -> list[Delivery]:
        """The sandbox's deliveries about this scenario's purchases and EFT payments (the sandbox is
        shared)."""
        mine = Transaction.objects.filter(user_id=self.user.id)
        objects = {str(oid) for oid in mine.values_list("provider_object_id", flat=True) if oid}
        for withdrawal_id in mine.filter(type="withdrawal").values_list("id", flat=True):
            objects.update(payout["id"] for payout in self.payouts_at_revio(withdrawal_id))
        for purchase_id in mine.filter(type="deposit").values_list("provider_object_id", flat=True):
            if purchase_id:  # its refund and chargeback Payments (payment.* events)
                objects.update(payment["id"] for payment in self.control.purchase_payments(purchase_id))
        return [
            d
            for d in self.control.deliveries()
            if d["url"].startswith(self.system.url) and d["object_id"] in objects
        ]

    def payouts_at_revio(self, withdrawal_id: Any) -> list[dict[str, Any]]:
        """The EFT payments carrying the withdrawal's id as their contractReference."""
        with self.system.sandbox.eft_client() as client:
            found = client.get("v2/payment/eft", params={"contractReference": str(withdrawal_id)})
            found.raise_for_status()
            return list(found.json()["results"])

    def eft_payments_mark(self) -> int:
        with contextlib.closing(self._sandbox_db()) as db:
            return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM eft_payments").fetchone()[0])

    def eft_payments_since(self, mark: int) -> list[tuple[str, str]]:
        """(id, contractReference) of every EFT payment the sandbox created after `mark`, whoever made it,
        read from its store (the API looks payments up by reference only)."""
        with contextlib.closing(self._sandbox_db()) as db:
            query = "SELECT id, contract_reference FROM eft_payments WHERE seq > ?"
            return [(str(i), str(ref)) for i, ref in db.execute(query, (mark,))]

    def _sandbox_db(self) -> sqlite3.Connection:
        path = self.system.sandbox.data_dir / "sandbox.db"
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def quiet(self) -> bool:
        ours = (d for d in self.control.deliveries() if d["url"].startswith(self.system.url))
        if any(d["status"] in {"pending", "held"} for d in ours):
            return False
        return not WebhookLog.objects.filter(status__in=["received", "processing", "failed"]).exists()

    def settle(self, timeout: float = 30) -> None:
        """Wait until the sandbox has delivered everything and the worker processed it."""
        wait_until(self.quiet, timeout=timeout, what="deliveries and webhook processing to settle")

    def recover(self, passes: int = 3) -> None:
        """What the beat schedule would do, with a clock far enough ahead that everything is due: make
        Revio retry now, sweep the webhook log, send queued payouts, check stuck transactions."""
        # The payouts worker sends each withdrawal's payout after its 201 (issue 18): the clock jumps ahead
        # only once it is done, else recovery would find a payout mid-send "claimed and unknown".
        wait_until(self.payouts_idle, timeout=60, what="the payouts worker to finish its payouts")
        for step in range(passes):
            later = timezone.now() + timedelta(hours=25) + timedelta(days=2 * step)
            self.control.retry_deliveries_now()
            webhooks_sweep(now=later)
            for log in WebhookLog.objects.filter(status__in=["received", "failed"]):
                webhook_process(log_id=log.id, now=later)
            withdrawals_send_queued(now=later)
            recovery_run(now=later)
            refunds_resolve_pending(now=later)  # provider reconciliation's first step: lost refund answers
            try:
                self.settle(timeout=LEASE_SECONDS * 3)
            except AssertionError:
                continue
            return

    def payouts_idle(self) -> bool:
        """Every withdrawal's payout was tried by the payouts worker, or had the time to be: none is pending
        with no outcome yet while younger than PAYOUT_WINDOW (its message not yet taken, or mid-send)."""
        recent = timezone.now() - timedelta(seconds=PAYOUT_WINDOW)
        in_flight = (
            Transaction.objects.filter(
                user_id=self.user.id, type="withdrawal", status="pending", provider_object_id__isnull=True
            )
            .filter(Q(created_at__gt=recent) | Q(payout_requested_at__gt=recent))
            .exclude(events__detail__startswith="payout outcome unknown")
        )
        return not in_flight.exists()

    def settle_payouts(self) -> None:
        """Revio decides each sent payout the way the plan says; its webhooks finish the withdrawals."""
        withdrawals = Transaction.objects.filter(user_id=self.user.id, type="withdrawal").order_by(
            "created_at"
        )
        for withdrawal, outcome in zip(withdrawals, self.plan.payout_outcomes, strict=True):
            if withdrawal.status == "processing" and withdrawal.provider_object_id:
                if outcome == "succeed":
                    self.control.eft_payment_succeed(withdrawal.provider_object_id)
                else:
                    self.control.eft_payment_fail(withdrawal.provider_object_id)

    def recover_and_measure(self) -> Figures:
        self.recover()
        self.settle_payouts()
        self.recover()
        return self.measure()

    # -- the invariants -------------------------------------------------------------------------------

    def measure(self) -> Figures:
        figures = Figures(crashed=self.failure is not None)
        figures.problems += ledger_problems() + reserved_problems()
        mine = Transaction.objects.filter(user_id=self.user.id)
        if mine.filter(type="deposit").count() != len(self.plan.deposits):
            figures.problems.append(
                f"{mine.filter(type='deposit').count()} deposits for {self.plan.deposits}"
            )
        if mine.filter(type="withdrawal").count() != len(self.plan.withdrawals):
            figures.problems.append(
                f"{mine.filter(type='withdrawal').count()} withdrawals for {self.plan.withdrawals}"
            )
        for deposit in mine.filter(type="deposit"):
            credits = Journal.objects.filter(transaction_id=deposit.id, kind="deposit_credit").count()
            figures.double_credits += max(credits - 1, 0)
            if deposit.status != "completed" or credits != 1:
                figures.problems.append(f"deposit {deposit.id} {deposit.status} with {credits} credits")
        operator = set(
            StuckTransaction.objects.filter(status=StuckStatus.OPERATOR).values_list(
                "transaction_id", flat=True
            )
        )
        figures.operator_tasks = len(operator)
        for withdrawal in mine.filter(type="withdrawal"):
            payouts = self.payouts_at_revio(withdrawal.id)
            figures.double_payouts += max(len(payouts) - 1, 0)
            sent = withdrawal.status in {"processing", "completed", "returned"} or bool(
                withdrawal.provider_object_id
            )
            if sent and len(payouts) != 1:
                figures.problems.append(
                    f"withdrawal {withdrawal.id} {withdrawal.status}: {len(payouts)} payouts"
                )
        # A payout made during this scenario for no withdrawal of ours: money sent that the books do not know.
        references = {
            str(withdrawal_id)
            for withdrawal_id in mine.filter(type="withdrawal").values_list("id", flat=True)
        }
        for payment_id, reference in self.eft_payments_since(self.payments_mark):
            if reference not in references:
                figures.double_payouts += 1
                figures.problems.append(f"EFT payment {payment_id} for unknown withdrawal {reference}")
        for txn in mine.filter(status__in=["pending", "processing"]):
            if txn.id not in operator:
                figures.non_final += 1
                figures.problems.append(f"{txn.type} {txn.id} still {txn.status}")
        balance = balance_get(user_id=self.user.id, currency="ZAR")
        if balance.available < 0 or balance.reserved < 0 or balance.debt < 0:
            figures.problems.append(f"negative balance: {balance}")
        if balance.available and balance.debt:  # credits settle debt first, debits take available first
            figures.problems.append(f"available and debt at once: {balance}")
        taken_back = self._measure_reversals(figures, mine)
        credited = sum(mine.filter(type="deposit", status="completed").values_list("amount", flat=True))
        kept = sum(mine.filter(type="withdrawal").exclude(status="failed").values_list("amount", flat=True))
        held = sum(mine.filter(type="withdrawal", status="pending").values_list("amount", flat=True))
        held += sum(mine.filter(type="withdrawal", status="processing").values_list("amount", flat=True))
        net = credited - kept - taken_back  # available - debt
        if (balance.available - balance.debt, balance.reserved) != (net, held):
            figures.problems.append(f"balance {balance} but transactions say {net} / {held}")
        figures.lost_webhooks = self._lost_webhooks(figures)
        return figures

    def _measure_reversals(self, figures: Figures, mine: Any) -> int:
        """Refunds, chargebacks and clawbacks moved money exactly once: one debit journal per refund or
        chargeback, at most one restore, our total taken back of each deposit equal to Revio's payments,
        nothing left pending; one clawback for a payout that completed after it had failed. Returns what
        the user's balance lost to them."""
        taken_back = 0
        for deposit in mine.filter(type="deposit"):
            rows = list(DepositReversal.objects.filter(deposit_id=deposit.id))
            for row in rows:
                debits = Journal.objects.filter(
                    transaction_id=row.id, kind__in=["deposit_refund", "deposit_chargeback"]
                ).count()
                restores = Journal.objects.filter(
                    transaction_id=row.id, kind="deposit_refund_reversed"
                ).count()
                want = (0, 0) if row.status in {"proposed", "rejected"} else (1, int(row.status == "failed"))
                if (debits, restores) != want:
                    figures.double_reversals += 1
                    figures.problems.append(f"{row}: {debits} debits, {restores} restores")
                if row.status == "pending":
                    figures.non_final += 1
                    figures.problems.append(f"{row} still pending")
            ours = sum(row.amount for row in rows if row.status in {"pending", "completed"})
            revios = sum(
                int(p["amount"]) for p in self.control.purchase_payments(deposit.provider_object_id or "")
            )
            if ours != revios:
                figures.double_reversals += 1
                figures.problems.append(f"deposit {deposit.id}: we took back {ours}, Revio {revios}")
            taken_back += ours
        for withdrawal in mine.filter(type="withdrawal"):
            kinds = list(Journal.objects.filter(transaction_id=withdrawal.id).values_list("kind", flat=True))
            clawbacks = kinds.count("withdrawal_clawback")
            released_then_paid = withdrawal.status == "completed" and "withdrawal_release" in kinds
            if clawbacks != int(released_then_paid):
                figures.double_reversals += max(clawbacks - 1, 0)
                figures.problems.append(f"withdrawal {withdrawal.id} {withdrawal.status}: journals {kinds}")
        return taken_back

    def _lost_webhooks(self, figures: Figures) -> int:
        """Events Revio delivered (a 2xx from us) that were not processed; and any delivery given up."""
        lost = 0
        for delivery in self.deliveries():
            if delivery["target"] != "webhook":
                continue
            figures.refused_deliveries += sum(
                1
                for attempt in delivery["attempts"]
                if attempt["status_code"] is None or not 200 <= attempt["status_code"] < 300
            )
            if delivery["status"] != "delivered":
                figures.problems.append(
                    f"delivery {delivery['id']} {delivery['event_type']}: {delivery['status']}"
                )
                lost += 1
                continue
            event = json.loads(delivery["body"])
            logged = WebhookLog.objects.filter(
                object_id=event["id"], event_type=event["event_type"], status__in=["processed", "ignored"]
            )
            if not logged.exists():
                figures.problems.append(f"delivery {delivery['id']} {delivery['event_type']} never processed")
                lost += 1
        stuck = list(
            WebhookLog.objects.exclude(status__in=["processed", "ignored"]).values_list(
                "id", "event_type", "status", "attempts", "next_attempt_at", "lease_expires_at", "last_error"
            )
        )
        for row in stuck:
            figures.problems.append(f"webhook log row not processed: {row[:6]} {row[6][-300:]!r}")
        return lost + len(stuck)

    def outcome(self) -> list[str]:
        """How each of the user's deposits and withdrawals ended, in the order they were made."""
        return [
            f"{txn.type} {txn.amount} {txn.status}"
            for txn in Transaction.objects.filter(user_id=self.user.id).order_by("created_at")
        ]
