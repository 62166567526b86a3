"""The sandbox's HTTP surface: the Revio API subset, the EFT payments API, the checkout page and the
``/_sandbox/`` control API and its dashboard at ``/`` (one module each under ``revio_sandbox.routes``).

``create_app`` wires a ``Sandbox`` into a Starlette application whose lifespan runs the delivery worker.
Every API endpoint passes through the fault hook first (so injected 5xx/429/hangs look like Revio's edge
failing), then authentication, then the handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from revio_sandbox.core import Sandbox
from revio_sandbox.errors import general_error, not_found
from revio_sandbox.routes.checkout import CheckoutRoutes
from revio_sandbox.routes.control import ControlRoutes
from revio_sandbox.routes.dashboard import DashboardRoutes
from revio_sandbox.routes.eft import EftRoutes
from revio_sandbox.routes.fault_hook import TransportStash
from revio_sandbox.routes.gateway import GatewayRoutes, method_not_allowed
from revio_sandbox.routes.http import error_response
from revio_sandbox.worker import DeliveryWorker


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no route matched) in the gateway's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return method_not_allowed(request)
    if status == 404:
        return error_response(not_found())
    return error_response(general_error("A server error occurred.", "server_error", status))


def create_app(sandbox: Sandbox) -> ASGIApp:
    """Build the ASGI application around one ``Sandbox``."""
    worker = DeliveryWorker(sandbox)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    routes = [
        *GatewayRoutes(sandbox).routes(),
        *EftRoutes(sandbox).routes(),
        *CheckoutRoutes(sandbox).routes(),
        *ControlRoutes(sandbox).routes(),
        *DashboardRoutes(sandbox).routes(),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    return TransportStash(app)
