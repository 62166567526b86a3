"""`make bench`: throughput, latency and memory of the real stack, next to baselines measured in the same run.

    .venv/bin/python benchmarks/run.py [--duration 15] [--pg-duration 10] [--users 1000] [--smoke] ...

Starts PostgreSQL (fsync on) and Redis as scripts/testenv.py does (or uses DATABASE_URL / REDIS_URL's
servers, in databases of its own), the wallet under gunicorn (gthread), a Celery worker and the Revio
sandbox; seeds users and balances through the wallet's services; measures the baselines (pg_test_fsync,
pgbench TPC-B, hot-row and spread scripts, a bare DRF TPC-B endpoint, a bare Django ping, a no-op Celery
task) and then each wallet path with a load generator in its own process (benchmarks/loadgen.py). Writes
benchmarks/results/latest.json, a PNG chart of latency percentiles, the results table in
docs/benchmarks.md and a pyinstrument profile; a full run also appends a line to
benchmarks/results/history.jsonl.
"""

# ruff: noqa: S603

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from benchmarks import baselines, history, report  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    Managed,
    Monitor,
    gunicorn_command,
    load_average,
    phase_cpu,
    postmaster_pid,
    recreate_database,
    server_versions,
    start,
    wait_http,
    with_redis_db,
)
from revio_sandbox.jsonb import dumps_bytes  # noqa: E402
from revio_sandbox.testing import SandboxProcess, free_port  # noqa: E402
from scripts.testenv import servers  # noqa: E402

PY = sys.executable
BANK = {
    "account_holder": "Bench Mark",
    "account_number": "62001234567",
    "bank_code": "250655",
    "account_type": "current",
}
PHASES = ("baselines", "bare", "withdrawals", "hot", "deposits", "webhooks", "reads", "overload", "profile")
NOOP_QUEUE = "bench"  # benchmarks/celery_noop.py QUEUE
WITHDRAWAL_BODY = json.dumps({"amount": 1000, "currency": "ZAR", "bank_account": BANK})


