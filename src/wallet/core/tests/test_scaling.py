"""Two web processes and two Celery workers on one PostgreSQL and Redis: nothing depends on a process.

Issue 10 (docs/scaling.md). The production processes are started from the container entrypoint
(`entrypoint.sh migrate|web|worker|manage`), with the production settings, against this test run's
PostgreSQL (a database of its own, `scaling_check`) and Redis (a database of its own), wired to the
session's Revio sandbox: Revio's Webhook object points at web process A, the purchases' success_callback
at web process B, so every deposit event reaches both processes and is processed by whichever worker takes
it. Concurrent traffic is split over A and B with httpx; the checks are the money, idempotency and token
rules that would break if any of them lived in one process's memory. Finally `ledger_verify` runs on the
same database.
"""

import base64
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis

from revio_sandbox.testing import SandboxProcess
from wallet.core.testing import unused_port

ROOT = Path(__file__).resolve().parents[4]
ENTRYPOINT = ROOT / "scripts" / "container" / "entrypoint.sh"
DATABASE = "scaling_check"
REDIS_DB = "/8"  # test_container.py uses /7; the suite itself /0
QUEUES = "default,webhooks,notifications,reconciliation,payouts,events"
PASSWORD = "scaling check password 1"
BANK = {
    "account_holder": "Thandi Nkosi",
    "account_number": "62001234567",
    "bank_code": "250655",
    "account_type": "current",
}


def _database_url(name: str) -> str:
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def _drop_database(name: str) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _recreate_database(name: str) -> None:
    _drop_database(name)
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


