"""Every 4xx and 5xx has the one error shape: {"error": {"code", "message", "details"}}."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return dict(body["error"])


class TestClientErrors:
    def test_unknown_api_url_is_a_json_404(self, api: APIClient) -> None:
        assert_error(api.get("/api/v1/no-such-thing"), 404, "not_found")

    def test_unknown_url_outside_the_api_is_a_json_404_too(self, api: APIClient) -> None:
        assert_error(api.get("/definitely-not-here"), 404, "not_found")

    def test_wrong_method_is_405_with_allow_header(self, api: APIClient) -> None:
        response = api.get("/api/v1/auth/register")
        assert_error(response, 405, "method_not_allowed")
        assert "POST" in response["Allow"]

    def test_malformed_json_is_400(self, api: APIClient) -> None:
        response = api.post(
            "/api/v1/auth/register", data='{"email": "a@b.co", ', content_type="application/json"
        )
        assert_error(response, 400, "malformed_json")

    def test_json_that_is_not_an_object_is_a_validation_error(self, api: APIClient) -> None:
        response = api.post("/api/v1/auth/register", data="[1, 2]", content_type="application/json")
        error = assert_error(response, 400, "validation_error")
        assert "non_field_errors" in error["details"]["fields"]

    def test_wrong_types_name_each_field(self, api: APIClient) -> None:
        response = api.post("/api/v1/auth/register", {"email": 42, "password": ["x"]}, format="json")
        error = assert_error(response, 400, "validation_error")
        assert set(error["details"]["fields"]) == {"email", "password"}

    def test_missing_fields_are_named(self, api: APIClient) -> None:
        error = assert_error(api.post("/api/v1/auth/token", {}, format="json"), 400, "validation_error")
        assert error["details"]["fields"]["email"] == ["This field is required."]
        assert error["details"]["fields"]["password"] == ["This field is required."]

    def test_oversized_body_is_refused_before_parsing(self, api: APIClient, settings: Any) -> None:
        big = '{"email": "' + "a" * (settings.API_MAX_BODY_BYTES + 10) + '"}'
        error = assert_error(
            api.post("/api/v1/auth/register", data=big, content_type="application/json"),
            400,
            "body_too_large",
        )
        assert error["details"]["limit_bytes"] == settings.API_MAX_BODY_BYTES

    def test_form_encoded_body_is_415(self, api: APIClient) -> None:
        response = api.post("/api/v1/auth/register", {"email": "a@b.co", "password": "x"})  # multipart
        assert_error(response, 415, "unsupported_media_type")

    def test_no_token_is_401(self, api: APIClient) -> None:
        response = api.get("/api/v1/me")
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_garbage_token_is_401(self, api: APIClient) -> None:
        api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
        assert_error(api.get("/api/v1/me"), 401, "token_not_valid")

    def test_user_on_admin_endpoint_is_403(self, user_api: APIClient) -> None:
        assert_error(user_api.get("/api/v1/admin/users"), 403, "permission_denied")

    @pytest.mark.urls("wallet.core.tests.urls")
    def test_throttled_is_429_with_retry_after(self, api: APIClient) -> None:
        from django.core.cache import cache

        cache.clear()
        assert api.get("/api/v1/_test/throttled").status_code == 200
        response = api.get("/api/v1/_test/throttled")
        error = assert_error(response, 429, "rate_limited")
        assert int(response["Retry-After"]) > 0
        assert error["details"]["retry_after_seconds"] == int(response["Retry-After"])


class TestServerErrors:
    @pytest.mark.urls("wallet.core.tests.urls")
    def test_unhandled_exception_in_api_is_500_without_internals(
        self, api: APIClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        response = api.get("/api/v1/_test/crash")
        error = assert_error(response, 500, "internal_error")
        assert "boom" not in response.content.decode()
        assert error["details"] == {}
        assert any("Unhandled error" in record.message for record in caplog.records)

    @pytest.mark.urls("wallet.core.tests.urls")
    def test_unhandled_exception_outside_drf_is_json_500(self) -> None:
        client = Client(raise_request_exception=False)
        response = client.get("/plain-crash")
        assert_error(response, 500, "internal_error")
        assert "boom" not in response.content.decode()


class TestRequestId:
    def test_every_response_carries_a_generated_request_id(self, api: APIClient) -> None:
        first = api.get("/healthz")["X-Request-ID"]
        second = api.get("/healthz")["X-Request-ID"]
        assert len(first) == 32
        assert first != second

    def test_a_sane_incoming_request_id_is_kept(self, api: APIClient) -> None:
        response = api.get("/healthz", HTTP_X_REQUEST_ID="frontend-req-12345")
        assert response["X-Request-ID"] == "frontend-req-12345"

    def test_a_hostile_incoming_request_id_is_replaced(self, api: APIClient) -> None:
        response = api.get("/healthz", HTTP_X_REQUEST_ID="evil\r\nSet-Cookie: x=1")
        assert response["X-Request-ID"] != "evil\r\nSet-Cookie: x=1"
        assert len(response["X-Request-ID"]) == 32

    def test_log_lines_carry_the_request_id(self, api: APIClient) -> None:
        import io
        import logging

        from wallet.core.logging import RequestIdFilter

        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
        logger = logging.getLogger("wallet.core.http.exception_handler")
        logger.addHandler(handler)
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr("django.conf.settings.ROOT_URLCONF", "wallet.core.tests.urls")
                response = api.get("/api/v1/_test/crash", HTTP_X_REQUEST_ID="trace-abcdef-001")
        finally:
            logger.removeHandler(handler)
        assert response.status_code == 500
        assert "trace-abcdef-001 Unhandled error" in stream.getvalue()
