"""Helpers for tests that talk to a real sandbox over HTTP.

``SandboxProcess`` runs ``python -m revio_sandbox`` as a subprocess on a free loopback port with its own
data folder; ``SandboxControl`` (control_client.py) is a typed client for the ``/_sandbox/`` control API.
The backend's test-suite uses both, so their signatures are kept stable (see docs/sandbox.md)::

    with SandboxProcess() as sandbox:
        api = sandbox.api_client()              # httpx.Client with the Bearer key, base .../api/v1/
        purchase = api.post("purchases/", json={...}).json()
        sandbox.control.purchase_pay(purchase["id"])
        sandbox.control.wait_for_delivery(object_id=purchase["id"], event_type="purchase.paid")
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from revio_sandbox.control_client import (
    CONTROL_TOKEN_ENV,
    Delivery,
    DeliveryAttempt,
    ErrorStatus,
    SandboxControl,
    WebhookFaultAction,
)

__all__ = [
    "CONTROL_TOKEN_ENV",
    "Delivery",
    "DeliveryAttempt",
    "ErrorStatus",
    "SandboxControl",
    "SandboxProcess",
    "WebhookFaultAction",
    "free_port",
]

# The package's parent folder, so the subprocess can import revio_sandbox even when it is not installed.
_SRC_DIR = str(Path(__file__).resolve().parent.parent)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxProcess:
    """Run the real sandbox as a subprocess for tests.

    ``data_dir=None`` makes a temporary folder that is deleted on ``stop()`` (unless ``keep_data``);
    pass the same ``data_dir`` to a new instance, or call ``restart()``, to test persistence. Output
    goes to ``<data_dir>/sandbox.log``.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        time_scale: float = 0.0001,
        payout_delay: float = 0.3,
        api_key: str | None = None,
        brand_id: str | None = None,
        port: int | None = None,
        public_url: str | None = None,
        delivery_timeout: float | None = None,
        extra_env: dict[str, str] | None = None,
        startup_timeout: float = 20.0,
        keep_data: bool = False,
        control_token: str | None = None,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="revio-sandbox-"))
        )
        self.keep_data = keep_data or not self._own_dir
        self.time_scale = time_scale
        self.payout_delay = payout_delay
        self.api_key = api_key or "sandbox_sk_test_" + secrets.token_hex(12)
        self.brand_id = brand_id or str(uuid.uuid4())
        self.port = port or free_port()
        self.public_url = public_url
        self.delivery_timeout = delivery_timeout
        self.extra_env = extra_env or {}
        self.startup_timeout = startup_timeout
        self.control_token = control_token
        self._process: subprocess.Popen[bytes] | None = None
        self._control: SandboxControl | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the sandbox, e.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The Revio API base, ``<base_url>/api/v1/`` (what the backend calls REVIO_BASE_URL)."""
        return f"{self.base_url}/api/v1/"

    @property
    def control(self) -> SandboxControl:
        if self._control is None:
            self._control = SandboxControl(self.base_url, token=self.control_token or "")
        return self._control

    @property
    def log_path(self) -> Path:
        return self.data_dir / "sandbox.log"

    def api_client(self, *, timeout: float = 10.0, api_key: str | None = None) -> httpx.Client:
        """An httpx client for the API: base URL ``api_url`` and the Bearer key set."""
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {api_key or self.api_key}"},
            timeout=timeout,
        )

    @property
    def eft_base_url(self) -> str:
        """The EFT API's base (``<base_url>/``: paths are ``v2/payment/eft`` ...)."""
        return f"{self.base_url}/"

    @property
    def eft_token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    def eft_credentials(self) -> tuple[str, str]:
        """The OAuth2 client id and secret the sandbox accepts (generated once per data folder)."""
        config = self.control.config()
        return str(config["eft_client_id"]), str(config["eft_client_secret"])

    def eft_client(self, *, timeout: float = 10.0) -> httpx.Client:
        """An httpx client for the EFT API with a fresh OAuth2 token (base ``eft_base_url``)."""
        client_id, secret = self.eft_credentials()
        response = httpx.post(
            self.eft_token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        response.raise_for_status()
        token = response.json()["access_token"]
        return httpx.Client(
            base_url=self.eft_base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def eft_register_callback(self, url: str) -> dict[str, Any]:
        """Register ``url`` for EFT_PAYMENT callbacks through the API (``POST /v2/clientcallbackurl/``)."""
        with self.eft_client() as client:
            response = client.post(
                "v2/clientcallbackurl/",
                json={"url": url, "callbackType": "EFT_PAYMENT", "callbackVersion": "V2"},
            )
            response.raise_for_status()
            return dict(response.json())

    def company_public_key(self) -> str:
        """The company PEM as ``GET /public_key/`` serves it (JSON-decoded)."""
        with self.api_client() as client:
            response = client.get("public_key/")
            response.raise_for_status()
            return str(response.json())

    def start(self) -> SandboxProcess:
        if self._process is not None:
            raise RuntimeError("sandbox already running")
        command = [
            sys.executable, "-m", "revio_sandbox", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--api-key", self.api_key, "--brand-id", self.brand_id,
            "--time-scale", repr(self.time_scale), "--payout-delay", repr(self.payout_delay),
            "--log-level", "warning",
        ]  # fmt: skip
        if self.public_url:
            command += ["--public-url", self.public_url]
        if self.delivery_timeout is not None:
            command += ["--delivery-timeout", repr(self.delivery_timeout)]
        env = {**os.environ, **self.extra_env}
        # The token goes by environment (not argv, which the process list shows); none means open.
        env.pop(CONTROL_TOKEN_ENV, None)
        if self.control_token:
            env[CONTROL_TOKEN_ENV] = self.control_token
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC_DIR, env.get("PYTHONPATH", "")) if p)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            # The command is built from our own arguments: sys.executable and fixed flags.
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        finally:
            log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self._process.returncode}:\n{self.read_log()}")
            try:
                if httpx.get(f"{self.base_url}/_sandbox/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"sandbox did not become healthy in {self.startup_timeout}s")

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, *, remove_data: bool | None = None) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self._control is not None:
            self._control.close()
            self._control = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if remove_data if remove_data is not None else not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> SandboxProcess:
        """Stop and start again on the same port and data folder (state must survive)."""
        self.stop(remove_data=False)
        return self.start()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
