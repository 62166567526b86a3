"""The hosted checkout page (``/p/<purchase id>/``; its HTML is revio_sandbox.checkout): opening it views
the purchase, its forms pay, decline or cancel it and redirect to the purchase's redirect URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from revio_sandbox.checkout import CSS, content_security_policy, render_not_found, render_purchase_page
from revio_sandbox.errors import ApiError
from revio_sandbox.routes.http import RouteGroup, html_page, valid_uuid

if TYPE_CHECKING:
    pass

ACTIONS = ("pay", "decline", "cancel")


def _page(text: str, status: int = 200, purchase: dict[str, Any] | None = None) -> HTMLResponse:
    return html_page(text, content_security_policy(purchase), status)


class CheckoutRoutes(RouteGroup):
    """The checkout page's routes over one ``Sandbox``."""

    def routes(self) -> list[Route]:
        return [
            Route("/p/static/checkout.css", self.css, methods=["GET"]),
            Route("/p/{id}/", self.page, methods=["GET"]),
            Route("/p/{id}/{action}/", self.action, methods=["POST"]),
        ]

    async def css(self, request: Request) -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})

    async def page(self, request: Request) -> Response:
        purchase_id = str(request.path_params["id"])
        if not valid_uuid(purchase_id):
            return _page(render_not_found(), 404)
        try:
            purchase = self.sandbox.purchases.view(purchase_id)
        except ApiError:
            return _page(render_not_found(), 404)
        return _page(render_purchase_page(purchase), purchase=purchase)

    async def action(self, request: Request) -> Response:
        purchase_id = str(request.path_params["id"])
        action = str(request.path_params["action"])
        if not valid_uuid(purchase_id) or action not in ACTIONS:
            return _page(render_not_found(), 404)
        purchases = self.sandbox.purchases
        try:
            if action == "pay":
                purchase = purchases.pay(purchase_id)
                redirect, message = (
                    purchase["success_redirect"],
                    "Payment successful. You can close this page.",
                )
            elif action == "decline":
                purchase = purchases.decline(purchase_id)
                redirect, message = purchase["failure_redirect"], "The payment was declined."
            else:
                purchase = purchases.cancel(purchase_id)
                redirect, message = purchase["failure_redirect"], "The payment was cancelled."
        except ApiError as error:
            try:
                current = purchases.get(purchase_id)
            except ApiError:
                return _page(render_not_found(), 404)
            text = error.body["__all__"][0]["message"] if "__all__" in error.body else "Not possible."
            return _page(render_purchase_page(current, message=text), 409, current)
        if redirect:
            return RedirectResponse(redirect, status_code=303)
        return _page(render_purchase_page(purchase, message=message), purchase=purchase)
