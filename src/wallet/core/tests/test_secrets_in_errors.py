"""Error responses and the logs they cause do not echo the secrets that were in the request.

The suite-wide scan (root conftest.py, leak_scan.py) searches every log record for planted secrets; these
tests make the API fail on requests that carry secrets and check the answer and the records of that request.
"""

import logging
from collections.abc import Callable

import pytest
import sentry_sdk
from rest_framework.test import APIClient

from conftest import LEAK_SCANNER, login
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.tests.leak_scan import LeakScanner
from wallet.observability.sentry import before_send
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, fund  # noqa: F401 - fund is a fixture

pytestmark = pytest.mark.django_db

WRONG_PASSWORD = "planted-wrong-password-9e1f4c7a"
ACCOUNT_NUMBER = "62009876543210"  # 14 digits: valid for the serializer
NUMERIC_PASSWORD = "0000098765432109"
# The session's log scan looks for them too, in every record of the run.
for name, secret in (("a wrong password", WRONG_PASSWORD), ("an account number", ACCOUNT_NUMBER)):
    LEAK_SCANNER.plant(name, secret)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.DEBUG)
    return caplog.records


def _nothing_echoes(secret: str, response_body: bytes, records: list[logging.LogRecord]) -> None:
    assert secret not in response_body.decode()
    scanner = LeakScanner()
    scanner.plant("the secret in the request", secret)
    for record in records:
        scanner.emit(record)
    assert scanner.leaks() == []


def test_a_wrong_password_is_not_echoed(user: User, api: APIClient, records: list[logging.LogRecord]) -> None:
    response = api.post(
        "/api/v1/auth/token", {"email": user.email, "password": WRONG_PASSWORD}, format="json"
    )

    assert response.status_code == 401
    _nothing_echoes(WRONG_PASSWORD, response.content, records)


def test_a_password_refused_by_the_validators_is_not_echoed(
    api: APIClient, records: list[logging.LogRecord]
) -> None:
    # Entirely numeric: refused, with a message that must not repeat the password.
    response = api.post(
        "/api/v1/auth/register", {"email": "someone@example.com", "password": NUMERIC_PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert "password" in response.json()["error"]["details"]["fields"]
    _nothing_echoes(NUMERIC_PASSWORD, response.content, records)


def test_a_bank_account_in_a_refused_withdrawal_is_not_echoed(
    user: User,
    fund: Callable[[User, int], Transaction],  # noqa: F811 - the fixture imported above
    revio: SandboxProcess,
    records: list[logging.LogRecord],
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, user.email)['access']}")
    bank = {**BANK, "account_number": ACCOUNT_NUMBER}

    too_much = client.post("/api/v1/withdrawals", {"amount": 5_000, "bank_account": bank}, format="json")
    bad_field = client.post(
        "/api/v1/withdrawals",
        {"amount": 5_000, "bank_account": {**bank, "bank_code": "not-a-code"}},
        format="json",
    )

    assert too_much.status_code in {400, 409, 422}, too_much.content  # no money: refused by the rules
    assert bad_field.status_code == 400
    _nothing_echoes(ACCOUNT_NUMBER, too_much.content + bad_field.content, records)


def test_a_withdrawal_that_revio_refuses_does_not_log_the_account_number(
    user: User,
    fund: Callable[[User, int], Transaction],  # noqa: F811 - the fixture imported above
    revio: SandboxProcess,
    records: list[logging.LogRecord],
) -> None:
    fund(user, 20_000)
    revio.control.fail_next("eft.payments.create", status=500, count=5)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, user.email)['access']}")

    response = client.post(
        "/api/v1/withdrawals",
        {"amount": 5_000, "bank_account": {**BANK, "account_number": ACCOUNT_NUMBER}},
        format="json",
    )

    assert response.status_code < 500, response.content
    _nothing_echoes(ACCOUNT_NUMBER, response.content, records)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer {token}",
        "Bearer {token}x",
        "Bearer {token} {token}",
        "Token {token}",
        "{token}",
    ],
)
def test_a_token_in_a_malformed_header_is_not_echoed(
    user: User, header: str, records: list[logging.LogRecord]
) -> None:
    token = login(APIClient(), user.email)["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(token=token))

    response = client.get("/api/v1/me")

    assert response.status_code in {200, 401}
    if response.status_code == 401:
        _nothing_echoes(token, response.content, records)


def test_the_scanner_finds_a_planted_secret_and_masks_it() -> None:
    scanner = LeakScanner()
    scanner.plant("a planted key", "planted-value-123456")
    logger = logging.getLogger("wallet.leak_scan_example")
    logger.propagate = False  # these leaks are on purpose: keep them from the session's scan
    logger.addHandler(scanner)
    try:
        logger.warning("harmless %s", "text")
        logger.warning("oops %s", "planted-value-123456")
        logger.warning("payload", extra={"body": '{"account_number": "62001234567"}'})
        logger.warning("token %s", "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJlc2lnbmF0dXJl")
    finally:
        logger.removeHandler(scanner)
        logger.propagate = True

    leaks = scanner.leaks()

    assert [leak.secret_name for leak in leaks] == ["a planted key", "a full account number", "a JWT"]
    assert all("planted-value-123456" not in leak.excerpt for leak in leaks)
    assert leaks[0].source == "wallet.leak_scan_example"
    assert leaks[0].excerpt == "oops <a planted key>"


def test_the_session_scanner_is_on_and_has_planted_secrets() -> None:
    assert LEAK_SCANNER in logging.getLogger().handlers
    # Sentry reports go to the scan too, through the product's before_send.
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert type(client.transport).__name__ == "_SentryEventsToTheScan"
    assert client.options["before_send"] is before_send
    assert set(LEAK_SCANNER.secrets.values()) >= {"SECRET_KEY", "JWT_SIGNING_KEY", "the test users' password"}


@pytest.mark.urls("wallet.core.tests.urls")
def test_a_server_error_reaches_the_scan_through_sentry_without_the_secrets(user: User) -> None:
    token = login(APIClient(), user.email)["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    before = len(LEAK_SCANNER.records)

    response = client.get(f"/api/v1/_test/crash?account_number={ACCOUNT_NUMBER}")
    sentry_sdk.flush()

    assert response.status_code == 500
    reported = "\n".join(text for source, text in LEAK_SCANNER.records[before:] if source == "sentry events")
    assert "RuntimeError" in reported  # the event was sent, through before_send, to the scan
    assert token not in reported
    assert ACCOUNT_NUMBER not in reported
    # django.request logs the 500 with the request (and its query string) as an extra field: scrubbed.
    logged = [text for source, text in LEAK_SCANNER.records[before:] if source == "django.request"]
    assert logged
    assert all(ACCOUNT_NUMBER not in text for text in logged)
