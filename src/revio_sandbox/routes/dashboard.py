"""The sandbox dashboard at ``/``: one page listing purchases, refunds and chargebacks, EFT payments,
deliveries with their attempts, the active faults and the company balance, with buttons that settle them.

The page is static (static/dashboard.html, .css, .js: no build step, nothing from the network). Its script
reads ``GET /_sandbox/overview`` and acts through the control API, so it is guarded exactly as that is:
with ``REVIO_SANDBOX_CONTROL_TOKEN`` set the page asks for the token, keeps it in sessionStorage and sends
it as the Bearer header. The page itself holds no secret, and neither the API key nor the token is ever put
in a URL (``form-action 'none'``: not even a form submitted without the script can carry one).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revio_sandbox.errors import not_found
from revio_sandbox.routes.http import RouteGroup, error_response, html_page

STATIC = Path(__file__).resolve().parent.parent / "static"

# Only the page's own script, stylesheet and calls to the sandbox itself; no inline script or style.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class DashboardRoutes(RouteGroup):
    """``/`` and its two static files."""

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/static/{name}", self.asset, methods=["GET"]),
            # No icon: an empty answer rather than a 404 in the browser's console.
            Route("/favicon.ico", self.no_icon, methods=["GET"]),
        ]

    async def page(self, request: Request) -> Response:
        return html_page((STATIC / "dashboard.html").read_text(encoding="utf-8"), CSP)

    async def asset(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in ASSETS:  # a fixed list: no path from the request reaches the file system
            return error_response(not_found())
        return Response(
            (STATIC / name).read_bytes(),
            media_type=ASSETS[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def no_icon(self, request: Request) -> Response:
        return Response(status_code=204)
