"""Run a command with real PostgreSQL and Redis servers, starting throwaway ones when none are given.

    python scripts/testenv.py [--durable] -- pytest ...
    python scripts/testenv.py --shell        # start them, print the exports, wait for Ctrl-C

If DATABASE_URL / REDIS_URL are set, those servers are used as they are. Otherwise each missing server is
started on a random free loopback port with its data in a temporary folder, and stopped (and its folder
removed) when the command ends. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
system user that Debian's package creates. Tests run with fsync off (nothing there needs to survive a
power cut); --durable keeps PostgreSQL's defaults for benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]), reverse=True
    )
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ServerError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with "
        "`sudo apt-get install postgresql` or set DATABASE_URL to a server you run."
    )


def _as_postgres_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix and uid/gid to run PostgreSQL with: as root, the `postgres` user."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServerError("Running as root needs the `postgres` user (apt-get install postgresql).") from exc
    return ["runuser", "-u", "postgres", "--"], entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def postgres_server(*, durable: bool) -> Iterator[str]:
    bindir = _postgres_bindir()
    prefix, uid, gid = _as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="wallet-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "postgres.log"
    sockets.mkdir()
    if uid is not None and gid is not None:
        for path in (root, sockets):
            os.chown(path, uid, gid)
    port = free_port()
    settings = [
        "-c listen_addresses=127.0.0.1",
        f"-c port={port}",
        f"-c unix_socket_directories={sockets}",
        "-c max_connections=300",
        "-c shared_buffers=256MB",
    ]
    if not durable:
        settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    try:
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "wallet",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(settings),
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "wallet", "wallet"],
            check=True,
        )
        yield f"postgres://wallet@127.0.0.1:{port}/wallet"
    except subprocess.CalledProcessError as exc:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise ServerError(f"PostgreSQL did not start: {exc}\n{tail}") from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerError(
            "redis-server was not found. Install it with `sudo apt-get install redis-server` "
            "or set REDIS_URL to a server you run."
        )
    root = Path(tempfile.mkdtemp(prefix="wallet-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ],
        stdout=(root / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, process, "Redis")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{name} exited at start with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServerError(f"{name} did not accept connections within {timeout:.0f} s")


@contextlib.contextmanager
def servers(*, durable: bool = False) -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL and REDIS_URL, starting the servers that are not configured already."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or stack.enter_context(
            postgres_server(durable=durable)
        )
        env["REDIS_URL"] = os.environ.get("REDIS_URL") or stack.enter_context(redis_server())
        yield env


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--durable", action="store_true", help="keep fsync on (benchmarks)")
    parser.add_argument("--shell", action="store_true", help="print the exports and wait for Ctrl-C")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command and not args.shell:
        parser.error("give a command after --, or --shell")

    # A SIGTERM (CI timeout, Ctrl-C in make) must still stop the servers: turn it into an exception.
    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        with servers(durable=args.durable) as env:
            if args.shell:
                for key, value in env.items():
                    print(f"export {key}={value}")
                print("# servers are up; Ctrl-C stops them", flush=True)
                while True:
                    time.sleep(3600)
            result = subprocess.run(command, env={**os.environ, **env}, check=False)
            return result.returncode
    except ServerError as exc:
        print(f"testenv: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
