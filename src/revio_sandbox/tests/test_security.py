"""F9: the sandbox listens on loopback unless told otherwise, and its control API can require a token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from revio_sandbox.__main__ import build_parser
from revio_sandbox.testing import SandboxControl, SandboxProcess

TOKEN = "control-token-for-tests"


def test_binds_to_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVIO_SANDBOX_HOST", raising=False)
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert build_parser().parse_args(["serve", "--host", "0.0.0.0"]).host == "0.0.0.0"  # noqa: S104


def test_the_token_comes_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIO_SANDBOX_CONTROL_TOKEN", TOKEN)
    assert build_parser().parse_args(["serve"]).control_token == TOKEN
    monkeypatch.delenv("REVIO_SANDBOX_CONTROL_TOKEN")
    assert build_parser().parse_args(["serve"]).control_token is None


@pytest.fixture(scope="module")
def guarded() -> Iterator[SandboxProcess]:
    with SandboxProcess(control_token=TOKEN) as process:
        yield process


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "config"), ("POST", "reset"), ("GET", "deliveries"), ("POST", "faults/http")],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_control_calls_without_the_token_are_refused(
    guarded: SandboxProcess, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(method, f"{guarded.base_url}/_sandbox/{path}", headers=headers, json={})
    assert response.status_code == 401
    assert response.json()["__all__"][0]["code"] == "authentication_failed"
    assert guarded.api_key not in response.text


def test_the_client_with_the_token_gets_through(guarded: SandboxProcess) -> None:
    assert guarded.control.config()["api_key"] == guarded.api_key
    assert guarded.control.health()["control_token_required"] is True
    with SandboxControl(guarded.base_url, token=TOKEN) as control:
        control.reset()


def test_the_client_reads_the_token_from_the_environment(
    guarded: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIO_SANDBOX_CONTROL_TOKEN", TOKEN)
    with SandboxControl(guarded.base_url) as control:
        assert control.config()["brand_id"] == guarded.brand_id


def test_health_stays_open_and_the_api_keeps_its_own_key(guarded: SandboxProcess) -> None:
    assert httpx.get(f"{guarded.base_url}/_sandbox/health").status_code == 200
    with guarded.api_client() as api:
        assert api.get("public_key/").status_code == 200


def test_without_a_token_the_control_api_stays_open(sandbox: SandboxProcess) -> None:
    assert httpx.get(f"{sandbox.base_url}/_sandbox/config").status_code == 200