@dataclass
class Process:
    """One process started from the entrypoint, in a process group of its own."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.popen.poll() is None, f"{self.name} exited:\n{self.output()[-4000:]}"

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL if it lingers; then SIGKILL whatever of the group is left."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@dataclass
class Cluster:
    env: dict[str, str]
    sandbox: SandboxProcess
    web_a: str
    web_b: str
    webhook_id: str
    processes: list[Process] = field(default_factory=list)

    @property
    def webs(self) -> tuple[str, str]:
        return self.web_a, self.web_b

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.env["DATABASE_URL"]) as connection:
            return list(connection.execute(query, params).fetchall())

    def assert_alive(self) -> None:
        for process in self.processes:
            process.assert_alive()


def _start(env: dict[str, str], role: str, name: str, folder: Path, **extra: str) -> Process:
    state = folder / name
    state.mkdir()
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            ["sh", str(ENTRYPOINT), role],
            env={**env, "WALLET_STATE_DIR": str(state), **extra},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name=name, popen=popen, log=log)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def cluster(revio_sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("scaling")
    redis_url = urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path=REDIS_DB))
    port_a, port_b = unused_port(), unused_port()
    web_a, web_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "CELERY_", "REVIO_", "WEBHOOK_", "WITHDRAWAL_"))
    }
    bin_dir = Path(sys.executable).parent
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHON=sys.executable,
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Generated once, the same for every process: a token minted by A must verify on B.
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        JWT_SIGNING_KEY=secrets.token_urlsafe(48),
        FIELD_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        DATABASE_URL=_database_url(DATABASE),
        REDIS_URL=redis_url,
        WALLET_RUN_DIR=str(folder / "run"),
        EMAIL_FILE_PATH=str(folder / "emails"),
        LOG_LEVEL="WARNING",
        CELERY_LOG_LEVEL="INFO",
        # 30 withdrawals race below; the open-withdrawal cap is not what is being tested.
        WITHDRAWAL_MAX_OPEN="100",
        REVIO_BASE_URL=revio_sandbox.api_url,
        REVIO_API_KEY=revio_sandbox.api_key,
        REVIO_BRAND_ID=revio_sandbox.brand_id,
        REVIO_READ_TIMEOUT="5",
        REVIO_EFT_BASE_URL=revio_sandbox.eft_base_url,
        REVIO_EFT_TOKEN_URL=revio_sandbox.eft_token_url,
        REVIO_EFT_CLIENT_ID=revio_sandbox.eft_credentials()[0],
        REVIO_EFT_CLIENT_SECRET=revio_sandbox.eft_credentials()[1],
        # The sandbox, on this machine, is where Revio's EFT callbacks come from (issue 17 F1).
        REVIO_EFT_CALLBACK_ALLOWED_NETWORKS="127.0.0.0/8",
        # The cooling-off hold and the new-account step-up have their own tests; here money moves at once.
        DEPOSIT_HOLD_HOURS="0",
        DEPOSIT_HOLD_NEW_USER_HOURS="0",
        WITHDRAWAL_STEP_UP_NEW_ACCOUNT="false",
        # Revio's success_callback goes to B; its Webhook object (below) to A.
        PUBLIC_BASE_URL=web_b,
        # Production settings against the sandbox, as in docker-compose.yml: its purchases are test objects,
        # and the production checks that refuse the sandbox (plain HTTP, no EFT keys, file email) are named.
        REVIO_ACCEPT_TEST_OBJECTS="true",
        DJANGO_SILENCED_SYSTEM_CHECKS="wallet.E001,wallet.E002,wallet.E003,wallet.E006,wallet.E008,wallet.E009",
    )
    _recreate_database(DATABASE)
    redis.Redis.from_url(redis_url).flushdb()
    with revio_sandbox.api_client() as client:
        created = client.post(
            "webhooks/",
            json={"title": "scaling check", "all_events": True, "callback": f"{web_a}/api/v1/webhooks/revio"},
        )
        created.raise_for_status()
        webhook_id = str(created.json()["id"])
    env["REVIO_WEBHOOK_ID"] = webhook_id
    cluster = Cluster(env=env, sandbox=revio_sandbox, web_a=web_a, web_b=web_b, webhook_id=webhook_id)
    try:
        migrated = subprocess.run(
            ["sh", str(ENTRYPOINT), "migrate"],
            env={**env, "WALLET_STATE_DIR": str(folder / "migrate")},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        web = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"}
        cluster.processes += [
            _start(env, "web", "web-a", folder, WEB_BIND=f"127.0.0.1:{port_a}", **web),
            _start(env, "web", "web-b", folder, WEB_BIND=f"127.0.0.1:{port_b}", **web),
            _start(env, "worker", "worker-1", folder, CELERY_QUEUES=QUEUES, CELERY_HOSTNAME="one@%h"),
            _start(env, "worker", "worker-2", folder, CELERY_QUEUES=QUEUES, CELERY_HOSTNAME="two@%h"),
        ]
        for base in (web_a, web_b):
            wait_for(
                lambda base=base: cluster.assert_alive() or _answers(base),
                timeout=60,
                what=f"{base} to be ready",
                interval=0.2,
            )
        for worker in cluster.processes[2:]:
            wait_for(
                lambda worker=worker: cluster.assert_alive() or " ready." in worker.output(),
                timeout=60,
                what=f"{worker.name} to be ready",
                interval=0.2,
            )
        yield cluster
    finally:
        for process in cluster.processes:
            process.stop()
        with revio_sandbox.api_client() as client:
            client.delete(f"webhooks/{webhook_id}/")
        redis.Redis.from_url(redis_url).flushdb()
        _drop_database(DATABASE)


# -- helpers -----------------------------------------------------------------------------------------------


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


def register_and_login(cluster: Cluster) -> dict[str, str]:
    email = f"scaling-{uuid.uuid4().hex[:10]}@example.com"
    registered = httpx.post(
        f"{cluster.web_a}/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert registered.status_code == 202, registered.text
    pair = httpx.post(
        f"{cluster.web_b}/api/v1/auth/token", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert pair.status_code == 200, pair.text
    # Registration answers alike for new and taken emails (no id: F15); the user's id comes from /me.
    me = httpx.get(f"{cluster.web_a}/api/v1/me", headers=bearer(pair.json()["access"]), timeout=30)
    assert me.status_code == 200, me.text
    return {"email": email, "id": me.json()["id"], **pair.json()}


def balance(base: str, access: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/v1/balance", headers=bearer(access), timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def deposit_and_pay(cluster: Cluster, access: str, amount: int) -> tuple[str, str]:
    """Start a deposit on A and pay it at the sandbox; returns (deposit id, purchase id)."""
    created = httpx.post(
        f"{cluster.web_a}/api/v1/deposits", json={"amount": amount}, headers=bearer(access), timeout=30
    )
    assert created.status_code == 201, created.text
    deposit_id = created.json()["id"]
    [(purchase_id,)] = cluster.sql("SELECT provider_object_id FROM transactions WHERE id = %s", deposit_id)
    assert purchase_id
    cluster.sandbox.control.purchase_pay(purchase_id)
    return deposit_id, purchase_id


def fund(cluster: Cluster, access: str, amount: int) -> None:
    deposit_and_pay(cluster, access, amount)
    wait_for(
        lambda: balance(cluster.web_b, access)["available"] == amount,
        timeout=30,
        what="the deposit to be credited",
        interval=0.2,
    )


def all_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls in threads released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def withdraw(base: str, access: str, amount: int, key: str | None = None) -> Callable[[], httpx.Response]:
    headers = bearer(access) | ({"Idempotency-Key": key} if key else {})
    body = {"amount": amount, "bank_account": BANK}
    return lambda: httpx.post(f"{base}/api/v1/withdrawals", json=body, headers=headers, timeout=60)


# -- the checks --------------------------------------------------------------------------------------------


def test_refresh_tokens_rotate_once_across_processes(cluster: Cluster) -> None:
    # given: an account registered on A and logged in on B
    session = register_and_login(cluster)
    me = httpx.get(f"{cluster.web_a}/api/v1/me", headers=bearer(session["access"]), timeout=30)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == session["email"]

    # when: the refresh token is rotated on A
    rotated = httpx.post(
        f"{cluster.web_a}/api/v1/auth/token/refresh", json={"refresh": session["refresh"]}, timeout=30
    )
    assert rotated.status_code == 200, rotated.text
    pair = rotated.json()

    # then: B refuses the old one and accepts the new access token
    reused = httpx.post(
        f"{cluster.web_b}/api/v1/auth/token/refresh", json={"refresh": session["refresh"]}, timeout=30
    )
    assert reused.status_code == 401, reused.text
    assert (
        httpx.get(f"{cluster.web_b}/api/v1/me", headers=bearer(pair["access"]), timeout=30).status_code == 200
    )

    # and when: ten refreshes of the new token race, half on each process
    calls = [
        (
            lambda base=base: httpx.post(
                f"{base}/api/v1/auth/token/refresh", json={"refresh": pair["refresh"]}, timeout=30
            )
        )
        for base in cluster.webs * 5
    ]
    statuses = sorted(response.status_code for response in all_at_once(calls))

    # then: exactly one wins; the rest are refused as a reused token
    assert statuses == [200] + [401] * 9, statuses
    cluster.assert_alive()


def test_a_deposit_delivered_to_both_processes_is_credited_once(cluster: Cluster) -> None:
    # given: a deposit started on A and paid at Revio
    session = register_and_login(cluster)
    deposit_id, purchase_id = deposit_and_pay(cluster, session["access"], 12_345)

    # when: Revio delivers purchase.paid to the success_callback (B) and the Webhook object (A)
    deliveries = cluster.sandbox.control.wait_for_deliveries(
        lambda found: {d["target"] for d in found if d["status"] == "delivered"} == {"callback", "webhook"},
        timeout=30,
        object_id=purchase_id,
        event_type="purchase.paid",
    )

    # then: each process accepted its copy
    landed = {d["target"]: d["url"] for d in deliveries if d["status"] == "delivered"}
    assert landed["callback"].startswith(cluster.web_b), landed
    assert landed["webhook"].startswith(cluster.web_a), landed
    # and the workers credit it, read on B
    wait_for(
        lambda: balance(cluster.web_b, session["access"])["available"] == 12_345,
        timeout=30,
        what="the deposit to be credited",
        interval=0.2,
    )
    assert balance(cluster.web_a, session["access"]) == {
        "currency": "ZAR",
        "available": 12_345,
        "reserved": 0,
        "debt": 0,
        "hold": 0,
    }
    # once: one credit journal; the two copies were stored as one event (a duplicate counted)
    [(status,)] = cluster.sql("SELECT status FROM transactions WHERE id = %s", deposit_id)
    assert status == "completed"
    journals = cluster.sql(
        "SELECT count(*) FROM ledger_journals WHERE transaction_id = %s AND kind = 'deposit_credit'",
        deposit_id,
    )
    assert journals == [(1,)]
    logs = cluster.sql(
        "SELECT status, duplicates FROM webhook_logs WHERE object_id = %s AND event_type = 'purchase.paid'",
        purchase_id,
    )
    assert len(logs) == 1, logs
    assert logs[0][0] == "processed", logs
    assert logs[0][1] >= 1, logs
    # a little later nothing has changed (a second worker did not credit it again)
    time.sleep(1)
    assert balance(cluster.web_a, session["access"])["available"] == 12_345
    cluster.assert_alive()


def test_concurrent_withdrawals_on_two_processes_never_overdraw(cluster: Cluster) -> None:
    # given: a wallet of 20,000 whose cached balance both processes have read
    amount, funded = 3_000, 20_000
    covered = funded // amount  # 6
    session = register_and_login(cluster)
    access = session["access"]
    fund(cluster, access, funded)
    for base in cluster.webs:
        assert balance(base, access)["available"] == funded

    # when: 30 withdrawals of 3,000 (90,000 in all) race, half on each process
    responses = all_at_once([withdraw(base, access, amount) for base in cluster.webs * 15])

    # then: exactly as many as the balance covers are accepted, every other one is refused
    accepted = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(accepted) == covered, [(r.status_code, r.text) for r in refused]
    assert {r.status_code for r in refused} == {409}, [(r.status_code, r.text) for r in refused]
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_funds"}
    assert {r.json()["status"] for r in accepted} == {"pending"}  # reserved; the workers send the payouts
    ids = [r.json()["id"] for r in accepted]
    wait_for(
        lambda: (
            cluster.sql(
                "SELECT count(*) FROM transactions WHERE id = ANY(%s::uuid[]) AND status = 'processing'", ids
            )
            == [(covered,)]
        ),
        timeout=60,
        what="the payouts workers to send every accepted withdrawal's payout",
        interval=0.2,
    )
    # no overdraft, and both processes agree at once (the cache was invalidated for both)
    expected = {
        "currency": "ZAR",
        "available": funded - covered * amount,
        "reserved": covered * amount,
        "debt": 0,
        "hold": 0,
    }
    assert balance(cluster.web_a, access) == expected
    assert balance(cluster.web_b, access) == expected
    rows = cluster.sql(
        "SELECT b.available, b.reserved, (SELECT count(*) FROM transactions t "
        "WHERE t.user_id = b.user_id AND t.type = 'withdrawal') FROM balances b WHERE b.user_id = %s",
        session["id"],
    )
    assert rows == [(funded - covered * amount, covered * amount, covered)]
    cluster.assert_alive()


def test_an_idempotency_key_holds_across_processes(cluster: Cluster) -> None:
    # given: a funded wallet
    session = register_and_login(cluster)
    access = session["access"]
    fund(cluster, access, 20_000)

    # when: a withdrawal made on A is retried with the same key on B
    key = f"scaling-{uuid.uuid4()}"
    first = withdraw(cluster.web_a, access, 2_000, key)()
    replay = withdraw(cluster.web_b, access, 2_000, key)()

    # then: B replays A's response byte for byte, and there is one withdrawal
    assert first.status_code == 201, first.text
    assert replay.status_code == 201, replay.text
    assert replay.content == first.content
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers

    def withdrawals() -> int:
        [(count,)] = cluster.sql(
            "SELECT count(*) FROM transactions WHERE user_id = %s AND type = 'withdrawal'", session["id"]
        )
        return int(count)

    assert withdrawals() == 1

    # and when: one key is in flight on A and B at once (Revio's payout answer slowed to widen the window)
    cluster.sandbox.control.slow_next("eft.payments.create", delay_ms=1_500, count=2)
    try:
        key = f"scaling-{uuid.uuid4()}"
        racing = all_at_once([withdraw(base, access, 2_000, key) for base in cluster.webs])
    finally:
        cluster.sandbox.control.clear_faults()

    # then: one withdrawal; the other request is told it is in progress (or gets the replay)
    # (Since issue 18 the payout is sent after the answer, so the window is the reservation's transaction:
    # the replay is the likelier outcome.)
    outcomes = sorted((r.status_code, r.headers.get("Idempotent-Replayed", "")) for r in racing)
    assert outcomes in ([(201, ""), (409, "")], [(201, ""), (201, "true")]), [r.text for r in racing]
    if outcomes[1][0] == 409:
        loser = next(r for r in racing if r.status_code == 409)
        assert loser.json()["error"]["code"] == "request_in_progress", loser.text
    assert withdrawals() == 2
    # and afterwards either process replays the winner's answer
    winner = next(r for r in racing if r.status_code == 201 and "Idempotent-Replayed" not in r.headers)
    for base in cluster.webs:
        again = withdraw(base, access, 2_000, key)()
        assert again.status_code == 201
        assert again.content == winner.content
    assert withdrawals() == 2
    expected = {"currency": "ZAR", "available": 16_000, "reserved": 4_000, "debt": 0, "hold": 0}
    assert balance(cluster.web_a, access) == expected
    assert balance(cluster.web_b, access) == expected
    cluster.assert_alive()


def test_the_books_balance_after_all_of_it(cluster: Cluster) -> None:
    verified = subprocess.run(
        ["sh", str(ENTRYPOINT), "manage", "ledger_verify"],
        env={**cluster.env, "WALLET_STATE_DIR": str(Path(cluster.env["WALLET_RUN_DIR"]) / "verify")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger_verify: ok" in verified.stdout
    # every web process and worker is still up, and both workers took part
    cluster.assert_alive()
    for worker in cluster.processes[2:]:
        assert "succeeded in" in worker.output(), f"{worker.name} ran no task:\n{worker.output()[-2000:]}"