def say(message: str) -> None:
    sys.stdout.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stdout.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per load phase")
    parser.add_argument("--pg-duration", type=int, default=10, help="seconds per pgbench run")
    parser.add_argument("--users", type=int, default=500, help="wallets for the many-wallet phases")
    parser.add_argument("--webhook-rate", type=float, default=300.0)
    parser.add_argument("--read-rate", type=float, default=500.0)
    parser.add_argument("--replay-rate", type=float, default=500.0)
    parser.add_argument("--capacity-clients", type=int, default=16, help="closed-loop clients for capacity")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--overload-factor", type=float, default=2.0)
    parser.add_argument(
        "--overload-duration", type=float, default=60.0, help="seconds of overload (smoke: --duration)"
    )
    parser.add_argument("--overload-timeout", type=float, default=5.0, help="client timeout under overload")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=120.0,
        help="seconds after the webhook phase to wait for every acknowledged event to be credited",
    )
    parser.add_argument("--profile-requests", type=int, default=100)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    parser.add_argument("--chart", default=None, help="PNG path (default next to --out)")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--no-doc", action="store_true", help="do not touch docs/benchmarks.md (nor append to the history)"
    )
    parser.add_argument("--history", default=str(history.DEFAULT), help="JSONL a full run appends to")
    parser.add_argument("--db-prefix", default="bench")
    parser.add_argument("--smoke", action="store_true", help="tiny loads: exercise every phase quickly")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset to run while working on one path (default all: {','.join(PHASES)})",
    )
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.smoke:
        args.duration = min(args.duration, 1.0)
        args.pg_duration = min(args.pg_duration, 1)
        args.users = min(args.users, 10)
        args.webhook_rate = min(args.webhook_rate, 20.0)
        args.read_rate = min(args.read_rate, 40.0)
        args.replay_rate = min(args.replay_rate, 40.0)
        args.capacity_clients = min(args.capacity_clients, 4)
        args.workers = min(args.workers, 2)
        args.threads = min(args.threads, 2)
        args.celery_concurrency = 1
        args.pgbench_scale = 1
        args.settle_timeout = min(args.settle_timeout, 30.0)
        args.overload_duration = args.duration
        args.profile_requests = min(args.profile_requests, 5)
    return args


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="wallet-bench-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.managed: list[Managed] = []
        self.monitor = Monitor()
        self.results: dict[str, Any] = {"phases": {}}
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    # -- helpers ---------------------------------------------------------------------------------------

    def loadgen(self, spec: dict[str, Any], name: str) -> dict[str, Any]:
        spec_path, out_path = self.tmp / f"{name}.spec.json", self.tmp / f"{name}.out.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.run(
            [PY, str(ROOT / "benchmarks" / "loadgen.py"), str(spec_path), str(out_path)],
            check=False,
            timeout=float(spec["duration"]) + 180,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen {name} failed:\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out_path.read_text())
        return result

    def drive(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one load phase with the counters and CPU recorded around it."""
        counters_before = self.counters()
        self.redis.delete("bench:lockhold")
        entry: dict[str, Any] = {"load_avg_start": load_average()}
        with phase_cpu(self.monitor, entry):
            entry.update(self.loadgen(spec, name))
        entry["cpu_s"]["loadgen"] = entry.get("loadgen_cpu_s")
        entry["load_avg_end"] = load_average()
        after = self.counters()
        entry["serialization_retries"] = after["ser"] - counters_before["ser"]
        entry["deadlock_retries"] = after["dead"] - counters_before["dead"]
        entry["conflicts_given_up"] = after["gaveup"] - counters_before["gaveup"]
        holds = [float(x) for x in self.redis.lrange("bench:lockhold", 0, -1)]
        if holds:
            from benchmarks.loadgen import percentiles

            entry["lock_hold_ms"] = {"samples": len(holds), **percentiles(holds)}
        entry.pop("first_ok_body", None)
        self.results["phases"][name] = entry
        lat = entry["latency_ms"]
        say(
            f"{name}: {entry['ok_per_s']}/s ok of {entry['sent']} sent, status {entry['status']}, "
            f"shed {entry['shed_share']:.1%}, p50 {lat['p50']} p99 {lat['p99']} ms (all requests), "
            "web worker RSS so far "
            f"{entry.get('web_worker_peak_rss_mib_so_far')} MiB"
        )
        return entry

    def counters(self) -> dict[str, int]:
        def read(name: str) -> int:
            value = self.redis.get(f":1:metrics:{name}")
            return int(value) if value else 0

        return {
            "ser": read("db_serialization_failure_retries"),
            "dead": read("db_deadlock_detected_retries"),
            "gaveup": read("db_conflicts_given_up"),
        }

    def spec(self, base_url: str, requests: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        spec = {"base_url": base_url, "duration": self.args.duration, "timeout": 15.0, "requests": requests}
        spec.update(kw)
        return spec

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.results["load_avg_start"] = load_average()
        self.results["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results["args"] = {k: v for k, v in vars(self.args).items() if k not in {"out", "doc", "chart"}}
        durable = not os.environ.get("DATABASE_URL")
        say(f"starting PostgreSQL ({'fsync on' if durable else 'given server'}) and Redis")
        try:
            with servers(durable=durable) as urls:
                self.results["fsync"] = "on" if durable else "as configured by DATABASE_URL's server"
                self._run(urls)
        finally:
            for managed in reversed(self.managed):
                managed.stop()
            if hasattr(self, "sandbox"):
                self.sandbox.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.results["load_avg_end"] = load_average()
        self.results["wall_s"] = round(time.monotonic() - t0, 1)
        return self.results

    def _run(self, urls: dict[str, str]) -> None:
        args = self.args
        server_url = urls["DATABASE_URL"]
        wallet_db = recreate_database(server_url, f"{args.db_prefix}_wallet")
        pgbench_db = recreate_database(server_url, f"{args.db_prefix}_pgbench")
        redis_url = with_redis_db(urls["REDIS_URL"], 7)
        self.redis = redis.Redis.from_url(redis_url)
        self.redis.flushdb()
        versions = server_versions(server_url, redis_url)
        self.results["machine"] = machine(versions)
        self.monitor.add("postgres", postmaster_pid(server_url))
        self.monitor.add("redis", int(versions["redis_pid"]))

        say("starting the Revio sandbox (EFT payments settle after 3600 s)")
        self.sandbox = SandboxProcess(time_scale=1.0, payout_delay=3600.0)
        self.sandbox.start()
        self.monitor.add("sandbox", self.sandbox._process.pid if self.sandbox._process else None)

        web_port, bare_port = free_port(), free_port()
        public_pem = (
            self.rsa_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.bare_url = f"http://127.0.0.1:{bare_port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),  # as the Dockerfile sets it
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
            "JWT_ACCESS_TOKEN_MINUTES": "600",
            "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": wallet_db,
            "REDIS_URL": redis_url,
            "BENCH_REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "REVIO_BASE_URL": self.sandbox.api_url,
            "REVIO_API_KEY": self.sandbox.api_key,
            "REVIO_BRAND_ID": self.sandbox.brand_id,
            "REVIO_PUBLIC_KEY": public_pem,
            "REVIO_WEBHOOK_PUBLIC_KEY": "",
            # The sandbox's purchases are test objects, which production settings refuse to credit (they
            # would be flagged for review and the settle would measure nothing).
            "REVIO_ACCEPT_TEST_OBJECTS": "true",
            # The load withdraws to fresh accounts at once: no new-account step-up, no cooling-off hold.
            "WITHDRAWAL_STEP_UP_NEW_ACCOUNT": "false",
            "DEPOSIT_HOLD_HOURS": "0",
            "DEPOSIT_HOLD_NEW_USER_HOURS": "0",
            "REVIO_EFT_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "REVIO_WEBHOOK_ID": "",
            # Withdrawals are paid through the sandbox's EFT payments API (OAuth2; one token per run).
            "REVIO_EFT_BASE_URL": self.sandbox.eft_base_url,
            "REVIO_EFT_TOKEN_URL": self.sandbox.eft_token_url,
            "REVIO_EFT_CLIENT_ID": self.sandbox.eft_credentials()[0],
            "REVIO_EFT_CLIENT_SECRET": self.sandbox.eft_credentials()[1],
            # The sandbox's success_callback deliveries are signed with its own key, which we replaced
            # with ours: send them to a closed port instead of letting them be refused during the run.
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "EMAIL_FILE_PATH": str(self.tmp / "emails"),
            # Risk limits sized for a load test (thousands of withdrawals per wallet per run).
            "WITHDRAWAL_MAX_OPEN": "100000000",
            "WITHDRAWAL_DAILY_MAX_AMOUNT": str(10**15),
            "DEPOSIT_MAX_AMOUNT": str(10**12),
            # Rate limits stay in the path (each request still checks its Redis counter); only the ceilings
            # are raised, so the benchmark measures the work rather than the per-user policy (60/min).
            "RATE_LIMIT_MONEY_WRITE_USER": "100000000/min",
            "RATE_LIMIT_WEBHOOK_SOURCE": "100000000/min",
            "BENCH_PGBENCH_URL": pgbench_db,
            "BENCH_PGBENCH_SCALE": str(args.pgbench_scale),
        }
        for key in ("SENDGRID_API_KEY", "SENTRY_DSN", "DATABASE_REPLICA_URL"):
            self.env.pop(key, None)

        say("migrating")
        migrated = self.manage("migrate", "--no-input", "-v", "0")
        if migrated.returncode:
            raise RuntimeError(f"migrate failed:\n{migrated.stderr[-3000:]}")
        say(f"seeding {args.users} wallets and one hot wallet through the deposit service")
        seed_path = self.tmp / "seed.json"
        t = time.monotonic()
        seeded = subprocess.run(
            [PY, str(ROOT / "benchmarks" / "seed.py"), "seed", str(seed_path), "--users", str(args.users)],
            env=self.env, cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if seeded.returncode:
            raise RuntimeError(f"seeding failed:\n{seeded.stderr[-3000:]}")
        self.seed = json.loads(seed_path.read_text())
        self.results["seed"] = {
            "wallets": args.users,
            "hot_wallets": 1,
            "seconds": round(time.monotonic() - t, 1),
        }

        self.monitor.start()
        self.results["baselines"] = base = {}
        if "bare" in args.phases and "baselines" not in args.phases:
            baselines.pgbench_init(pgbench_db, args.pgbench_scale)  # the bare TPC-B endpoint's tables
        if "baselines" in args.phases:
            say("baselines: pg_test_fsync and pgbench")
            base["pg_test_fsync"] = baselines.pg_test_fsync(seconds=1)
            baselines.pgbench_init(pgbench_db, args.pgbench_scale)
            with phase_cpu(self.monitor, base):
                base.update(baselines.all_pgbench(pgbench_db, seconds=args.pg_duration))
            base["pgbench_scale"] = args.pgbench_scale
            say(
                "pgbench: "
                + ", ".join(f"{k} {v['tps']}" for k, v in base.items() if isinstance(v, dict) and "tps" in v)
            )

        say(f"starting gunicorn ({args.workers} x {args.threads} threads, gthread queue-timed) and Celery")
        web = start(
            "web",
            gunicorn_command("config.wsgi", web_port, args.workers, args.threads, True),
            self.env,
            self.logs,
        )
        bare_command = gunicorn_command("benchmarks.bare.wsgi", bare_port, args.workers, args.threads, False)
        bare = start("bare", bare_command, self.env, self.logs)
        worker = start(
            "celery",
            [
                # The product's app plus one no-op task for the Celery baseline (benchmarks/celery_noop.py).
                str(Path(PY).parent / "celery"), "-A", "benchmarks.celery_noop", "worker",
                "--loglevel", "WARNING",
                "--concurrency", str(args.celery_concurrency), "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
                "-Q", f"default,webhooks,notifications,reconciliation,payouts,events,{NOOP_QUEUE}",
            ],
            self.env,
            self.logs,
        )  # fmt: skip
        self.managed += [web, bare, worker]
        wait_http(f"{self.web_url}/healthz", web)
        wait_http(f"{self.bare_url}/tpcb", bare)
        self.monitor.add("web", web.process.pid)
        self.monitor.add("bare", bare.process.pid)
        self.monitor.add("celery", worker.process.pid)
        self.warm_up()

        phases = args.phases
        if "bare" in phases:
            self.phase_bare()
        capacity = self.phase_withdrawals() if "withdrawals" in phases or "overload" in phases else 0.0
        if "hot" in phases:
            self.phase_hot()
        if "deposits" in phases or "webhooks" in phases:
            self.phase_deposits()
        if "webhooks" in phases:
            self.phase_webhooks()
        if "reads" in phases:
            self.phase_reads_and_replays()
        if "overload" in phases:
            self.phase_overload(capacity)
        self.monitor.stop()
        self.check()
        self.memory_and_cpu()
        if "profile" in phases:
            self.profile()

    def warm_up(self) -> None:
        """A few requests per endpoint so every worker has imported its code and opened connections."""
        token = self.seed["users"][0]["token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=self.web_url, timeout=30) as client:
            for _ in range(self.args.workers * 3):
                client.get("/api/v1/balance", headers=headers)
        with httpx.Client(base_url=self.bare_url, timeout=30) as client:
            for _ in range(self.args.workers * 3):
                client.post("/tpcb", json={})
                client.get("/ping")

    def withdrawal_requests(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "method": "POST",
                "path": "/api/v1/withdrawals",
                "headers": {"Authorization": f"Bearer {u['token']}", "Content-Type": "application/json"},
                "body": WITHDRAWAL_BODY,
            }
            for u in users
        ]

    def phase_bare(self) -> None:
        clients = self.args.capacity_clients
        say("bare Django ping (plain view, no DRF, no database): the framework's floor")
        ping = [{"method": "GET", "path": "/ping", "headers": {}}]
        self.drive("bare_django_ping", self.spec(self.bare_url, ping, mode="closed", concurrency=clients))
        say("bare DRF TPC-B endpoint (framework baseline)")
        requests = [
            {"method": "POST", "path": "/tpcb", "headers": {"Content-Type": "application/json"}, "body": "{}"}
        ]
        self.drive("bare_drf_tpcb", self.spec(self.bare_url, requests, mode="closed", concurrency=clients))
        self.celery_noop()

    def celery_noop(self) -> None:
        """Round trips enqueue -> executed of a no-op task on the wallet's own (idle) Celery worker."""
        runs = {"c1": 1, f"c{self.args.capacity_clients}": self.args.capacity_clients}
        out: dict[str, Any] = {}
        for name, clients in runs.items():
            say(f"no-op Celery task round trips, {clients} client(s)")
            path = self.tmp / f"celery_noop_{name}.json"
            proc = subprocess.run(
                [PY, str(ROOT / "benchmarks" / "celery_noop.py"), str(path), "--clients", str(clients),
                 "--duration", str(self.args.duration)],
                env=self.env, cwd=ROOT, capture_output=True, text=True, check=False,
                timeout=self.args.duration + 120,
            )  # fmt: skip
            if proc.returncode:
                raise RuntimeError(f"celery no-op baseline failed:\n{proc.stderr[-3000:]}")
            out[name] = json.loads(path.read_text())
            say(f"celery no-op {name}: {out[name]['tasks_per_s']}/s, latency {out[name]['latency_ms']}")
        self.results["baselines"]["celery_noop"] = out

    def phase_withdrawals(self) -> float:
        say("withdrawals across many wallets: capacity (closed loop), then latency (open loop at 70 %)")
        requests = self.withdrawal_requests(self.seed["users"])
        cap = self.drive(
            "withdrawals_many_capacity",
            self.spec(
                self.web_url, requests, mode="closed", concurrency=self.args.capacity_clients,
                unique_idempotency_key=True,
            ),
        )  # fmt: skip
        capacity = max(1.0, float(cap["ok_per_s"]))
        self.drive(
            "withdrawals_many_open",
            self.spec(
                self.web_url,
                requests,
                mode="open",
                rate=round(0.7 * capacity, 1),
                unique_idempotency_key=True,
            ),
        )
        return capacity

    def phase_hot(self) -> None:
        requests = self.withdrawal_requests([self.seed["hot"]])
        for clients in (8, 32):
            say(f"one hot wallet, {clients} closed-loop clients")
            self.drive(
                f"withdrawals_hot_c{clients}",
                self.spec(
                    self.web_url, requests, mode="closed", concurrency=clients, unique_idempotency_key=True
                ),
            )

    def phase_deposits(self) -> None:
        say("deposits (each creates a Revio purchase at the sandbox)")
        requests = [
            {
                "method": "POST",
                "path": "/api/v1/deposits",
                "headers": {"Authorization": f"Bearer {u['token']}", "Content-Type": "application/json"},
                "body": json.dumps({"amount": 5000, "currency": "ZAR"}),
            }
            for u in self.seed["users"]
        ]
        cap = self.drive(
            "deposits_capacity",
            self.spec(self.web_url, requests, mode="closed", concurrency=self.args.capacity_clients),
        )
        self.drive(
            "deposits_open",
            self.spec(
                self.web_url, requests, mode="open", rate=round(max(1.0, 0.7 * float(cap["ok_per_s"])), 1)
            ),
        )

    def phase_webhooks(self) -> None:
        args = self.args
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, provider_object_id, amount FROM transactions WHERE type = 'deposit' "
                "AND status = 'pending' AND provider_object_id IS NOT NULL "
                "AND provider_object_id NOT LIKE 'bench-seed-%%'"
            ).fetchall()
        wanted = max(1, int(args.webhook_rate * args.duration))
        deposits = rows[:wanted]
        say(f"paying {len(deposits)} deposits at the sandbox (control API), then signing their events")
        asyncio.run(pay_all(self.sandbox.base_url, [str(r[1]) for r in deposits]))
        now = int(time.time())
        signer = self.rsa_key
        requests = []
        for deposit_id, purchase_id, _amount in deposits:
            body = dumps_bytes(
                {
                    "id": str(purchase_id),
                    "type": "purchase",
                    "event_type": "purchase.paid",
                    "status": "paid",
                    "reference": str(deposit_id),
                    "updated_on": now,
                    "created_on": now - 60,
                }
            )
            signature = base64.b64encode(signer.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
            requests.append(
                {
                    "method": "POST",
                    "path": "/api/v1/webhooks/revio",
                    "headers": {"Content-Type": "application/json", "X-Signature": signature},
                    "body": body.decode(),
                }
            )
        say(
            f"webhooks at {args.webhook_rate}/s offered "
            f"({len(requests)} distinct events, repeats are duplicates)"
        )
        entry = self.drive(
            "webhooks",
            self.spec(self.web_url, requests, mode="open", rate=args.webhook_rate, records=True),
        )
        records = entry.pop("records", [])
        acked: dict[str, float] = {}
        for index, status, _latency, done in records:
            deposit_id = str(deposits[index % len(deposits)][0])
            if status == 200 and deposit_id not in acked:
                acked[deposit_id] = done
        entry["distinct_events"] = len(deposits)
        entry["duplicates_sent"] = max(0, entry["sent"] - len(deposits))
        entry.update(self.settle(acked))

    def settle(self, acked: dict[str, float]) -> dict[str, Any]:
        """Ack -> `deposit_credit` journal for EVERY acknowledged event, waiting until all are credited or
        `--settle-timeout` seconds have passed since the webhook phase ended.

        An event not credited by then counts at the limit (its settle time is at least that), so the
        percentiles cover every acknowledged event. The backlog still open in the log is measured first; only
        then, so that it does not take the CPU of the next phases, is it set aside (counted; in production
        the drain would go on with it).
        """
        from benchmarks.loadgen import percentiles

        limit = self.args.settle_timeout
        say(f"waiting up to {limit:.0f} s for all {len(acked)} acknowledged deposits to be credited")
        started = time.time()
        deadline = time.monotonic() + limit
        ids = list(acked)
        credited: dict[str, float] = {}
        while True:
            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                found = conn.execute(
                    "SELECT transaction_id::text, extract(epoch FROM created_at) FROM ledger_journals "
                    "WHERE kind = 'deposit_credit' AND transaction_id = ANY(%s::uuid[])",
                    [ids],
                ).fetchall()
            credited = {str(r[0]): float(r[1]) for r in found}
            if len(credited) >= len(ids) or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        waited_until = time.time()
        settle = [(credited.get(d, waited_until) - acked[d]) * 1000 for d in ids]
        out: dict[str, Any] = {
            "settle_ms": {
                "acked": len(ids),
                "credited": len(credited),
                "not_credited_in_time": len(ids) - len(credited),
                "limit_s": limit,
                "waited_s": round(waited_until - started, 1),
                **percentiles(settle),
            }
        }
        if credited:
            span = max(credited.values()) - min(acked.values())
            out["credits_per_s"] = round(len(credited) / span, 1) if span > 0 else None
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            rows = conn.execute("SELECT status, count(*) FROM webhook_logs GROUP BY status").fetchall()
            # What processing did, most frequent first: says why an event was processed but not credited.
            results = conn.execute(
                "SELECT left(result, 120), count(*) FROM webhook_logs GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
            ).fetchall()
        out["webhook_logs_by_status"] = {str(r[0]): int(r[1]) for r in rows}
        out["webhook_logs_top_results"] = {str(r[0]): int(r[1]) for r in results}
        # The log is the queue (docs/adr/0019): the backlog is its open rows, not broker messages.
        open_statuses = ("received", "failed", "processing")
        by_status = out["webhook_logs_by_status"]
        out["backlog_queued_after_limit"] = sum(by_status.get(status, 0) for status in open_statuses)
        if out["backlog_queued_after_limit"]:
            self.redis.delete("webhooks")  # drain messages still queued
            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(
                    "UPDATE webhook_logs SET status = 'ignored', "
                    "result = 'bench: left after the settle limit' WHERE status = ANY(%s)",
                    [list(open_statuses)],
                )
        say(
            f"settle over all acknowledged events: {out['settle_ms']}; open in the log after the limit "
            f"{out['backlog_queued_after_limit']} (set aside now); webhook_logs {by_status}"
        )
        return out

    def phase_reads_and_replays(self) -> None:
        args = self.args
        say(f"balance reads at {args.read_rate}/s (JWT, cached balance)")
        reads = [
            {"method": "GET", "path": "/api/v1/balance", "headers": {"Authorization": f"Bearer {u['token']}"}}
            for u in self.seed["users"]
        ]
        self.drive("balance_reads", self.spec(self.web_url, reads, mode="open", rate=args.read_rate))
        say(f"idempotent replays at {args.replay_rate}/s (one key resent)")
        user = self.seed["users"][0]
        headers = {
            "Authorization": f"Bearer {user['token']}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"bench-replay-{uuid.uuid4().hex}",
        }
        first = httpx.post(
            f"{self.web_url}/api/v1/withdrawals", headers=headers, content=WITHDRAWAL_BODY, timeout=30
        )
        replay = [
            {"method": "POST", "path": "/api/v1/withdrawals", "headers": headers, "body": WITHDRAWAL_BODY}
        ]
        entry = self.drive(
            "idempotent_replays", self.spec(self.web_url, replay, mode="open", rate=args.replay_rate)
        )
        entry["first_status"] = first.status_code

    def phase_overload(self, capacity: float) -> None:
        args = self.args
        rate = round(args.overload_factor * capacity, 1)
        say(
            f"overload: withdrawals offered at {rate}/s ({args.overload_factor} x peak {capacity}/s) "
            f"for {args.overload_duration:.0f} s"
        )
        entry = self.drive(
            "overload",
            self.spec(
                self.web_url, self.withdrawal_requests(self.seed["users"]), mode="open", rate=rate,
                unique_idempotency_key=True, timeout=args.overload_timeout, max_connections=1024,
                duration=args.overload_duration,
            ),
        )  # fmt: skip
        entry["capacity_per_s"] = capacity
        entry["goodput_ratio"] = round(entry["ok_per_s"] / capacity, 3)

    def check(self) -> None:
        say("checks: overdrafts, ledger_verify")
        out = self.tmp / "check.json"
        subprocess.run(
            [PY, str(ROOT / "benchmarks" / "seed.py"), "check", str(out)],
            env=self.env, cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        checked = json.loads(out.read_text())
        verify = self.manage("ledger_verify")
        checked["ledger_verify_exit"] = verify.returncode
        checked["ledger_verify_output"] = (verify.stdout + verify.stderr)[-500:]
        checked["overdrafts"] = checked["negative_balances"]
        counters = self.counters()
        checked["serialization_retries_total"] = counters["ser"]
        checked["deadlock_retries_total"] = counters["dead"]
        checked["conflicts_given_up_total"] = counters["gaveup"]
        self.results["checks"] = checked
        say(f"ledger_verify exit {verify.returncode}; overdrafts {checked['overdrafts']}")

    def memory_and_cpu(self) -> None:
        mib = 1024 * 1024
        memory: dict[str, Any] = {}
        for group in ("web", "celery", "bare", "sandbox"):
            procs = self.monitor.processes(group)
            memory[group] = [
                {"pid": p.pid, "role": role(group, p, procs), "peak_rss_mib": round(p.peak_rss / mib, 1)}
                for p in sorted(procs, key=lambda p: p.pid)
            ]
        loadgens = [p for p in self.results["phases"].values() if "loadgen_peak_rss_mib" in p]
        memory["loadgen_peak_rss_mib"] = max((p["loadgen_peak_rss_mib"] for p in loadgens), default=None)
        self.results["memory"] = memory
        cpu = {g: round(v, 2) for g, v in self.monitor.cpu_by_group().items()}
        cpu["loadgen"] = round(sum(p.get("loadgen_cpu_s") or 0 for p in loadgens), 2)
        self.results["cpu_s_total"] = cpu
        self.results["cpu_s_by_process"] = [
            {"group": s.group, "pid": s.pid, "cpu_s": round(s.cpu, 2), "name": s.name[:80]}
            for s in sorted(self.monitor.stats.values(), key=lambda s: -s.cpu)
            if s.cpu >= 0.05
        ][:40]

    def profile(self) -> None:
        say(f"profiling POST /withdrawals in-process ({self.args.profile_requests} requests, pyinstrument)")
        out_dir = Path(self.args.out).parent
        seed_path = self.tmp / "seed.json"
        proc = subprocess.run(
            [PY, str(ROOT / "benchmarks" / "profile_path.py"), str(seed_path), str(out_dir),
             "--requests", str(self.args.profile_requests)],
            env=self.env, cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode:
            self.results["profile"] = {"error": proc.stderr[-2000:]}
            return
        self.results["profile"] = json.loads((out_dir / "profile_summary.json").read_text())


async def pay_all(base_url: str, purchase_ids: list[str]) -> None:
    semaphore = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=f"{base_url}/_sandbox/", timeout=30) as client:

        async def pay(purchase_id: str) -> None:
            async with semaphore:
                response = await client.post(f"purchases/{purchase_id}/pay")
                response.raise_for_status()

        await asyncio.gather(*(pay(p) for p in purchase_ids))


def role(group: str, proc: Any, procs: list[Any]) -> str:
    pids = {p.pid for p in procs}
    try:
        parent = psutil.Process(proc.pid).ppid()
    except psutil.Error:
        parent = None
    if group in {"web", "bare"}:
        return "worker" if parent in pids else "master"
    if group == "celery":
        return "pool child" if parent in pids else "main"
    return group


def machine(versions: dict[str, str]) -> dict[str, Any]:
    mem = psutil.virtual_memory()
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(mem.total / 1024**3, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgresql": versions["postgresql"],
        "redis": versions["redis"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    partial = set(args.phases) != set(PHASES)
    if partial:
        # A run of some phases is for working on one path: it never replaces the full run's results,
        # whatever --out says, and never rewrites the page (nor appends to the history).
        args.no_doc = True
        if args.out == parse_args([]).out:
            args.out = str(Path(args.out).with_name("partial.json"))
            args.chart = args.chart or str(Path(args.out).with_name("partial.png"))
    started = time.monotonic()
    results = Bench(args).run()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = Path(args.chart) if args.chart else out.with_name("latency.png")
    results["targets"] = report.targets(results)
    report.chart(results, chart)
    results["chart"] = chart.name
    out.write_text(json.dumps(results, indent=2, default=str))
    table = report.markdown(results)
    if not args.no_doc:
        report.write_doc(Path(args.doc), table)
    if history.is_full_run(args, PHASES):
        line = history.append(Path(args.history), results)
        say(f"appended this run to {args.history} (git {line['git_sha']}, dirty {line['git_dirty']})")
    sys.stdout.write("\n" + table + "\n")
    say(f"done in {time.monotonic() - started:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
