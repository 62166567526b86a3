"""Fixtures shared by every app's tests."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.revio.breaker import breaker_reset

PASSWORD = "correct horse battery staple"


_FIGURES: list[str] = []


@pytest.fixture
def report_figure() -> Callable[[str], None]:
    """Record a line for the figures summary printed at the end of the run (e.g. overdrafts found)."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("figures from the reliability tests")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_shared_cache() -> None:
    """Rate-limit counters, lockouts, the circuit breaker and cached keys live in Redis, shared by the whole
    run: each test starts without another test's."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    counter = iter(range(1_000_000))

    def make(*, email: str | None = None, role: str = User.Role.USER, **extra: Any) -> User:
        return User.objects.create_user(
            email=email or f"user{next(counter)}@example.com", password=PASSWORD, role=role, **extra
        )

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user(email="thandi@example.com")


@pytest.fixture
def admin_user(make_user: Callable[..., User]) -> User:
    return make_user(email="ops@example.com", role=User.Role.ADMIN)


def login(api: APIClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = api.post("/api/v1/auth/token", {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json())


@pytest.fixture
def user_api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, user.email)['access']}")
    return client


@pytest.fixture
def admin_api(admin_user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, admin_user.email)['access']}")
    return client


# -- the Revio sandbox, a real process reached over HTTP ---------------------------------------------------


@pytest.fixture(scope="session")
def revio_sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(time_scale=0.0001, payout_delay=3600) as sandbox:
        yield sandbox


@pytest.fixture
def revio(revio_sandbox: SandboxProcess, settings: Any) -> Iterator[SandboxProcess]:
    """Point the backend's Revio client at the sandbox; faults set by a test are cleared after it.

    Payouts do not settle by themselves here (a one-hour delay): tests settle them through the control API.
    """
    settings.REVIO_BASE_URL = revio_sandbox.api_url
    settings.REVIO_API_KEY = revio_sandbox.api_key
    settings.REVIO_BRAND_ID = revio_sandbox.brand_id
    settings.REVIO_READ_TIMEOUT = 2.0
    breaker_reset()  # the circuit breaker's state is shared (Redis): no test inherits another's failures
    yield revio_sandbox
    revio_sandbox.control.clear_faults()
    breaker_reset()
