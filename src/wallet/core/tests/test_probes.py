"""Health probes: /healthz says the process answers, /readyz that the database and broker do."""

from typing import Any

import pytest
from django.db.utils import OperationalError
from rest_framework.test import APIClient

from config.celery import app as celery_app
from wallet.core.testing import unused_port

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_auth(api: APIClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_real_database_and_redis(api: APIClient) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_is_503_when_the_broker_is_down(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{unused_port()}/0")
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "not_ready"
    assert body["details"]["checks"] == {"database": "ok", "broker": "unavailable"}


def test_readyz_is_503_when_the_database_is_down(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db.backends.utils import CursorWrapper

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["details"]["checks"]["database"] == "unavailable"
