"""`make run` end to end: the real start script, real processes, and a real browser on what it serves.

Both ways of running are exercised: with the embedded servers `make run` starts itself (PostgreSQL and
Valkey from the project's wheels, data kept in its run folder) and pointed at the PostgreSQL and Redis this
test run has. Each run gets its own folder and ports, and is stopped afterwards.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from playwright.sync_api import sync_playwright

from wallet.core.testing import unused_port

ROOT = Path(__file__).resolve().parents[4]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class RunningSystem:
    base_url: str
    sandbox_url: str
    banner: str
    admin_email: str
    admin_password: str


def _start(tmp_path: Path, *, external_servers: bool) -> Iterator[RunningSystem]:
    web_port, sandbox_port = unused_port(), unused_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    if external_servers:
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    env.update(WALLET_RUN_DIR=str(tmp_path), WALLET_PORT=str(web_port), REVIO_SANDBOX_PORT=str(sandbox_port))
    log = (tmp_path / "run.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("make run did not become ready:\n" + (tmp_path / "run.log").read_text())
        banner = (tmp_path / "run.log").read_text()
        match = re.search(r"Admin login: (\S+) / one-time password: (\S+)", banner)
        email, password = (match[1], match[2]) if match else ("", "")
        yield RunningSystem(base_url, f"http://127.0.0.1:{sandbox_port}", banner, email, password)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)  # it stops its processes, then its embedded servers
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    yield from _start(tmp_path_factory.mktemp("run-embedded"), external_servers=False)


def test_banner_prints_every_url_and_a_one_time_admin_password(embedded: RunningSystem) -> None:
    for url in (
        f"{embedded.base_url}/",
        f"{embedded.base_url}/api/v1/",
        f"{embedded.base_url}/api/v1/docs/",
        f"{embedded.base_url}/admin/",
        embedded.sandbox_url,
    ):
        assert url in embedded.banner
    assert "embedded servers for DATABASE_URL and REDIS_URL" in embedded.banner
    assert len(embedded.admin_password) >= 16


def test_embedded_mode_runs_postgresql_and_valkey_kept_between_runs(tmp_path: Path) -> None:
    """The embedded servers are the production engines, and what a run stores is there on the next run."""
    credentials = {"email": "keeper@example.com", "password": "a long enough password 1"}
    for first in _start(tmp_path, external_servers=False):
        assert re.search(r"Database\s+postgres://wallet@127\.0\.0\.1:\d+/wallet", first.banner), first.banner
        assert re.search(r"Redis\s+redis://127\.0\.0\.1:\d+/0", first.banner), first.banner
        database_url = re.search(r"Database\s+(\S+)", first.banner)[1]  # type: ignore[index]
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")  # type: ignore[index]
        redis_url = re.search(r"Redis\s+(\S+)", first.banner)[1]  # type: ignore[index]
        assert redis.Redis.from_url(redis_url).info()["server_name"] == "valkey"
        registered = httpx.post(f"{first.base_url}/api/v1/auth/register", json=credentials)
        assert registered.status_code == 202, registered.text
    assert (tmp_path / "postgres" / "data" / "PG_VERSION").read_text().strip() == "18"
    for second in _start(tmp_path, external_servers=False):
        assert "An admin account exists; nothing changed" in second.banner
        tokens = httpx.post(f"{second.base_url}/api/v1/auth/token", json=credentials)
        assert tokens.status_code == 200, tokens.text


def test_api_works_on_the_embedded_servers(embedded: RunningSystem) -> None:
    api = f"{embedded.base_url}/api/v1"
    register = httpx.post(
        f"{api}/auth/register", json={"email": "runner@example.com", "password": "a long enough password 1"}
    )
    assert register.status_code == 202, register.text
    tokens = httpx.post(
        f"{api}/auth/token", json={"email": "runner@example.com", "password": "a long enough password 1"}
    ).json()
    me = httpx.get(f"{api}/me", headers={"Authorization": f"Bearer {tokens['access']}"})
    assert me.json()["email"] == "runner@example.com"
    assert httpx.get(f"{embedded.base_url}/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}

    # The backend is wired to the sandbox as its Revio: a deposit gets a checkout page there.
    auth = {"Authorization": f"Bearer {tokens['access']}"}
    deposit = httpx.post(f"{api}/deposits", json={"amount": 25_000}, headers=auth)
    assert deposit.status_code == 201, deposit.text
    checkout_url = deposit.json()["checkout_url"]
    assert checkout_url.startswith(embedded.sandbox_url)
    # After paying, the checkout sends the customer back to the wallet page this server serves.
    purchase_id = checkout_url.rstrip("/").split("/")[-1]
    purchase = httpx.get(f"{embedded.sandbox_url}/_sandbox/purchases/{purchase_id}").json()
    assert purchase["success_redirect"].startswith(f"{embedded.base_url}/deposits/{deposit.json()['id']}")
    assert "webapp/wallet" in httpx.get(purchase["success_redirect"]).text
    page = httpx.get(checkout_url)
    assert page.status_code == 200
    assert "250.00" in page.text


@pytest.mark.browser
def test_swagger_ui_and_admin_login_in_a_real_browser(embedded: RunningSystem) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{embedded.base_url}/api/v1/docs/")
        # Swagger UI renders an operation block per endpoint once its JS and the schema have loaded.
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock").count() >= 8
        assert "/api/v1/auth/token" in page.content()

        page.goto(f"{embedded.base_url}/admin/")
        page.fill("input[name=username]", embedded.admin_email)
        page.fill("input[name=password]", embedded.admin_password)
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name", timeout=10_000)
        assert "Site administration" in page.content()
        assert page.locator("a[href$='/admin/accounts/user/']").count() >= 1
        browser.close()


def test_given_servers_are_used_instead_of_the_embedded_ones(tmp_path: Path) -> None:
    for system in _start(tmp_path, external_servers=True):
        assert "PostgreSQL + Redis, both given" in system.banner
        assert not (tmp_path / "postgres").exists()
        procfile = (tmp_path / "Procfile").read_text()
        assert "beat:" in procfile  # worker and beat are separate processes here
        ready = httpx.get(f"{system.base_url}/readyz")
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert httpx.get(f"{system.base_url}/api/v1/docs/").status_code == 200
