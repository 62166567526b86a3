"""Middleware for request ids, body size limits, load shedding and the proxy-count check."""

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from wallet.core import metrics
from wallet.core.context import request_id_var, server_queue_wait
from wallet.core.http.responses import error_response

logger = logging.getLogger(__name__)

# A caller's id is kept only if it is short and plain, so it cannot inject into logs or headers.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Give every request an id: the caller's X-Request-ID if sane, otherwise a new one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _ACCEPTABLE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class BodySizeLimitMiddleware:
    """Refuse oversized API bodies before anything reads them.

    DRF's JSON parser reads the stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE alone
    does not bound it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int = settings.API_MAX_BODY_BYTES
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return error_response(400, "invalid_content_length", "The Content-Length header is not a number.")
        if length > limit and request.path.startswith("/api/"):
            return error_response(
                400,
                "body_too_large",
                f"The request body is larger than the {limit} bytes this API accepts.",
                {"limit_bytes": limit},
            )
        return self.get_response(request)


class AdminContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on the admin (the operations console): scripts only from our own
    origin, no framing, forms posting only to us. Inline style attributes are allowed; inline scripts not."""

    POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/" + settings.ADMIN_URL.lstrip("/")):
            response.setdefault("Content-Security-Policy", self.POLICY)
        return response


class LoadSheddingMiddleware:
    """Admission control for the API: at most API_MAX_ACTIVE_REQUESTS requests of this process do work at
    once; up to API_MAX_QUEUED_REQUESTS more wait for a slot, each at most API_QUEUE_TIMEOUT_SECONDS; the
    rest are answered 503 with Retry-After at once.

    Why: past capacity, a server that accepts everything only grows its queue, every request waits longer
    than the client will, and goodput falls to zero (clients time out on work that was done anyway). A
    fast 503 costs almost nothing, tells the client when to come back, and keeps the admitted requests
    at full speed. Requests that wait in the web server's own queue (all its threads busy) are seen too,
    when the server says how long they waited (wallet.core.http.gunicorn_worker): one that waited longer
    than API_QUEUE_TIMEOUT_SECONDS is shed as soon as a thread takes it, so that queue drains at the
    cost of a 503 each. Health probes and /metrics are never shed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.max_active: int = settings.API_MAX_ACTIVE_REQUESTS
        self.max_queued: int = settings.API_MAX_QUEUED_REQUESTS
        self.queue_timeout: float = settings.API_QUEUE_TIMEOUT_SECONDS
        self._slots = threading.BoundedSemaphore(max(self.max_active, 1))
        self._queued = 0
        self._queued_lock = threading.Lock()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.max_active <= 0 or not request.path.startswith("/api/"):
            return self.get_response(request)
        waited = server_queue_wait()
        if waited is not None and waited > self.queue_timeout:
            # It already waited its turn in the server's queue (wallet.core.http.gunicorn_worker).
            return self._shed("server_queue")
        if not self._slots.acquire(blocking=False) and not self._wait_for_slot():
            return self._shed("admission")
        try:
            return self.get_response(request)
        finally:
            self._slots.release()

    @staticmethod
    def _shed(where: str) -> HttpResponse:
        metrics.increment_many({"api_requests_shed": 1, f"api_requests_shed_{where}": 1})
        response = error_response(
            503,
            "overloaded",
            "The service is at capacity; nothing was done. Retry after the time in Retry-After.",
        )
        response["Retry-After"] = "1"
        return response

    def _wait_for_slot(self) -> bool:
        with self._queued_lock:
            if self._queued >= self.max_queued:
                return False
            self._queued += 1
        try:
            return self._slots.acquire(timeout=self.queue_timeout)
        finally:
            with self._queued_lock:
                self._queued -= 1


class ProxyHeaderCheckMiddleware:
    """Say loudly when TRUSTED_PROXY_COUNT disagrees with the requests that arrive.

    The count decides whose address a request is (rate limits, login lockout, audit, /metrics). Set to 0
    behind a proxy, every client is the proxy: five wrong passwords from anyone lock an account for
    everybody. Requests carrying X-Forwarded-For while the count is 0 therefore log an error and count
    `proxy_header_unexpected`; with a count, requests without the header (or with fewer addresses than
    proxies) log a warning and count `proxy_header_missing`: they bypassed the proxy, or the count is too
    high. Health probes and /metrics come from the platform directly and are not looked at. One log line
    per kind per minute and process; the counters count every request (wallet_events in /metrics).
    """

    LOG_EVERY_SECONDS = 60.0
    _PROBES = ("/healthz", "/readyz", "/metrics")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._last_logged: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(self._PROBES):
            self._inspect(request)
        return self.get_response(request)

    def _inspect(self, request: HttpRequest) -> None:
        proxies: int = settings.TRUSTED_PROXY_COUNT
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = len([part for part in forwarded.split(",") if part.strip()])
        if proxies == 0 and hops:
            self._report(
                "proxy_header_unexpected",
                logging.ERROR,
                "request from %s carries X-Forwarded-For but TRUSTED_PROXY_COUNT is 0: if a proxy stands in "
                "front, every client shares its address (one rate limit, one login lockout); set "
                "TRUSTED_PROXY_COUNT (docs/deploy.md)",
                request.META.get("REMOTE_ADDR"),
            )
        elif proxies > 0 and hops < proxies:
            self._report(
                "proxy_header_missing",
                logging.WARNING,
                "request from %s carries %d X-Forwarded-For address(es) but TRUSTED_PROXY_COUNT is %d: it "
                "bypassed the proxy, or the count is too high",
                request.META.get("REMOTE_ADDR"),
                hops,
                proxies,
            )

    def _report(self, counter: str, level: int, message: str, *args: object) -> None:
        metrics.increment(counter)
        now = time.monotonic()
        with self._lock:
            last = self._last_logged.get(counter)
            if last is not None and now - last < self.LOG_EVERY_SECONDS:
                return
            self._last_logged[counter] = now
        logger.log(level, message, *args)
