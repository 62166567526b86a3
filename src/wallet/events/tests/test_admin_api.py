"""The admin API and the console pages for event endpoints and deliveries."""

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.audit.models import AuditEvent
from wallet.events import endpoints
from wallet.events.models import Delivery, EventEndpoint
from wallet.events.tests.conftest import Receiver, drain, record_event

ENDPOINTS = "/api/v1/admin/event-endpoints"
pytestmark = pytest.mark.django_db


class TestEndpoints:
    def test_create_shows_the_secret_once_and_stores_it_encrypted(self, admin_api: APIClient) -> None:
        response = admin_api.post(
            ENDPOINTS,
            {"url": "http://127.0.0.1:9/hooks", "description": "frontend", "event_types": ["withdrawal.*"]},
            format="json",
        )

        assert response.status_code == 201, response.content
        created = response.json()
        assert created["secret"].startswith("whsec_")
        assert created["event_types"] == ["withdrawal.*"]
        assert created["enabled"] is True
        stored = EventEndpoint.objects.get(id=created["id"])
        assert created["secret"] not in stored.secrets_encrypted
        read = admin_api.get(f"{ENDPOINTS}/{created['id']}").json()
        assert "secret" not in read
        listed = admin_api.get(ENDPOINTS).json()
        assert set(listed) == {"results", "next", "previous"}
        assert [e["id"] for e in listed["results"]] == [created["id"]]
        assert "secret" not in listed["results"][0]

    @pytest.mark.parametrize("event_types", [["deposit.created"], ["nope.*"], ["*.*"]])
    def test_unknown_event_types_are_refused(self, admin_api: APIClient, event_types: list[str]) -> None:
        response = admin_api.post(
            ENDPOINTS, {"url": "http://127.0.0.1:9/", "event_types": event_types}, format="json"
        )

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert "event_types" in response.json()["error"]["details"]["fields"]
        assert not EventEndpoint.objects.exists()

    def test_families_reserved_for_later_types_can_be_subscribed(self, admin_api: APIClient) -> None:
        body = {"url": "http://127.0.0.1:9/", "event_types": ["refund.*", "chargeback.*", "debt.*", "*"]}
        assert admin_api.post(ENDPOINTS, body, format="json").status_code == 201

    def test_update_and_delete(self, admin_api: APIClient) -> None:
        created = admin_api.post(ENDPOINTS, {"url": "http://127.0.0.1:9/"}, format="json").json()
        path = f"{ENDPOINTS}/{created['id']}"

        updated = admin_api.patch(
            path, {"event_types": ["deposit.completed"], "enabled": False}, format="json"
        )
        assert updated.status_code == 200
        assert (updated.json()["event_types"], updated.json()["enabled"]) == (["deposit.completed"], False)

        assert admin_api.delete(path).status_code == 204
        assert admin_api.get(path).status_code == 404
        assert admin_api.delete(path).json()["error"]["code"] == "not_found"
        assert EventEndpoint.objects.get(id=created["id"]).deleted_at is not None  # kept as a record

    def test_registering_changing_and_deleting_an_endpoint_is_audited(
        self, admin_api: APIClient, admin_user: User
    ) -> None:
        """Where users' money events are sent is a security decision: each change is in the audit chain,
        with the admin who made it and what changed, and never the secret."""
        created = admin_api.post(ENDPOINTS, {"url": "http://127.0.0.1:9/"}, format="json").json()
        path = f"{ENDPOINTS}/{created['id']}"
        admin_api.patch(path, {"url": "http://127.0.0.1:10/"}, format="json")
        admin_api.delete(path)
        trail = AuditEvent.objects.filter(action="event_endpoint_changed", subject_id=created["id"]).order_by(
            "id"
        )
        assert [(e.details["change"], e.actor_id) for e in trail] == [
            ("created", admin_user.id),
            ("updated", admin_user.id),
            ("deleted", admin_user.id),
        ]
        assert trail[1].details["url"] == "http://127.0.0.1:10/"
        assert all(created["secret"] not in str(e.details) for e in trail)

    def test_rotation_returns_a_new_secret_keeps_the_old_one_for_the_grace_period_and_is_audited(
        self, admin_api: APIClient, settings: Any
    ) -> None:
        created = admin_api.post(ENDPOINTS, {"url": "http://127.0.0.1:9/"}, format="json").json()

        rotated = admin_api.post(f"{ENDPOINTS}/{created['id']}/rotate-secret")

        assert rotated.status_code == 200
        body = rotated.json()
        assert body["secret"] != created["secret"]
        assert body["previous_secret_retires_at"] is not None
        assert body["secret_rotated_at"] is not None
        audit = AuditEvent.objects.get(action="key_rotated", subject_id=created["id"])
        assert created["secret"] not in str(audit.details)
        assert body["secret"] not in str(audit.details)

    def test_rotation_without_a_grace_period_retires_the_old_secret_at_once(
        self, admin_api: APIClient, settings: Any
    ) -> None:
        settings.EVENTS_SECRET_ROTATION_GRACE_SECONDS = 0
        created = admin_api.post(ENDPOINTS, {"url": "http://127.0.0.1:9/"}, format="json").json()
        rotated = admin_api.post(f"{ENDPOINTS}/{created['id']}/rotate-secret").json()

        endpoint = EventEndpoint.objects.get(id=created["id"])
        assert endpoints.secrets_in_use(endpoint, now=timezone.now()) == [rotated["secret"]]
        assert rotated["previous_secret_retires_at"] is None

    def test_users_cannot_see_or_touch_endpoints(self, user_api: APIClient) -> None:
        assert user_api.get(ENDPOINTS).status_code == 403
        response = user_api.post(ENDPOINTS, {"url": "http://127.0.0.1:9/"}, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert not EventEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
class TestDeliveriesAndReplay:
    def test_the_delivery_list_shows_each_attempt(self, admin_api: APIClient, receiver: Receiver) -> None:
        receiver.script = [500]
        created = admin_api.post(ENDPOINTS, {"url": receiver.url}, format="json").json()
        event = record_event()
        drain()

        response = admin_api.get(f"{ENDPOINTS}/{created['id']}/deliveries")

        assert response.status_code == 200
        (delivery,) = response.json()["results"]
        assert (delivery["event_id"], delivery["event_type"], delivery["status"]) == (
            str(event.id),
            "deposit.completed",
            "delivered",
        )
        assert delivery["attempts"] == 2
        latest, first = delivery["recent_attempts"]
        assert (first["status_code"], first["succeeded"], first["error"]) == (500, False, "HTTP 500")
        assert (latest["status_code"], latest["succeeded"]) == (200, True)
        assert str(event.id) in latest["response_excerpt"]
        assert isinstance(latest["latency_ms"], int)
        filtered = admin_api.get(f"{ENDPOINTS}/{created['id']}/deliveries?status=dead_lettered")
        assert filtered.json()["results"] == []
        bad = admin_api.get(f"{ENDPOINTS}/{created['id']}/deliveries?status=lost")
        assert bad.status_code == 400

    def test_replay_needs_an_event_or_a_start_and_names_a_missing_event(
        self, admin_api: APIClient, receiver: Receiver
    ) -> None:
        created = admin_api.post(ENDPOINTS, {"url": receiver.url}, format="json").json()
        path = f"{ENDPOINTS}/{created['id']}/replay"

        empty = admin_api.post(path, {}, format="json")
        assert empty.status_code == 400
        assert empty.json()["error"]["code"] == "validation_error"
        missing = admin_api.post(path, {"event_id": "7b1e1f3c-0000-4000-8000-000000000000"}, format="json")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "event_not_found"

    def test_replay_by_time_range_through_the_api_is_audited(
        self, admin_api: APIClient, receiver: Receiver
    ) -> None:
        created = admin_api.post(ENDPOINTS, {"url": receiver.url}, format="json").json()
        start = timezone.now()
        event = record_event()
        drain()

        response = admin_api.post(
            f"{ENDPOINTS}/{created['id']}/replay", {"created_after": start.isoformat()}, format="json"
        )
        drain()

        assert response.json() == {"queued": 1}
        assert [r.event_id for r in receiver.requests] == [str(event.id)] * 2
        assert AuditEvent.objects.filter(action="webhook_replayed", subject_id=created["id"]).count() == 1


@pytest.mark.django_db(transaction=True)
class TestConsole:
    def test_endpoints_and_deliveries_pages_and_the_replay_action(
        self, admin_user: User, receiver: Receiver
    ) -> None:
        endpoints.endpoint_create(url=receiver.url, now=timezone.now())
        record_event()
        delivery = Delivery.objects.get()
        console = Client()
        console.force_login(admin_user)

        index = console.get("/admin/")
        assert b"Outgoing events" in index.content
        for page in ("/admin/events/eventendpoint/", "/admin/events/delivery/", "/admin/events/event/"):
            assert console.get(page).status_code == 200, page
        detail = console.get(f"/admin/events/delivery/{delivery.id}/change/")
        assert detail.status_code == 200
        assert b"secrets_encrypted" not in console.get("/admin/events/eventendpoint/").content

        response = console.post(
            "/admin/events/delivery/", {"action": "replay", "_selected_action": [str(delivery.id)]}
        )

        assert response.status_code == 302
        assert len(receiver.requests) == 2
        assert receiver.requests[0].event_id == receiver.requests[1].event_id
        delivery.refresh_from_db()
        assert delivery.replays == 1
