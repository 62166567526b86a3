"""Command line: ``revio-sandbox [serve] [options]`` runs the server; ``revio-sandbox init`` sets up
and exits.

Every option can also come from an environment variable ``REVIO_SANDBOX_<OPTION>`` (e.g.
``REVIO_SANDBOX_TIME_SCALE``); a command-line flag wins over the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from revio_sandbox import __version__

ENV_PREFIX = "REVIO_SANDBOX_"
DEFAULT_DATA_DIR = ".run/revio-sandbox"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def _float_env(name: str, default: float) -> float:
    value = _env(name)
    return float(value) if value else default


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_env("HOST", DEFAULT_HOST), help="interface to listen on")
    parser.add_argument("--port", type=int, default=int(_env("PORT", str(DEFAULT_PORT)) or DEFAULT_PORT))
    parser.add_argument(
        "--data-dir", default=_env("DATA_DIR", DEFAULT_DATA_DIR), help="folder holding sandbox.db (all state)"
    )
    parser.add_argument("--api-key", default=_env("API_KEY"), help="the accepted secret key (generated once)")
    parser.add_argument("--brand-id", default=_env("BRAND_ID"), help="the brand UUID (generated once)")
    parser.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL"),
        help="base URL for checkout_url (default http://host:port)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revio-sandbox", description="A local emulator of Revio Pay's gateway API."
    )
    parser.add_argument("--version", action="version", version=f"revio-sandbox {__version__}")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the sandbox server (the default command)")
    _add_common(serve)
    serve.add_argument(
        "--time-scale",
        type=float,
        default=_float_env("TIME_SCALE", 1.0),
        help="multiplier for the webhook retry schedule (1.0 = Revio's ~36 h; 0.0001 = ~13 s)",
    )
    serve.add_argument(
        "--payout-delay",
        type=float,
        default=_float_env("PAYOUT_DELAY", 2.0),
        help="wall-clock seconds from EFT payment creation to its outcome",
    )
    serve.add_argument(
        "--delivery-timeout",
        type=float,
        default=_float_env("DELIVERY_TIMEOUT", 0.0) or None,
        help="timeout of one delivery request in seconds (default 10 x time scale, between 1 and 10)",
    )
    serve.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))
    # Read from the environment only, so the token never shows in the process list.
    serve.set_defaults(control_token=_env("CONTROL_TOKEN") or None)

    init = commands.add_parser(
        "init", help="create keys, the api key, brand and a webhook; write a config file"
    )
    _add_common(init)
    init.add_argument(
        "--webhook-url", default=_env("WEBHOOK_URL"), help="ensure an all-events webhook to this URL"
    )
    init.add_argument("--webhook-title", default="Wallet backend (sandbox)")
    init.add_argument(
        "--eft-callback-url",
        default=_env("EFT_CALLBACK_URL"),
        help="register this URL for EFT_PAYMENT callbacks (default: the webhook URL + /eft)",
    )
    init.add_argument(
        "--write-config",
        default=_env("WRITE_CONFIG"),
        help="write settings for the backend here: JSON if the name ends in .json, else KEY=value env lines",
    )
    return parser


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def _public_url(args: argparse.Namespace) -> str:
    if args.public_url:
        return str(args.public_url).rstrip("/")
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104 - display only
    return f"http://{host}:{args.port}"


def _open(args: argparse.Namespace, **runtime: Any) -> Any:
    from revio_sandbox.core import RuntimeSettings, Sandbox
    from revio_sandbox.store import Store

    store = Store(Path(args.data_dir))
    sandbox = Sandbox(store, RuntimeSettings(public_url=_public_url(args), **runtime))
    api_key, brand_id, generated = sandbox.ensure_identity(api_key=args.api_key, brand_id=args.brand_id)
    return sandbox, api_key, brand_id, generated


def _write_config(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        text = json.dumps(values, indent=2) + "\n"
    else:
        # Double-quoted values with \n escapes keep each PEM on one line, as .env readers expect.
        text = "".join(f"{key}={json.dumps(value)}\n" for key, value in values.items())
    path.write_text(text, encoding="utf-8")


def run_init(args: argparse.Namespace) -> int:
    sandbox, api_key, brand_id, generated = _open(args)
    webhook: dict[str, Any] | None = None
    if args.webhook_url:
        webhook = sandbox.webhooks.ensure(callback=args.webhook_url, title=args.webhook_title)
    eft_callback_url = args.eft_callback_url or (
        f"{args.webhook_url.rstrip('/')}/eft" if args.webhook_url else ""
    )
    if eft_callback_url:
        with sandbox.store.transaction():
            sandbox.eft.callback_ensure(eft_callback_url)
    base_url = _public_url(args)
    values = {
        "REVIO_SANDBOX_URL": base_url,
        "REVIO_BASE_URL": f"{base_url}/api/v1/",
        "REVIO_API_KEY": api_key,
        "REVIO_BRAND_ID": brand_id,
        "REVIO_PUBLIC_KEY": sandbox.company_public_key(),
        "REVIO_WEBHOOK_ID": webhook["id"] if webhook else "",
        "REVIO_WEBHOOK_PUBLIC_KEY": webhook["public_key"] if webhook else "",
        # The EFT payments API (REVIO_PAYOUT_ROUTE=eft): same server, OAuth2 client credentials.
        "REVIO_EFT_BASE_URL": f"{base_url}/",
        "REVIO_EFT_TOKEN_URL": f"{base_url}/oauth2/token",
        "REVIO_EFT_CLIENT_ID": sandbox.eft.client_id,
        "REVIO_EFT_CLIENT_SECRET": sandbox.eft.client_secret,
    }
    if args.write_config:
        _write_config(Path(args.write_config), values)
        print(f"revio-sandbox: wrote {args.write_config}")  # noqa: T201 - CLI output
    print(f"revio-sandbox: initialised {args.data_dir} (brand {brand_id})")  # noqa: T201
    if generated:
        print(f"revio-sandbox: generated API key {api_key}")  # noqa: T201
    if webhook:
        print(f"revio-sandbox: webhook {webhook['id']} -> {webhook['callback']}")  # noqa: T201
    print(f"revio-sandbox: EFT client id {sandbox.eft.client_id}")  # noqa: T201
    if eft_callback_url:
        print(f"revio-sandbox: EFT_PAYMENT callbacks -> {eft_callback_url}")  # noqa: T201
    sandbox.store.close()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from revio_sandbox.app import create_app

    delivery_timeout = args.delivery_timeout or max(1.0, min(10.0, 10.0 * args.time_scale))
    sandbox, api_key, brand_id, generated = _open(
        args,
        time_scale=args.time_scale,
        payout_delay=args.payout_delay,
        delivery_timeout=delivery_timeout,
        control_token=args.control_token,
    )
    url = sandbox.settings.public_url
    lines = [
        f"Revio sandbox {__version__} on {url}  (API {url}/api/v1/, control {url}/_sandbox/)",
        f"  data dir: {Path(args.data_dir).resolve()}",
        f"  brand id: {brand_id}",
        f"  api key:  {api_key}" + ("  (generated and stored)" if generated else ""),
        f"  time scale: {args.time_scale}  payout delay: {args.payout_delay}s",
        "  control API: "
        + ("needs its token" if args.control_token else "open (no REVIO_SANDBOX_CONTROL_TOKEN)"),
    ]
    if not _is_loopback(args.host) and not args.control_token:
        lines.append(
            f"  WARNING: listening on {args.host} with an open control API (it shows the API key and can"
            " settle payments); set REVIO_SANDBOX_CONTROL_TOKEN"
        )
    print("\n".join(lines), flush=True)  # noqa: T201 - the startup banner is the point
    uvicorn.run(
        create_app(sandbox),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        http="h11",  # the drop-connection fault relies on h11's request cycle (see app.TransportStash)
        lifespan="on",
        workers=1,
        timeout_graceful_shutdown=2,
    )
    sandbox.store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ("serve", "init", "-h", "--help", "--version"):
        arguments.insert(0, "serve")
    args = build_parser().parse_args(arguments)
    if args.command == "init":
        return run_init(args)
    return run_serve(args)


if __name__ == "__main__":
    sys.exit(main())
