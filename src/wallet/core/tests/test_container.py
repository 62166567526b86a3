"""The image's install and start steps, run outside Docker against this test run's PostgreSQL and Redis.

No Docker engine runs here, so the Dockerfile is linted (hadolint) and the scripts it calls are run as the
image runs them: `install.sh deps|project|static` build a virtualenv from uv.lock without the dev group,
then `entrypoint.sh migrate` and `entrypoint.sh web` start from that virtualenv with the production
settings on a database of their own (`container_check`), and the probes must answer. The compose file,
the CI workflow and the Railway config are checked against their schemas and against the entrypoint.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import check_jsonschema
import httpx
import jsonschema
import psycopg
import pytest
from ruamel.yaml import YAML

from wallet.core.testing import unused_port

ROOT = Path(__file__).resolve().parents[4]
CONTAINER = ROOT / "scripts" / "container"
VENDORED_SCHEMAS = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
DATABASE = "container_check"
METRICS_TOKEN = "container-check-metrics-token"
ENTRYPOINT_COMMANDS = {"web", "worker", "beat", "migrate", "release", "sandbox", "healthcheck"}


def _database_url(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database(name: str) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _drop_database(name: str) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Image:
    """A virtualenv and static folder built by the image's install script, and the env to run it with."""

    venv: Path
    env: dict[str, str]


def _uv() -> str:
    found = shutil.which("uv", path=str(ROOT / ".tools" / "bin")) or shutil.which("uv")
    assert found, "uv is needed to build the image's environment (make install puts it in .tools/bin)"
    return found


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    base = tmp_path_factory.mktemp("image")
    venv, static_root, state = base / "venv", base / "staticfiles", base / "state"
    build_env = {
        **os.environ,
        "UV": _uv(),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        # Everything is in uv's cache already (make install); the test must not depend on the network.
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
        "DJANGO_STATIC_ROOT": str(static_root),
        "PYTHON": str(venv / "bin" / "python"),
    }
    # As in the Dockerfile's build stage: no settings module given, so the production one is used.
    for name in ("VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"):
        build_env.pop(name, None)
    for step in ("deps", "project", "static"):
        result = subprocess.run(
            ["sh", str(CONTAINER / "install.sh"), step],
            env=build_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"install.sh {step} failed:\n{result.stdout}\n{result.stderr}"

    _recreate_database(DATABASE)
    redis = urlsplit(os.environ["REDIS_URL"])
    run_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "VIRTUAL_ENV", "CELERY_"))
    }
    run_env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHON=str(venv / "bin" / "python"),
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="container-check-secret-key-long-enough-for-django-checks",
        JWT_SIGNING_KEY="container-check-jwt-signing-key-of-at-least-32-bytes",
        FIELD_ENCRYPTION_KEYS="Y29udGFpbmVyLWNoZWNrLWZpZWxkLWtleS0zMmJ5dGU=",
        DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1",
        DJANGO_STATIC_ROOT=str(static_root),
        DATABASE_URL=_database_url(DATABASE),
        # A Redis database of its own, so its cache and queues never meet the suite's.
        REDIS_URL=urlunsplit(redis._replace(path="/7")),
        WALLET_STATE_DIR=str(state),
        WALLET_RUN_DIR=str(state),
        METRICS_TOKEN=METRICS_TOKEN,
        LOG_LEVEL="WARNING",
        # What production must set besides (docs/deploy.md); the web process refuses to start without.
        REVIO_BASE_URL="https://gate.revio.example/api/v1/",
        REVIO_API_KEY="container-check-api-key",
        REVIO_BRAND_ID="5b0a8c0e-7d1e-4c53-9f0e-2f3c4a5b6c7d",
        REVIO_EFT_BASE_URL="https://eft.revio.example/",
        REVIO_EFT_TOKEN_URL="https://eft.revio.example/oauth2/token",
        REVIO_EFT_CLIENT_ID="container-check-eft-client",
        REVIO_EFT_CLIENT_SECRET="container-check-eft-secret",
        REVIO_EFT_CALLBACK_ALLOWED_NETWORKS="203.0.113.0/24",
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        DJANGO_DEFAULT_FROM_EMAIL="Wallet <no-reply@example.com>",
        FRONTEND_URL="https://app.example.com",
        PUBLIC_BASE_URL="https://api.example.com",
    )
    for name in (
        "REVIO_ACCEPT_TEST_OBJECTS",
        "TRUSTED_PROXY_COUNT",
        "FORWARDED_ALLOW_IPS",
        "REVIO_CONFIG_FILE",
    ):
        run_env.pop(name, None)
    try:
        yield Image(venv=venv, env=run_env)
    finally:
        _drop_database(DATABASE)


