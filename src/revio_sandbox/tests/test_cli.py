"""``revio-sandbox init`` and pure helpers (jsonb writer, amount formatting, magic values)."""

from __future__ import annotations

import json
from pathlib import Path

from revio_sandbox import jsonb
from revio_sandbox.__main__ import main
from revio_sandbox.checkout import content_security_policy, format_amount
from revio_sandbox.eft import OUTCOME_BY_SUFFIX
from revio_sandbox.tests.support import load_public_key


def test_init_writes_json_config_and_is_idempotent(tmp_path: Path) -> None:
    config = tmp_path / "revio.json"
    args = ["init", "--data-dir", str(tmp_path / "d"), "--api-key", "sk_test_x", "--brand-id", "b-1",
            "--webhook-url", "http://127.0.0.1:8000/webhooks/revio/",
            "--write-config", str(config)]  # fmt: skip
    assert main(args) == 0
    first = json.loads(config.read_text())
    assert first["REVIO_BASE_URL"] == "http://127.0.0.1:8100/api/v1/"
    assert first["REVIO_API_KEY"] == "sk_test_x"
    assert first["REVIO_BRAND_ID"] == "b-1"
    load_public_key(first["REVIO_PUBLIC_KEY"])
    load_public_key(first["REVIO_WEBHOOK_PUBLIC_KEY"])
    assert first["REVIO_PUBLIC_KEY"] != first["REVIO_WEBHOOK_PUBLIC_KEY"]
    assert main(args) == 0
    assert json.loads(config.read_text()) == first  # same keys, same webhook


def test_init_env_file_and_generated_identity(tmp_path: Path, capsys: object) -> None:
    config = tmp_path / "revio.env"
    assert (
        main(["init", "--data-dir", str(tmp_path / "d"), "--port", "9100", "--write-config", str(config)])
        == 0
    )
    values = {}
    for line in config.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = json.loads(value)
    assert values["REVIO_SANDBOX_URL"] == "http://127.0.0.1:9100"
    assert values["REVIO_API_KEY"].startswith("sandbox_sk_")
    assert values["REVIO_WEBHOOK_ID"] == ""
    assert "\n" in values["REVIO_PUBLIC_KEY"]
    assert all("\n" not in line for line in config.read_text().splitlines())


def test_jsonb_orders_keys_by_length_then_bytes() -> None:
    value = {"bb": 1, "a": {"zz": [1, {"yy": None, "x": True}], "c": "é"}, "ab": [], "abc": {}}
    assert (
        jsonb.dumps(value)
        == '{"a": {"c": "é", "zz": [1, {"x": true, "yy": null}]}, "ab": [], "bb": 1, "abc": {}}'
    )


def test_format_amount() -> None:
    assert format_amount(15000, "ZAR") == "R 150.00"
    assert format_amount(123456789, "ZAR") == "R 1 234 567.89"
    assert format_amount(5, "USD") == "USD 0.05"


def test_csp_allows_form_redirects_only_to_the_purchase_origins() -> None:
    policy = content_security_policy(
        {"success_redirect": "https://app.example/ok?x=1", "failure_redirect": ""}
    )
    assert "form-action 'self' https://app.example;" in policy
    assert "script-src" not in policy
    assert "default-src 'none'" in policy


def test_magic_values() -> None:
    assert OUTCOME_BY_SUFFIX.get("62000000000"[-4:], "success") == "success"
    assert [OUTCOME_BY_SUFFIX[f"000{n}"] for n in range(1, 5)] == [
        "reject",
        "fail",
        "return",
        "pending_forever",
    ]
