"""/metrics: Prometheus series from django-prometheus and the wallet, only for the token or the network."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from wallet.accounts.models import User
from wallet.core import metrics as counters
from wallet.transactions.models import Transaction
from wallet.webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db
TOKEN = "metrics-test-token"


@pytest.fixture
def scraper(settings: object) -> Client:
    settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
    settings.METRICS_ALLOWED_NETWORKS = []  # type: ignore[attr-defined]
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def _line(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{prefix} not in:\n{text}")


class TestAccess:
    def test_hidden_without_token_or_network(self, settings: object) -> None:
        settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
        response = Client().get("/metrics")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_a_wrong_token_is_401_in_the_error_shape(self, settings: object) -> None:
        settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
        response = Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"

    def test_no_token_configured_means_no_token_works(self, settings: object) -> None:
        settings.METRICS_TOKEN = ""  # type: ignore[attr-defined]
        assert Client(HTTP_AUTHORIZATION="Bearer ").get("/metrics").status_code == 401

    def test_an_allow_listed_network_gets_in(self, settings: object) -> None:
        settings.METRICS_TOKEN = ""  # type: ignore[attr-defined]
        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8"]  # type: ignore[attr-defined]
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="192.0.2.1").get("/metrics").status_code == 404


class TestSeries:
    def test_transactions_webhooks_lag_and_counters(self, scraper: Client, make_user: object) -> None:
        user: User = make_user()  # type: ignore[operator]
        old = timezone.now() - timedelta(hours=2)
        Transaction.objects.create(
            user_id=user.id, type="deposit", status="pending", amount=1000, currency="ZAR"
        )
        Transaction.objects.create(
            user_id=user.id,
            type="withdrawal",
            status="processing",
            amount=1000,
            currency="ZAR",
            updated_at=old,
        )
        for status, received_at in (("received", old), ("dead_lettered", timezone.now())):
            WebhookLog.objects.create(
                dedup_key=str(uuid.uuid4()),
                event_type="purchase.paid",
                object_type="purchase",
                object_id=str(uuid.uuid4()),
                updated_on=0,
                body="{}",
                verified_with="company",
                status=status,
                received_at=received_at,
            )
        counters.reset("webhooks_duplicate")
        counters.increment("webhooks_duplicate", 3)

        text = scraper.get("/metrics").content.decode()

        assert _line(text, 'wallet_transactions{status="pending",type="deposit"}') == 1
        assert _line(text, 'wallet_transactions_stuck{status="processing",type="withdrawal"}') == 1
        assert _line(text, 'wallet_transactions_stuck{status="pending",type="deposit"}') == 0
        assert _line(text, 'wallet_webhook_events{status="received"}') == 1
        assert _line(text, "wallet_webhook_dead_letters") == 1
        assert _line(text, "wallet_webhook_processing_lag_seconds") >= 7000
        assert _line(text, 'wallet_webhook_intake_total{outcome="duplicate"}') == 3
        assert _line(text, 'wallet_events_total{event="webhooks_duplicate"}') == 3
        # django-prometheus's own series are there too
        assert "django_http_requests_total_by_method_total" in text


def test_revio_calls_time_and_the_breaker_are_exposed(
    scraper: Client, user: User, revio: object, settings: object
) -> None:
    from revio_sandbox.testing import SandboxProcess
    from wallet.transactions import services
    from wallet.transactions.errors import DepositProviderUnavailableError

    assert isinstance(revio, SandboxProcess)
    services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
    revio.control.fail_next("purchases.create", status=503, count=10)
    settings.REVIO_BREAKER_FAILURE_THRESHOLD = 1  # type: ignore[attr-defined]
    with pytest.raises(DepositProviderUnavailableError):
        services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")

    text = scraper.get("/metrics").content.decode()
    assert _line(text, 'wallet_revio_calls_total{operation="create",outcome="ok"}') == 1
    assert _line(text, 'wallet_revio_calls_total{operation="create",outcome="unavailable"}') == 1
    assert _line(text, 'wallet_revio_call_seconds_total{operation="create"}') > 0
    assert _line(text, 'wallet_revio_breaker_state{state="open"}') == 1
    assert _line(text, 'wallet_revio_breaker_state{state="closed"}') == 0


def test_counters_add_up_in_one_round_trip_and_read_back_through_the_cache() -> None:
    counters.reset("test_a")
    counters.reset("test_b")
    counters.increment_many({"test_a": 2, "test_b": 5})
    counters.increment("test_a")
    assert counters.read("test_a") == 3
    assert counters.read("test_b") == 5
    assert {"test_a": 3, "test_b": 5}.items() <= counters.read_all().items()


def test_all_threads_of_a_process_share_one_redis_client() -> None:
    import threading

    from django.core.cache import cache

    seen: list[object] = []

    def look() -> None:
        seen.append(cache._cache)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in [*seen, cache._cache]}) == 1  # type: ignore[attr-defined]
