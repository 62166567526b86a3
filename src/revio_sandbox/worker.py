"""The background loop: sends webhook deliveries and runs time-driven steps (EFT payments, due dates).

It runs as an asyncio task inside the uvicorn process (started by the Starlette lifespan). Work is
driven by rows in SQLite, so a restart resumes pending deliveries and EFT payment steps where they stopped.
Attempts for different (object, target) chains run concurrently; within a chain strictly one at a time,
in event order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from revio_sandbox import __version__
from revio_sandbox.core import Sandbox

log = logging.getLogger("revio_sandbox.delivery")

MAX_IDLE_SECONDS = 0.5  # upper bound on how long the loop sleeps without a wake-up
RESPONSE_BODY_KEPT = 4096  # bytes of the receiver's answer kept per attempt (for the dashboard)
USER_AGENT = f"revio-sandbox/{__version__}"


class DeliveryWorker:
    """Owns the delivery loop task and the shared HTTP client."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        sandbox.on_change = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._main = asyncio.create_task(self._run(), name="revio-sandbox-delivery")

    async def stop(self) -> None:
        tasks = [t for t in (self._main, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        timeout = self.sandbox.settings.delivery_timeout
        headers = {"User-Agent": USER_AGENT}
        async with httpx.AsyncClient(timeout=timeout, headers=headers, follow_redirects=False) as client:
            while True:
                self._wake.clear()
                try:
                    self._step(client)
                except Exception:  # the loop must survive a bad row or a locked DB; logged
                    log.exception("delivery loop step failed")
                sleep_for = MAX_IDLE_SECONDS
                upcoming = self.sandbox.next_wakeup()
                if upcoming is not None:
                    sleep_for = min(sleep_for, max(0.0, upcoming - time.time()))
                if sleep_for > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=sleep_for)
                else:
                    await asyncio.sleep(0.005)  # something is due right now but busy: yield briefly

    def _step(self, client: httpx.AsyncClient) -> None:
        now = time.time()
        self.sandbox.tick(now)
        for row in self.sandbox.deliveries.due(now, self._busy):
            chain = (str(row["object_id"]), str(row["target"]))
            self._busy.add(chain)
            signature = self.sandbox.deliveries.signature(row)
            if signature is None:
                self.sandbox.deliveries.abandon(int(row["id"]), "webhook_deleted")
                self._busy.discard(chain)
                continue
            task = asyncio.create_task(
                self._attempt(client, int(row["id"]), str(row["url"]), bytes(row["body"]), signature, chain)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        delivery_id: int,
        url: str,
        body: bytes,
        signature: str,
        chain: tuple[str, str],
    ) -> None:
        attempted_at = time.time()
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        response_headers: dict[str, str] | None = None
        response_body: str | None = None
        headers = {"Content-Type": "application/json"}
        if signature:  # EFT callbacks are unsigned
            headers["X-Signature"] = signature
        try:
            response = await client.post(url, content=body, headers=headers)
            status_code = response.status_code
            response_headers = dict(response.headers)
            response_body = response.content[:RESPONSE_BODY_KEPT].decode("utf-8", "replace")
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = (time.monotonic() - started) * 1000
        try:
            self.sandbox.deliveries.record_attempt(
                delivery_id,
                attempted_at=attempted_at,
                url=url,
                status_code=status_code,
                error=error,
                duration_ms=round(duration_ms, 1),
                signature=signature,
                request_headers={"User-Agent": USER_AGENT, **headers},
                response_headers=response_headers,
                response_body=response_body,
            )
        finally:
            self._busy.discard(chain)
            self.wake()
