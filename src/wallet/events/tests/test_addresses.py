"""SSRF: endpoint URLs that point inside our network are refused at registration and at delivery time,
checked with real addresses (and real name resolution for localhost)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from wallet.events import addresses, endpoints
from wallet.events.errors import EndpointUrlRefusedError
from wallet.events.models import Delivery, DeliveryAttempt, EventEndpoint
from wallet.events.tests.conftest import Receiver, record_event

ENDPOINTS = "/api/v1/admin/event-endpoints"

# Refused in production whatever the scheme: (url, the reason named).
INTERNAL = [
    ("https://127.0.0.1/events", "loopback"),
    ("https://127.8.9.10:8443/events", "loopback"),
    ("https://[::1]/events", "loopback"),
    ("https://localhost/events", "loopback"),  # a name that resolves to loopback
    ("https://[::ffff:127.0.0.1]/events", "loopback"),  # IPv4-mapped
    ("https://10.0.0.5/events", "private"),
    ("https://172.16.4.4/events", "private"),
    ("https://192.168.1.1/events", "private"),
    ("https://[fd00::1]/events", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
    ("https://[fe80::1]/events", "link-local"),
    ("https://224.0.0.1/events", "multicast"),
    ("https://0.0.0.0/events", "unspecified"),
    ("https://240.0.0.1/events", "reserved"),
    ("https://100.64.0.1/events", "not globally routable"),  # carrier-grade NAT
]
# Still refused when local URLs are allowed (the test and local settings): only loopback opens up.
NEVER = [url for url, reason in INTERNAL if reason != "loopback"]


@pytest.fixture
def production_rules(settings: Any) -> None:
    settings.EVENTS_ALLOW_LOCAL_URLS = False


@pytest.mark.usefixtures("production_rules")
@pytest.mark.parametrize(("url", "reason"), INTERNAL, ids=[u for u, _ in INTERNAL])
def test_internal_addresses_are_refused_at_registration(
    admin_api: APIClient, url: str, reason: str, db: None
) -> None:
    response = admin_api.post(ENDPOINTS, {"url": url}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "endpoint_url_refused"
    assert error["details"]["reason"] == reason
    assert not EventEndpoint.objects.exists()


@pytest.mark.usefixtures("production_rules")
@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/events",  # a public address, but not https
        "ftp://93.184.216.34/events",
        "https://user:password@93.184.216.34/events",
        "https:///events",
        "https://93.184.216.34/events#fragment",
        "not a url",
        "https://no-such-host.invalid/events",
        "https://bad\x00host/events",
    ],
)
def test_other_unacceptable_urls_are_refused(admin_api: APIClient, url: str, db: None) -> None:
    response = admin_api.post(ENDPOINTS, {"url": url}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {"endpoint_url_refused", "validation_error"}
    assert not EventEndpoint.objects.exists()


@pytest.mark.usefixtures("production_rules")
def test_a_public_https_address_is_accepted() -> None:
    target = addresses.resolve("https://93.184.216.34:8443/hooks?x=1")

    assert target.addresses == ("93.184.216.34",)
    assert (target.scheme, target.port, target.path) == ("https", 8443, "/hooks?x=1")


@pytest.mark.parametrize("url", NEVER)
def test_local_mode_still_refuses_private_and_metadata_addresses(url: str) -> None:
    with pytest.raises(EndpointUrlRefusedError):
        addresses.resolve(url)


def test_local_mode_allows_http_on_loopback() -> None:
    assert addresses.resolve("http://localhost:8000/events").addresses[0] in {"127.0.0.1", "::1"}


@pytest.mark.usefixtures("production_rules")
def test_a_url_change_is_checked_like_a_new_one(admin_api: APIClient, db: None) -> None:
    endpoint = EventEndpoint.objects.create(url="https://93.184.216.34/", secrets_encrypted="x")

    response = admin_api.patch(
        f"{ENDPOINTS}/{endpoint.id}", {"url": "https://169.254.169.254/"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "endpoint_url_refused"
    endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.216.34/"


@pytest.mark.django_db(transaction=True)
def test_the_address_is_checked_again_at_delivery_time(receiver: Receiver, settings: Any) -> None:
    """Registered while allowed; by delivery time the same URL is refused (as a name that now resolves to
    an internal address would be): no request leaves, the attempt records why, and it is retried."""
    # https, so that only the address check can refuse it ("localhost" resolves to loopback).
    endpoints.endpoint_create(
        url=receiver.url.replace("http://127.0.0.1", "https://localhost"), now=timezone.now()
    )
    settings.EVENTS_ALLOW_LOCAL_URLS = False

    record_event()

    assert receiver.requests == []
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("refused:")
    assert "loopback" in attempt.error
    assert Delivery.objects.get().status == "pending"


@pytest.mark.django_db(transaction=True)
def test_redirects_are_not_followed(receiver: Receiver, make_receiver: Callable[[], Receiver]) -> None:
    receiver.script = ["redirect"]
    endpoints.endpoint_create(url=receiver.url, now=timezone.now())

    record_event()

    assert [r.answered for r in receiver.requests] == ["302"]  # nothing was sent to the Location
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == 302
    assert "redirects are not followed" in attempt.error
    assert Delivery.objects.get().status == "pending"
