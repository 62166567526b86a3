"""Fixtures shared by every app's tests."""

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
import sentry_sdk.transport
from django.conf import settings
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.tests.leak_scan import LeakScanner
from wallet.revio.breaker import breaker_reset

PASSWORD = "correct horse battery staple"


_FIGURES: list[str] = []


@pytest.fixture
def report_figure() -> Callable[[str], None]:
    """Record a line for the figures summary printed at the end of the run (e.g. overdrafts found)."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _LEAKS:
        terminalreporter.section("SECRETS LEAKED INTO LOGS", red=True)
        for leak in _LEAKS:
            terminalreporter.write_line(leak.describe(), red=True)
    if _FIGURES:
        terminalreporter.section("figures from the reliability tests")
        for line in _FIGURES:
            terminalreporter.write_line(line)


# -- the planted-secrets scan of every log record of the session (wallet/core/tests/leak_scan.py) -----------

LEAK_SCANNER = LeakScanner()
_SENTRY_SOURCE = "sentry events"
_LEAKS: list[Any] = []
_SCAN_BLIND: list[str] = []  # tests during which logging was reconfigured, so part of their logs went unseen


def pytest_sessionstart(session: pytest.Session) -> None:
    # Django has configured logging by now (its dictConfig would have dropped a handler added earlier).
    logging.getLogger().addHandler(LEAK_SCANNER)
    LEAK_SCANNER.plant("SECRET_KEY", settings.SECRET_KEY)
    LEAK_SCANNER.plant("JWT_SIGNING_KEY", settings.SIMPLE_JWT["SIGNING_KEY"])
    for key in settings.FIELD_ENCRYPTION_KEYS:
        LEAK_SCANNER.plant("FIELD_ENCRYPTION_KEYS", key)
    LEAK_SCANNER.plant("the test users' password", PASSWORD)
    _capture_sentry_events()


class _SentryEventsToTheScan(sentry_sdk.transport.Transport):
    """Sentry's transport for the suite: what the product reports (after its before_send) goes to the scan."""

    def capture_envelope(self, envelope: Any) -> None:
        LEAK_SCANNER.add_text(_SENTRY_SOURCE, envelope.serialize().decode(errors="replace"))


def _capture_sentry_events() -> None:
    from wallet.observability.sentry import before_breadcrumb, before_send

    # No integrations: only the product's explicit capture_exception/capture_message calls produce events.
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=_SentryEventsToTheScan,
        default_integrations=False,
        auto_enabling_integrations=False,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
    )


# The sandbox plays Revio: the API key and EFT secret it issued, and the accounts it pays, are its to know.
_SANDBOX_KNOWS = frozenset(
    {"REVIO_API_KEY", "REVIO_EFT_CLIENT_SECRET", "a full account number", "an account number"}
    | {"the test bank account number"}
)


