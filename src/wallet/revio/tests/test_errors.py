"""Revio's error bodies become our RevioApiError list (platform fact 4), kept on the exception and logged
by field and code only."""

import logging
from typing import Any

import httpx
import pytest

from revio_sandbox.testing import SandboxProcess
from wallet.revio.client import api_errors, get_client
from wallet.revio.eft import _parse
from wallet.revio.errors import RevioApiError, RevioRejectedError


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The platform's shape: every key maps to a list of {message, code} (Klix docs, Java SDK ApiErrors).
        (
            {"creditor": [{"message": "Enter a valid value.", "code": "invalid"}]},
            [RevioApiError("creditor", "invalid", "Enter a valid value.")],
        ),
        (
            {
                "__all__": [{"message": "Refund failed.", "code": "purchase_refund_error"}],
                "brand_id": [{"message": "Required.", "code": "required"}, {"message": "Bad.", "code": "x"}],
            },
            [
                RevioApiError("__all__", "purchase_refund_error", "Refund failed."),
                RevioApiError("brand_id", "required", "Required."),
                RevioApiError("brand_id", "x", "Bad."),
            ],
        ),
        # __all__ as a single object (one OpenAPI example): accepted too.
        (
            {"__all__": {"message": "Not found.", "code": "not_found"}},
            [RevioApiError("__all__", "not_found", "Not found.")],
        ),
        # Nested objects by field, and bare messages (DRF style, as today's sandbox answers).
        (
            {"client": {"email": ["This field is required."]}},
            [RevioApiError("client.email", "", "This field is required.")],
        ),
        # A nested object with a field called "code" is a field, not an error object.
        (
            {"client": {"code": [{"message": "Too long.", "code": "max_length"}]}},
            [RevioApiError("client.code", "max_length", "Too long.")],
        ),
        ({"detail": 5}, []),
        (["not", "a", "dict"], []),
        ("text", []),
    ],
)
def test_error_bodies_parse_into_our_types(body: Any, expected: list[RevioApiError]) -> None:
    assert list(api_errors(body)) == expected


@pytest.mark.django_db
def test_a_refused_create_carries_the_errors_and_logs_codes_not_messages(
    revio: SandboxProcess, caplog: Any
) -> None:
    """Real HTTP: the sandbox refuses a purchase whose client has no email."""
    secret = "secret-looking-reference-62001234567"
    with (
        caplog.at_level(logging.INFO, logger="wallet.revio.client"),
        pytest.raises(RevioRejectedError) as raised,
    ):
        get_client().purchase_create(
            reference=secret,
            amount=1_000,
            currency="ZAR",
            email="",
            success_redirect="https://example.invalid/ok",
            failure_redirect="https://example.invalid/no",
            success_callback="https://example.invalid/cb",
            due=2_000_000_000,
        )
    error = raised.value
    assert error.status == 400
    assert [e.field for e in error.errors] == ["client.email"]
    assert error.errors[0].message  # kept on the exception for whoever handles it
    assert "client.email" in str(error)
    assert error.errors[0].message not in str(error)
    logged = [r.getMessage() for r in caplog.records if r.name == "wallet.revio.client"]
    assert any("client.email" in line for line in logged), logged
    assert not any(error.errors[0].message in line or secret in line for line in logged), logged


@pytest.mark.django_db
def test_a_general_error_keeps_its_code(revio: SandboxProcess) -> None:
    with pytest.raises(RevioRejectedError) as raised:
        get_client().purchase_get("00000000-0000-4000-8000-000000000000")
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert raised.value.errors == (RevioApiError("__all__", "not_found", "Not found."),)


def test_an_eft_refusal_names_fields_never_the_message_that_may_echo_an_account() -> None:
    body = {
        "statusCode": 400,
        "message": "Validation failed",
        "errors": [{"field": "creditor.accountNumber", "message": "62001234567 is not a valid account"}],
    }
    with pytest.raises(RevioRejectedError) as raised:
        _parse(httpx.Response(400, json=body), creating=True)
    assert raised.value.errors == (
        RevioApiError("creditor.accountNumber", "", "62001234567 is not a valid account"),
    )
    assert str(raised.value) == "EFT API 400: Bad Request (invalid: creditor.accountNumber)"
