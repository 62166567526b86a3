"""The load generator: a small asyncio HTTP/1.1 client run as its own process.

    python benchmarks/loadgen.py SPEC.json OUT.json

SPEC: {"base_url", "mode": "open" | "closed", "rate" (open: requests/s), "concurrency" (closed: clients),
"duration" (s), "timeout" (s), "max_connections", "requests": [{"method", "path", "headers", "body"}],
"unique_idempotency_key": bool, "records": bool}. Request i uses requests[i % len(requests)].

Open loop: request i is *scheduled* at start + i/rate and its latency is measured from that scheduled
time, not from when it was actually sent, so a slow server cannot hide queueing by slowing the client
(coordinated omission). Closed loop: `concurrency` clients each send back to back (used for capacity and
the hot-wallet client counts); latency is then the service time seen by one client.

Every request sent is in the percentiles (`latency_ms`), whatever its answer: see `summarize`.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


TIMEOUT, ERROR, UNFINISHED = "timeout", "error", "unfinished"
SHED = {"503"}


def summarize(outcomes: list[tuple[str, float]], elapsed: float) -> dict[str, Any]:
    """Counts and latency percentiles over EVERY request sent, and the shed share beside them.

    `outcomes` holds (status, latency ms) per request: the HTTP status as a string, or "timeout"/"error"/
    "unfinished". A shed 503, a 4xx or a 5xx counts at its real latency; a timed-out or unanswered request at
    the time it was waited for (at least the client timeout). `latency_ms_ok` (2xx only) is kept beside it.
    """
    status: dict[str, int] = {}
    ok_latencies: list[float] = []
    for key, latency in outcomes:
        status[key] = status.get(key, 0) + 1
        if key.isdigit() and 200 <= int(key) < 300:
            ok_latencies.append(latency)
    sent, ok = len(outcomes), len(ok_latencies)
    shed = sum(n for k, n in status.items() if k in SHED)
    timeouts = status.get(TIMEOUT, 0) + status.get(UNFINISHED, 0)

    def share(n: int) -> float:
        return round(n / sent, 4) if sent else 0.0

    return {
        "sent": sent,
        "ok": ok,
        "ok_per_s": round(ok / elapsed, 2) if elapsed else 0.0,
        "status": status,
        "shed": shed,
        "shed_share": share(shed),
        "not_ok_share": share(sent - ok),
        "timeouts": timeouts,
        "unfinished": status.get(UNFINISHED, 0),
        "errors": status.get(ERROR, 0),
        "latency_ms": percentiles([latency for _, latency in outcomes]),
        "latency_ms_ok": percentiles(ok_latencies),
    }


class RequestTimeoutError(Exception):
    pass


class RawResponse:
    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx costs about a millisecond of CPU per request, which on a 2-core machine takes a large share
    of the CPU away from the server under test; this client costs a small fraction of that. It speaks
    just enough HTTP for gunicorn: Content-Length bodies, keep-alive, one request per connection at a time.
    """

    def __init__(self, base_url: str, *, timeout: float, max_connections: int) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = f"{self.host}:{self.port}"
        self.timeout = timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(max_connections)

    async def request(
        self, method: str, path: str, *, headers: dict[str, str], content: bytes | None
    ) -> RawResponse:
        async with self.slots:
            try:
                return await asyncio.wait_for(self._request(method, path, headers, content), self.timeout)
            except TimeoutError as exc:
                raise RequestTimeoutError() from exc

    async def _request(
        self, method: str, path: str, headers: dict[str, str], content: bytes | None
    ) -> RawResponse:
        reused = bool(self.idle)
        try:
            return await self._exchange(method, path, headers, content)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
            # A kept-alive connection the server had already closed: retry once on a new one.
            return await self._exchange(method, path, headers, content, fresh=True)

    async def _exchange(
        self, method: str, path: str, headers: dict[str, str], content: bytes | None, fresh: bool = False
    ) -> RawResponse:
        if self.idle and not fresh:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            body = content or b""
            if content is not None or method in {"POST", "PUT", "PATCH"}:
                lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            length, close, chunked = 0, False, False
            for line in header_lines:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value == "close":
                    close = True
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
            if chunked:
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    parts.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                payload = b"".join(parts)
            else:
                payload = await reader.readexactly(length) if length else b""
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return RawResponse(status, payload)

    async def aclose(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


class Run:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.templates: list[dict[str, Any]] = spec["requests"]
        self.timeout = float(spec.get("timeout", 10.0))
        self.outcomes: list[tuple[str, float]] = []  # status (or timeout/error/unfinished), latency ms
        self.records: list[tuple[int, int, float, float]] = []  # index, status, latency ms, done wall time
        self.first_ok_body: str | None = None

    def request_for(self, index: int) -> tuple[str, str, dict[str, str], bytes | None]:
        template = self.templates[index % len(self.templates)]
        headers = dict(template.get("headers") or {})
        if self.spec.get("unique_idempotency_key"):
            headers["Idempotency-Key"] = uuid.uuid4().hex
        body = template.get("body")
        return template["method"], template["path"], headers, body.encode() if body is not None else None

    async def one(self, client: RawClient, index: int, started: float) -> None:
        method, path, headers, body = self.request_for(index)
        status, key = 0, ERROR
        try:
            # Waiting for a free connection counts: the latency is measured from `started`, the
            # scheduled send time in open loop.
            response = await client.request(method, path, headers=headers, content=body)
            status = response.status_code
            key = str(status)
            if 200 <= status < 300 and self.first_ok_body is None:
                self.first_ok_body = response.text[:2000]
        except RequestTimeoutError:
            key = TIMEOUT
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            key = ERROR
        done = time.perf_counter()
        latency_ms = (done - started) * 1000.0
        self.outcomes.append((key, latency_ms))
        if self.spec.get("records"):
            self.records.append((index, status, round(latency_ms, 3), time.time()))

    async def open_loop(self, client: RawClient) -> float:
        rate = float(self.spec["rate"])
        total = max(1, int(rate * float(self.spec["duration"])))
        start = time.perf_counter() + 0.05
        tasks = []
        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(client, index, scheduled)))
        # Past the schedule, give the backlog `drain` seconds; whatever is still unanswered then counts as
        # unfinished (a timeout whose latency is at least the time waited), so a phase stays bounded.
        _done, pending = await asyncio.wait(tasks, timeout=float(self.spec.get("drain", 10.0)))
        now = time.perf_counter()
        for task in pending:
            task.cancel()
        # A cancelled task never records itself: count each at the time it was waited for, so the
        # percentiles still cover every request sent.
        done_count = len(self.outcomes)
        self.outcomes += [(UNFINISHED, (now - (start + i / rate)) * 1000.0) for i in range(done_count, total)]
        return now - start

    async def closed_loop(self, client: RawClient) -> float:
        deadline = time.perf_counter() + float(self.spec["duration"])
        counter = iter(range(10**9))
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await self.one(client, next(counter), time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(int(self.spec["concurrency"]))))
        return time.perf_counter() - start

    async def main(self) -> dict[str, Any]:
        client = RawClient(
            self.spec["base_url"],
            timeout=self.timeout,
            max_connections=int(self.spec.get("max_connections", 256)),
        )
        try:
            if self.spec["mode"] == "open":
                elapsed = await self.open_loop(client)
            else:
                elapsed = await self.closed_loop(client)
        finally:
            await client.aclose()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result: dict[str, Any] = {
            "mode": self.spec["mode"],
            "offered_rate": self.spec.get("rate"),
            "concurrency": self.spec.get("concurrency"),
            "duration_s": round(elapsed, 3),
            "timeout_s": self.timeout,
            **summarize(self.outcomes, elapsed),
            "loadgen_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "loadgen_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "loadgen_pid": os.getpid(),
            "first_ok_body": self.first_ok_body,
        }
        if self.spec.get("records"):
            result["records"] = self.records
        return result


def main() -> int:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as handle:
        spec = json.load(handle)
    result = asyncio.run(Run(spec).main())
    with open(out_path, "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