@pytest.fixture(scope="session", autouse=True)
def _scan_subprocess_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Processes the suite starts (gunicorn, Celery, PostgreSQL in the crash, concurrency and scaling tests)
    write their logs under the session's temporary folder: those are scanned too, once they are done."""
    yield
    basetemp = tmp_path_factory.getbasetemp()
    for path in sorted(basetemp.rglob("*.log")):
        exempt = _SANDBOX_KNOWS if path.name == "sandbox.log" else frozenset()
        text = path.read_text(errors="replace")
        LEAK_SCANNER.add_text(str(path.relative_to(basetemp)), text, exempt=exempt)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test that reconfigures logging must not take the scanner off for the rest of the session.
    if LEAK_SCANNER not in logging.getLogger().handlers:
        logging.getLogger().addHandler(LEAK_SCANNER)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    # Logging reconfigured during a test (django.setup(), dictConfig) dropped the scanner: say so.
    if LEAK_SCANNER not in logging.getLogger().handlers:
        _SCAN_BLIND.append(item.nodeid)
        logging.getLogger().addHandler(LEAK_SCANNER)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from wallet.transactions.tests.conftest import BANK

    LEAK_SCANNER.plant("the test bank account number", BANK["account_number"])
    sentry_sdk.flush()
    _LEAKS.extend(LEAK_SCANNER.leaks())
    subprocess_logs = len(set(LEAK_SCANNER.exempt) - {_SENTRY_SOURCE})
    _FIGURES.append(
        f"secrets scan: {len(LEAK_SCANNER.records)} log records scanned (this process, Sentry events and "
        f"{subprocess_logs} subprocess log files), {len(LEAK_SCANNER.secrets)} planted secrets "
        f"(+ any JWT or full account number), leaks {len(_LEAKS)}"
        + (
            f"; not seen: part of the logs of {len(_SCAN_BLIND)} tests that reset logging"
            if _SCAN_BLIND
            else ""
        )
    )
    _FIGURES.extend(f"  logging reset during {nodeid}" for nodeid in _SCAN_BLIND[:10])
    if _LEAKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _fresh_shared_cache() -> None:
    """Rate-limit counters, lockouts, the circuit breaker and cached keys live in Redis, shared by the whole
    run: each test starts without another test's."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _payouts_worker_at_commit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payouts worker, for tests inside one transaction that never commits (pytest-django's default).

    withdrawal_create enqueues its payout on its commit (transaction.on_commit); inside a test's
    transaction no commit comes, so the payout is handed to the task at once instead, as the worker takes
    it right after a real commit (CELERY_TASK_ALWAYS_EAGER: in this process). The answer is still the
    withdrawal as committed, `pending`. Tests with transaction=True commit for real and take the real
    on_commit path.
    """
    marker = request.node.get_closest_marker("django_db")
    committing = marker is not None and marker.kwargs.get("transaction")
    if committing or "transactional_db" in request.fixturenames:
        return
    from wallet.transactions.services import withdrawals
    from wallet.transactions.tasks import withdrawal_payout_send_task

    def send_now(*, withdrawal_id: Any) -> None:
        withdrawal_payout_send_task.delay(withdrawal_id=str(withdrawal_id))

    monkeypatch.setattr(withdrawals, "payout_send_enqueue", send_now)


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
    tokens = dict(response.json())
    LEAK_SCANNER.plant("an access token", tokens["access"])
    LEAK_SCANNER.plant("a refresh token", tokens["refresh"])
    LEAK_SCANNER.plant("a test user's password", password)
    return tokens


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
        LEAK_SCANNER.plant("REVIO_API_KEY", sandbox.api_key)
        LEAK_SCANNER.plant("REVIO_EFT_CLIENT_SECRET", sandbox.eft_credentials()[1])
        yield sandbox
        LEAK_SCANNER.add_text("revio_sandbox process log", sandbox.read_log(), exempt=_SANDBOX_KNOWS)


@pytest.fixture
def revio(revio_sandbox: SandboxProcess, settings: Any) -> Iterator[SandboxProcess]:
    """Point the backend's Revio client at the sandbox; faults set by a test are cleared after it.

    Payouts (EFT payments) do not settle by themselves here (a one-hour delay): tests settle them through
    the control API.
    """
    settings.REVIO_BASE_URL = revio_sandbox.api_url
    settings.REVIO_API_KEY = revio_sandbox.api_key
    settings.REVIO_BRAND_ID = revio_sandbox.brand_id
    settings.REVIO_READ_TIMEOUT = 2.0
    # Withdrawals are paid by the EFT payments API, which the sandbox serves too (its own credentials).
    settings.REVIO_EFT_BASE_URL = revio_sandbox.eft_base_url
    settings.REVIO_EFT_TOKEN_URL = revio_sandbox.eft_token_url
    settings.REVIO_EFT_CLIENT_ID, settings.REVIO_EFT_CLIENT_SECRET = revio_sandbox.eft_credentials()
    breaker_reset()  # the circuit breaker's state is shared (Redis): no test inherits another's failures
    yield revio_sandbox
    revio_sandbox.control.clear_faults()
    breaker_reset()
