"""Fixtures: one real sandbox subprocess per test session (reset before each test), a receiver, and
headless Chromium (Debian's /usr/bin/chromium via Playwright) for the pages."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from revio_sandbox.testing import SandboxProcess
from revio_sandbox.tests.support import Receiver

# 0.00002 compresses Revio's ~36 h retry horizon to ~2.6 s (first retry after ~10 ms).
TEST_TIME_SCALE = 0.00002


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    with SandboxProcess(time_scale=TEST_TIME_SCALE, payout_delay=0.3, delivery_timeout=1.0) as process:
        yield process


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> SandboxProcess:
    sandbox_process.control.reset()
    return sandbox_process


@pytest.fixture
def api(sandbox: SandboxProcess) -> Iterator[httpx.Client]:
    with sandbox.api_client() as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhook(api: httpx.Client, receiver: Receiver) -> dict[str, object]:
    """An all-events webhook object pointing at the receiver's /hook."""
    response = api.post(
        "webhooks/", json={"title": "tests", "all_events": True, "callback": receiver.url("/hook")}
    )
    assert response.status_code == 201
    return dict(response.json())


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()
