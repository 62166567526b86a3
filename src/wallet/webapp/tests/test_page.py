"""The page's HTTP side: where it is served, its Content-Security-Policy, and markup rules (no inline code,
a label for every control) that the browser tests rely on."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from wallet.webapp.views import PAGE_POLICY

DEPOSIT_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script_text = ""
        self.in_script = False
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.event_handler_attributes: list[str] = []
        self.style_attributes: list[str] = []
        self.style_elements = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.event_handler_attributes += [name for name, _ in attrs if name.startswith("on")]
        if "style" in attributes:
            self.style_attributes.append(tag)
        if tag == "script":
            self.scripts.append(attributes)
            self.in_script = True
        if tag == "style":
            self.style_elements += 1
        if tag in {"input", "select", "textarea"}:
            self.controls.append(attributes)
        if tag == "label" and attributes.get("for"):
            self.labels.add(str(attributes["for"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.inline_script_text += data.strip()


@pytest.fixture
def page_markup(client: Client) -> _Markup:
    response = client.get("/")
    parser = _Markup()
    parser.feed(response.content.decode())
    return parser


@pytest.mark.parametrize(
    "path",
    [
        "/",
        f"/deposits/{DEPOSIT_ID}",
        f"/deposits/{DEPOSIT_ID}?result=success",
        # Where the emails link (FRONTEND_URL + these paths).
        f"/transactions/{DEPOSIT_ID}",
        "/settings/notifications",
        "/reset-password?token=abc",
    ],
)
def test_the_page_is_served_with_a_strict_policy_where_the_checkout_returns(
    client: Client, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    csp = response["Content-Security-Policy"]
    assert csp == PAGE_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other origin
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in csp
    assert response["X-Frame-Options"] == "DENY"


def test_other_paths_are_not_the_page(client: Client) -> None:
    assert client.get("/deposits/not-a-uuid").status_code == 404
    assert client.get("/withdrawals/" + DEPOSIT_ID).status_code == 404
    assert client.post("/").status_code == 405


def test_the_api_keeps_its_own_errors_and_gets_no_page_policy(client: Client) -> None:
    response = client.get("/api/v1/balance")
    assert response.status_code == 401
    assert response.json()["error"]["code"]
    assert "Content-Security-Policy" not in response


def test_no_inline_code_and_no_inline_styles(page_markup: _Markup) -> None:
    assert page_markup.scripts, "the page loads its script"
    assert all(script.get("src", "").startswith("/static/webapp/") for script in page_markup.scripts)  # type: ignore[union-attr]
    assert page_markup.inline_script_text == ""
    assert page_markup.event_handler_attributes == []
    assert page_markup.style_attributes == []
    assert page_markup.style_elements == 0


def test_every_control_has_a_label(page_markup: _Markup) -> None:
    assert len(page_markup.controls) >= 15
    unlabelled = [c for c in page_markup.controls if c.get("id") not in page_markup.labels]
    assert unlabelled == []


def test_the_static_files_are_served(client: Client) -> None:
    for name in ("wallet.js", "wallet.css"):
        response: Any = client.get(f"/static/webapp/{name}")
        assert response.status_code == 200, name
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 1000
        # The page never parses API data as HTML; the policy's Trusted Types would refuse it anyway.
        assert not re.search(rb"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", body)