def _entrypoint(
    image: Image, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(CONTAINER / "entrypoint.sh"), *args],
        env=env or image.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class TestInstallSteps:
    def test_the_runtime_environment_has_the_servers_but_no_dev_tools(self, image: Image) -> None:
        bin_dir = image.venv / "bin"
        for tool in ("gunicorn", "celery", "revio-sandbox", "python"):
            assert (bin_dir / tool).exists(), tool
        assert not (bin_dir / "pytest").exists()
        assert not (bin_dir / "mypy").exists()
        probe = subprocess.run(
            [str(bin_dir / "python"), "-c", "import django_prometheus, sentry_sdk, psycopg, wallet"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr

    def test_collectstatic_wrote_a_manifest_for_whitenoise(self, image: Image) -> None:
        manifest = json.loads((Path(image.env["DJANGO_STATIC_ROOT"]) / "staticfiles.json").read_text())
        assert "admin/css/base.css" in manifest["paths"]


@contextmanager
def _web(image: Image, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`entrypoint.sh web ARGS` on a free port, until /healthz answers; yields its base URL."""
    port = unused_port()
    env = {**(env or image.env), "WEB_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
    log = (Path(image.env["WALLET_STATE_DIR"]) / f"web-{port}.log").open("w+")
    process = subprocess.Popen(
        ["sh", str(CONTAINER / "entrypoint.sh"), "web", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, Path(log.name).read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "web did not answer:\n" + Path(log.name).read_text()
            time.sleep(0.3)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _railway_start_args(name: str) -> list[str]:
    """The arguments Railway's start command gives the entrypoint (railway/<name>.json)."""
    command = json.loads((ROOT / "railway" / f"{name}.json").read_text())["deploy"]["startCommand"].split()
    assert command[0] == "/app/scripts/container/entrypoint.sh"
    return command[1:]


class TestStartSteps:
    def test_migrate_then_web_serve_the_probes_with_production_settings(self, image: Image) -> None:
        # given: migrations applied by the image's migrate step
        migrated = _entrypoint(image, "migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        with psycopg.connect(image.env["DATABASE_URL"]) as connection:
            row = connection.execute("SELECT count(*) FROM django_migrations WHERE app = 'ledger'").fetchone()
        assert row is not None
        assert row[0] >= 1

        # when: the web process starts as the image starts it
        port = unused_port()
        env = {**image.env, "WEB_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
        log = (Path(image.env["WALLET_STATE_DIR"]) / "web.log").open("w+")
        process = subprocess.Popen(
            ["sh", str(CONTAINER / "entrypoint.sh"), "web"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, Path(log.name).read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "web did not answer:\n" + Path(log.name).read_text()
                time.sleep(0.3)

            # then: the probes answer over plain HTTP (exempt from the HTTPS redirect)
            assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
            # the production settings are in force: the API redirects plain HTTP to HTTPS
            insecure = httpx.get(f"{base}/api/v1/me")
            assert insecure.status_code == 301
            assert insecure.headers["location"].startswith("https://")
            secure = httpx.get(f"{base}/api/v1/me", headers={"X-Forwarded-Proto": "https"})
            assert secure.status_code == 401
            # static files collected at build are served by whitenoise
            static = httpx.get(f"{base}/static/admin/css/base.css", headers={"X-Forwarded-Proto": "https"})
            assert static.status_code == 200
            # /metrics answers to the token and hides from everyone else
            metrics = httpx.get(
                f"{base}/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}", "X-Forwarded-Proto": "https"},
            )
            assert metrics.status_code == 200, metrics.text
            assert "wallet_transactions" in metrics.text
            hidden = httpx.get(f"{base}/metrics", headers={"X-Forwarded-Proto": "https"})
            assert hidden.status_code == 404
            # the image's HEALTHCHECK command (same environment as the process) agrees
            check = _entrypoint(image, "healthcheck", timeout=30, env=env)
            assert check.returncode == 0, check.stderr
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            log.close()

        # and when the web process is gone, the healthcheck says so
        assert _entrypoint(image, "healthcheck", timeout=30, env=env).returncode == 1

    def test_web_refuses_to_start_on_the_sandbox_defaults(self, image: Image) -> None:
        """F9: production settings with only the required variables started against the sandbox."""
        sandboxed = {
            key: value
            for key, value in image.env.items()
            if not key.startswith(("REVIO_", "FRONTEND_URL", "PUBLIC_BASE_URL", "DJANGO_EMAIL"))
        }
        for command in ("web", "worker", "release"):
            result = _entrypoint(image, command, env=sandboxed, timeout=60)
            assert result.returncode != 0, command
            assert "REVIO_BASE_URL is not https" in result.stderr, result.stderr
            assert "REVIO_API_KEY is empty" in result.stderr

    def test_behind_railways_proxy_one_attacker_cannot_lock_out_everyone(self, image: Image) -> None:
        """F6: on Railway every client arrives from the proxy. With the proxy count at 0 (as the Railway
        config left it), five wrong passwords from anyone locked the victim out for every address."""
        assert _entrypoint(image, "migrate").returncode == 0
        env = {**image.env, "RAILWAY_ENVIRONMENT_NAME": "production"}
        email, password = "victim@example.com", "correct horse battery staple"

        def as_client(address: str) -> dict[str, str]:
            # What Railway's edge sends on: the scheme, and the client's address appended.
            return {"X-Forwarded-Proto": "https", "X-Forwarded-For": address}

        command, *args = _railway_start_args("web")
        assert command == "web"
        with _web(image, *args, env=env) as base, httpx.Client(base_url=base) as proxy:
            created = proxy.post(
                "/api/v1/auth/register",
                json={"email": email, "password": password},
                headers=as_client("198.51.100.7"),
            )
            assert created.status_code == 202, created.text
            for _ in range(6):
                wrong = proxy.post(
                    "/api/v1/auth/token",
                    json={"email": email, "password": "not it"},
                    headers=as_client("203.0.113.66"),
                )
                assert wrong.status_code in (401, 429), wrong.text
            assert wrong.status_code == 429  # the attacker's own address is locked out
            victim = proxy.post(
                "/api/v1/auth/token",
                json={"email": email, "password": password},
                headers=as_client("198.51.100.7"),
            )
            assert victim.status_code == 200, victim.text

    def test_gunicorn_trusts_forwarded_headers_from_no_one_but_loopback(self, image: Image) -> None:
        """F6: FORWARDED_ALLOW_IPS=* let any client set SCRIPT_NAME (and the scheme) in the WSGI environ."""
        with _web(image) as base:
            # A client that is not this machine's loopback address (the proxy on Railway is not either).
            stranger = httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
            with stranger:
                assert stranger.get("/healthz").status_code == 200
                rewritten = stranger.get(
                    "/evil/healthz", headers={"SCRIPT_NAME": "/evil", "X-Forwarded-Proto": "https"}
                )
                assert rewritten.status_code == 404, "gunicorn let a client set SCRIPT_NAME"

    def test_the_revio_config_file_is_read_as_data_not_run(self, image: Image, tmp_path: Path) -> None:
        """F16: the entrypoint ran `eval "export $line"` on each line of REVIO_CONFIG_FILE."""
        marker = tmp_path / "pwned"
        config = tmp_path / "revio.env"
        config.write_text(
            f'REVIO_API_KEY="$(touch {marker})"\n'
            f"REVIO_WEBHOOK_ID=`touch {marker}`\n"
            'REVIO_BRAND_ID="5b0a8c0e-7d1e-4c53-9f0e-2f3c4a5b6c7d"\n'
        )
        env = {
            key: value for key, value in image.env.items() if key not in ("REVIO_API_KEY", "REVIO_BRAND_ID")
        }
        env["REVIO_CONFIG_FILE"] = str(config)
        # `web --version`: the entrypoint loads the file and runs its checks, then gunicorn prints and exits.
        result = _entrypoint(image, "web", "--version", env=env, timeout=60)
        assert not marker.exists(), "a line of the config file was executed"
        assert "ignoring REVIO_API_KEY" in result.stderr
        assert "ignoring REVIO_WEBHOOK_ID" in result.stderr
        # The API key was refused, so the start checks stop the process; the plain brand id was taken.
        assert result.returncode != 0
        assert "REVIO_API_KEY is empty" in result.stderr
        assert "REVIO_BRAND_ID is empty" not in result.stderr


class TestDockerfile:
    def test_hadolint_passes(self) -> None:
        hadolint = Path(sys.executable).parent / "hadolint"
        result = subprocess.run(
            [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_the_image_calls_the_scripts_the_suite_runs(self) -> None:
        dockerfile = (ROOT / "Dockerfile").read_text()
        for step in ("install.sh deps", "install.sh project", "install.sh static"):
            assert step in dockerfile
        assert 'ENTRYPOINT ["/app/scripts/container/entrypoint.sh"]' in dockerfile
        assert "HEALTHCHECK" in dockerfile
        assert "USER 10001" in dockerfile


def _load_yaml(path: Path) -> dict[str, object]:
    # YAML 1.2 (ruamel), as GitHub and Compose read it: `on:` is a key, not the boolean true.
    loaded = YAML(typ="safe", pure=True).load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _validate(document: object, schema_name: str) -> None:
    schema = json.loads((VENDORED_SCHEMAS / schema_name).read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


class TestCompose:
    def test_validates_against_the_compose_specification(self) -> None:
        _validate(_load_yaml(ROOT / "docker-compose.yml"), "compose-spec.json")

    def test_every_process_runs_from_the_one_image_after_the_migrations(self) -> None:
        services: dict[str, dict[str, object]] = _load_yaml(ROOT / "docker-compose.yml")["services"]  # type: ignore[assignment]
        assert {"postgres", "redis", "migrate", "web", "worker", "beat", "sandbox"} <= set(services)
        # The engines make run and make test start (ADR 0013): PostgreSQL 18 and Valkey 8.
        assert "postgres:18" in str(services["postgres"]["image"])
        assert "valkey/valkey:8" in str(services["redis"]["image"])
        for name in ("migrate", "web", "worker", "beat", "sandbox"):
            command = services[name]["command"]
            assert isinstance(command, list)
            assert command[0] in ENTRYPOINT_COMMANDS, name
            assert services[name]["image"] == services["web"]["image"], name
        for name in ("web", "worker", "beat"):
            depends = services[name]["depends_on"]
            assert isinstance(depends, dict)
            assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert services["migrate"]["restart"] == "no"
        for name in ("postgres", "redis", "web", "sandbox", "worker"):
            assert "healthcheck" in services[name], name

    def test_the_sandbox_control_api_is_published_on_loopback_only(self) -> None:
        """F9: "8100:8100" published the sandbox, /_sandbox/ (it pays and fails payments) included, on
        every interface of the machine."""
        services: dict[str, dict[str, Any]] = _load_yaml(ROOT / "docker-compose.yml")["services"]  # type: ignore[assignment]
        for port in services["sandbox"].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port

    def test_the_proxy_count_and_the_skipped_checks_are_stated(self) -> None:
        environment: dict[str, str] = _load_yaml(ROOT / "docker-compose.yml")["x-wallet-env"]  # type: ignore[assignment]
        assert environment["TRUSTED_PROXY_COUNT"] == "0"  # browsers reach web directly
        silenced = set(environment["DJANGO_SILENCED_SYSTEM_CHECKS"].split(","))
        assert "wallet.E010" not in silenced  # the proxy check is never skipped
        assert {"wallet.E004", "wallet.E005", "wallet.E007"}.isdisjoint(silenced)  # PostgreSQL, Redis, JWT


class TestCiWorkflow:
    def test_validates_against_the_github_workflow_schema(self) -> None:
        _validate(_load_yaml(ROOT / ".github" / "workflows" / "ci.yml"), "github-workflows.json")

    def test_deploys_only_from_main_after_every_check(self) -> None:
        workflow = _load_yaml(ROOT / ".github" / "workflows" / "ci.yml")
        jobs: dict[str, dict[str, object]] = workflow["jobs"]  # type: ignore[assignment]
        deploy = jobs["deploy"]
        assert set(deploy["needs"]) == set(jobs) - {"deploy"}  # type: ignore[arg-type]
        assert "refs/heads/main" in str(deploy["if"])
        services = jobs["test"]["services"]
        assert set(services) == {"postgres", "redis"}  # type: ignore[arg-type]


class TestRailway:
    def test_every_service_uses_the_image_and_migrates_before_deploy(self) -> None:
        for name in ("web", "worker", "beat"):
            config = json.loads((ROOT / "railway" / f"{name}.json").read_text())
            assert config["build"]["builder"] == "DOCKERFILE"
            command = config["deploy"]["startCommand"].split()
            assert command[0].endswith("entrypoint.sh")
            assert command[1] == name
        web = json.loads((ROOT / "railway" / "web.json").read_text())
        assert web["deploy"]["preDeployCommand"][0].endswith("entrypoint.sh release")
        assert web["deploy"]["healthcheckPath"] == "/healthz"
        root = tomllib.loads((ROOT / "railway.toml").read_text())
        assert root["build"]["builder"] == "DOCKERFILE"

    def test_the_web_service_counts_railways_proxy(self) -> None:
        """F6: Railway's edge is one proxy in front of web; the config says so (it cannot set variables)."""
        assert _railway_start_args("web") == ["web", "--trusted-proxies", "1"]
        root = tomllib.loads((ROOT / "railway.toml").read_text())
        assert root["deploy"]["startCommand"].split()[1:] == ["web", "--trusted-proxies", "1"]


def test_every_routed_celery_queue_has_a_worker_in_every_way_of_running() -> None:
    """A queue no worker consumes loses its tasks silently (outgoing events' `events` queue once did):
    make run's worker, the image's `worker` command and the benchmark's worker consume every routed queue."""
    from django.conf import settings

    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {"default"}
    entrypoint = (ROOT / "scripts" / "container" / "entrypoint.sh").read_text()
    all_queues = re.search(r"^ALL_QUEUES=(\S+)$", entrypoint, re.M)
    assert all_queues, "entrypoint.sh names its queues in ALL_QUEUES"
    run = (ROOT / "scripts" / "run.py").read_text()
    run_queues = re.search(r"-Q ([a-z,]+)", run)
    assert run_queues, "make run's worker names its queues"
    bench = (ROOT / "benchmarks" / "run.py").read_text()
    bench_queues = re.search(r'"-Q", f"([a-z,]+),\{NOOP_QUEUE\}"', bench)
    assert bench_queues, "the benchmark's worker names its queues"
    for where, listed in (
        ("entrypoint.sh", all_queues[1]),
        ("scripts/run.py", run_queues[1]),
        ("benchmarks/run.py", bench_queues[1]),
    ):
        assert routed <= set(listed.split(",")), (where, routed - set(listed.split(",")))
