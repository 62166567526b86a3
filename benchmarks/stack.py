"""Starting and watching the processes under benchmark: databases, gunicorn, Celery, the Revio sandbox.

Also the process monitor that records CPU time and peak RSS per process (psutil), grouped by role.
"""

# ruff: noqa: S603

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def recreate_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postmaster_pid(server_url: str) -> int | None:
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        text = (Path(str(row[0] if row else "")) / "postmaster.pid").read_text()
        return int(text.split()[0])
    except (OSError, psycopg.Error, ValueError, IndexError):
        return None


def server_versions(server_url: str, redis_url: str) -> dict[str, str]:
    import redis

    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg = str(row[0]) if row else "?"
    info: Any = redis.Redis.from_url(redis_url).info("server")
    return {
        "postgresql": pg,
        "redis": str(info.get("redis_version")),
        "redis_pid": str(info.get("process_id")),
    }


@dataclass
class Managed:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def start(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Managed:
    log = log_dir / f"{name}.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    return Managed(name, process, log)


def wait_http(url: str, managed: Managed, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if managed.process.poll() is not None:
            raise RuntimeError(f"{managed.name} exited ({managed.process.returncode}):\n{managed.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{managed.name} did not answer {url} within {timeout:.0f} s:\n{managed.tail()}")


# The worker the product runs (scripts/container/entrypoint.sh): gthread that tells the app how long each
# request queued for a thread, so the load-shedding middleware can shed what waited too long.
WORKER_CLASS = "wallet.core.http.gunicorn_worker.QueueTimedThreadWorker"


def gunicorn_command(app: str, port: int, workers: int, threads: int, config: bool) -> list[str]:
    command = [
        str(BIN / "gunicorn"), app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", WORKER_CLASS,
        "--backlog", "2048", "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning",
    ]  # fmt: skip
    if config:
        command += ["-c", str(ROOT / "benchmarks" / "gunicorn_conf.py")]
    return command


@dataclass
class ProcStat:
    group: str
    pid: int
    name: str
    base_cpu: float
    cpu: float = 0.0
    peak_rss: int = 0
    alive: bool = True


@dataclass
class Monitor:
    """Samples every process of each group (a root pid and its descendants) every `interval` seconds.

    CPU is user+system seconds since the monitor started (a process started later counts from zero).
    A process that exits between two samples loses its last fraction of a second; short-lived
    PostgreSQL backends (pgbench's connections) are therefore slightly under-counted.
    """

    roots: dict[str, list[int]] = field(default_factory=dict)
    interval: float = 1.0
    stats: dict[int, ProcStat] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, group: str, pid: int | None) -> None:
        if pid:
            with self._lock:
                self.roots.setdefault(group, []).append(pid)

    def start(self) -> None:
        self.started = time.time()
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.sample()

    def sample(self) -> None:
        with self._lock:
            roots = {group: list(pids) for group, pids in self.roots.items()}
        seen: set[int] = set()
        for group, pids in roots.items():
            for root in pids:
                try:
                    parent = psutil.Process(root)
                    procs = [parent, *parent.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        with proc.oneshot():
                            times = proc.cpu_times()
                            cpu = times.user + times.system
                            rss = proc.memory_info().rss
                            created = proc.create_time()
                        stat = self.stats.get(proc.pid)
                        if stat is None:
                            base = cpu if created < self.started else 0.0
                            stat = ProcStat(group, proc.pid, self._label(proc), base)
                            self.stats[proc.pid] = stat
                        stat.cpu = cpu - stat.base_cpu
                        stat.peak_rss = max(stat.peak_rss, rss)
                        seen.add(proc.pid)
        for pid, stat in self.stats.items():
            if pid not in seen:
                stat.alive = False

    @staticmethod
    def _label(proc: psutil.Process) -> str:
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.cmdline())[:120]
            return cmd or proc.name()
        return "?"

    def cpu_by_group(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for stat in list(self.stats.values()):
            totals[stat.group] = totals.get(stat.group, 0.0) + stat.cpu
        return totals

    def processes(self, group: str) -> list[ProcStat]:
        return [s for s in self.stats.values() if s.group == group]


@contextlib.contextmanager
def phase_cpu(monitor: Monitor, into: dict[str, Any]) -> Iterator[None]:
    monitor.sample()
    before = monitor.cpu_by_group()
    yield
    monitor.sample()
    after = monitor.cpu_by_group()
    into["cpu_s"] = {g: round(after.get(g, 0.0) - before.get(g, 0.0), 2) for g in after}
    # Peak RSS of a web worker so far: shows in which phase a worker's memory grew.
    masters = set(monitor.roots.get("web", []))
    web = [s.peak_rss for s in monitor.processes("web") if s.pid not in masters]
    if web:
        into["web_worker_peak_rss_mib_so_far"] = round(max(web) / (1024 * 1024), 1)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
