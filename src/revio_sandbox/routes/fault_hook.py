"""The HTTP fault hook every API endpoint passes through first, so injected 5xx/429/hangs look like
Revio's edge failing (rules set through the control API: revio_sandbox.faults)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from revio_sandbox.errors import ApiError
from revio_sandbox.faults import take_http_fault
from revio_sandbox.routes.http import Handler, Methods, error_response, json_response

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox

TRANSPORT_SCOPE_KEY = "revio_sandbox.transport"
PROXY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"


class TransportStash:
    """Outermost ASGI layer: keeps the raw socket transport in the scope so a fault can drop the
    connection without any response (uvicorn's h11 ``send`` is a bound method of the request cycle,
    which holds the transport)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[TRANSPORT_SCOPE_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)


async def drop_connection(request: Request) -> Response:
    """Close the client's connection without answering (the client sees a reset/EOF)."""
    transport = request.scope.get(TRANSPORT_SCOPE_KEY)
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0.05)  # let uvicorn notice the disconnect so it sends nothing more
    # With no transport to abort (another server), an empty 502 is the closest honest answer.
    return Response(status_code=502)


def _fault_headers(fault: dict[str, Any]) -> dict[str, str]:
    return {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}


def fault_response(fault: dict[str, Any]) -> Response:
    """An injected error as the gateway (or a proxy in front of it) would answer it."""
    status, headers = fault["status"], _fault_headers(fault)
    if fault.get("body") is not None:
        media_type = "text/html" if fault["html"] else "application/json"
        return Response(fault["body"], status_code=status, media_type=media_type, headers=headers)
    if fault["html"]:
        # What a proxy in front of the gateway would answer with.
        return HTMLResponse(PROXY_PAGE.format(status=status), status_code=status, headers=headers)
    codes = {
        429: (
            "rate_limited",
            f"Request was throttled. Expected available in {fault.get('retry_after') or 1} seconds.",
        ),
        500: ("server_error", "A server error occurred."),
        502: ("bad_gateway", "Bad gateway."),
        503: ("service_unavailable", "Service temporarily unavailable, try again later."),
        504: ("gateway_timeout", "Gateway timeout."),
    }
    code, message = codes.get(status, ("error", f"Injected error {status}."))
    return json_response({"__all__": [{"message": message, "code": code}]}, status, headers)


def eft_fault_response(fault: dict[str, Any]) -> Response:
    """An injected error in the EFT API's own style (``{"statusCode", "message"}``)."""
    status, headers = fault["status"], _fault_headers(fault)
    if fault.get("body") is not None or fault["html"]:
        return fault_response(fault)
    return json_response({"statusCode": status, "message": f"Injected error {status}."}, status, headers)


async def run_with_fault(
    request: Request,
    fault: dict[str, Any] | None,
    process: Callable[[], Awaitable[Response]],
    error_response_for: Callable[[dict[str, Any]], Response],
) -> Response:
    """Apply an HTTP fault around processing a request (shared by the gateway and the EFT API)."""
    action = fault["action"] if fault is not None else None
    if fault is not None:
        if action == "error":
            return error_response_for(fault)
        if action == "slow":
            await asyncio.sleep(fault["delay_ms"] / 1000)
        elif action == "hang":
            # Nothing is processed while hanging; "answer" then processes the request late.
            await asyncio.sleep(fault["seconds"])
            if fault["then"] == "drop":
                return await drop_connection(request)
    try:
        response = await process()
    except ApiError as error:
        if action != "error_after":
            raise
        response = error_response(error)
    if fault is not None and action == "error_after":
        # The request took full effect (object created, events enqueued); the caller sees only the error.
        return error_response_for(fault)
    if fault is not None and action == "hang_after":
        # The request took effect (e.g. the EFT payment exists and progresses) but the answer is late or
        # never comes: the unknown-outcome case.
        await asyncio.sleep(fault["seconds"])
        if fault["then"] == "drop":
            return await drop_connection(request)
    return response


def faulted_endpoint(
    sandbox: Sandbox,
    methods: Methods,
    *,
    authenticate: Callable[[Request], None],
    error_response_for: Callable[[dict[str, Any]], Response],
    not_allowed: Callable[[Request], Response],
) -> Handler:
    """One path's endpoint: dispatch by method, apply faults, authenticate, answer errors."""

    async def endpoint(request: Request) -> Response:
        if request.method not in methods:
            return not_allowed(request)
        name, handler = methods[request.method]
        try:
            fault = take_http_fault(sandbox.store, name=name, method=request.method, path=request.url.path)

            async def process() -> Response:
                authenticate(request)
                return await handler(request)

            return await run_with_fault(request, fault, process, error_response_for)
        except ApiError as error:
            return error_response(error)

    return endpoint
