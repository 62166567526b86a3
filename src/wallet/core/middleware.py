"""Middleware for request ids and body size limits."""

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from wallet.core.context import request_id_var
from wallet.core.http.responses import error_response

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
