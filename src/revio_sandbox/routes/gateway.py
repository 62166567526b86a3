"""The gateway API (``/api/v1/``): purchases, refunds, payment methods, the balance, the public key and
webhook objects. Each call passes the fault hook, then the Bearer API key, then its handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revio_sandbox.errors import general_error, not_found, unauthorized
from revio_sandbox.routes.fault_hook import fault_response, faulted_endpoint
from revio_sandbox.routes.http import (
    ALL_METHODS,
    Handler,
    Methods,
    RouteGroup,
    constant_time_equal,
    error_response,
    json_response,
    object_id,
    query_lists,
    read_json,
)

if TYPE_CHECKING:
    pass

# The purchase operations the sandbox always refuses (revio_sandbox.payments.PaymentsApi.refuse).
REFUSED_OPERATIONS = ("capture", "release", "charge", "delete_recurring_token")


def method_not_allowed(request: Request) -> Response:
    return error_response(general_error(f'Method "{request.method}" not allowed.', "method_not_allowed", 405))


class GatewayRoutes(RouteGroup):
    """The ``/api/v1/`` routes over one ``Sandbox``."""

    def routes(self) -> list[Route]:
        api = self._route
        return [
            api("purchases/", {"POST": ("purchases.create", self.purchase_create)}),
            api("purchases/{id}/", {"GET": ("purchases.get", self.purchase_get)}),
            api("purchases/{id}/cancel/", {"POST": ("purchases.cancel", self.purchase_cancel)}),
            api("purchases/{id}/refund/", {"POST": ("purchases.refund", self.purchase_refund)}),
            *(
                api(
                    f"purchases/{{id}}/{operation}/",
                    {"POST": (f"purchases.{operation}", self._purchase_refused(operation))},
                )
                for operation in REFUSED_OPERATIONS
            ),
            api("payment_methods/", {"GET": ("payment_methods", self.payment_methods)}),
            api("account/json/balance/", {"GET": ("account.balance", self.account_balance)}),
            api("public_key/", {"GET": ("public_key", self.public_key)}),
            api(
                "webhooks/",
                {
                    "POST": ("webhooks.create", self.webhook_create),
                    "GET": ("webhooks.list", self.webhook_list),
                },
            ),
            api(
                "webhooks/{id}/",
                {
                    "GET": ("webhooks.get", self.webhook_get),
                    "PUT": ("webhooks.update", self.webhook_put),
                    "PATCH": ("webhooks.partial_update", self.webhook_patch),
                    "DELETE": ("webhooks.delete", self.webhook_delete),
                },
            ),
        ]

    def _route(self, path: str, methods: Methods) -> Route:
        endpoint = faulted_endpoint(
            self.sandbox,
            methods,
            authenticate=self._authenticate,
            error_response_for=fault_response,
            not_allowed=method_not_allowed,
        )
        return Route(f"/api/v1/{path}", endpoint, methods=ALL_METHODS)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise unauthorized("Authentication credentials were not provided.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Invalid token header. No credentials provided.")
        if not constant_time_equal(token.strip(), self.sandbox.api_key):
            raise unauthorized("Invalid token.")

    # -- purchases --------------------------------------------------------------------------------

    async def purchase_create(self, request: Request) -> Response:
        client_ip = request.client.host if request.client else ""
        purchase = self.sandbox.purchases.create(await read_json(request), client_ip=client_ip)
        return json_response(purchase, 201)

    async def purchase_get(self, request: Request) -> Response:
        return json_response(self.sandbox.purchases.get(object_id(request)))

    async def purchase_cancel(self, request: Request) -> Response:
        return json_response(self.sandbox.purchases.cancel(object_id(request), idempotent=True))

    async def purchase_refund(self, request: Request) -> Response:
        return json_response(self.sandbox.payments.refund(object_id(request), await read_json(request)))

    def _purchase_refused(self, operation: str) -> Handler:
        async def handler(request: Request) -> Response:
            body = await read_json(request)
            return json_response(self.sandbox.payments.refuse(object_id(request), operation, body))

        return handler

    # -- the account ------------------------------------------------------------------------------

    async def payment_methods(self, request: Request) -> Response:
        return json_response(self.sandbox.account.payment_methods(query_lists(request)))

    async def account_balance(self, request: Request) -> Response:
        return json_response(self.sandbox.account.balance(query_lists(request)))

    async def public_key(self, request: Request) -> Response:
        return json_response(self.sandbox.company_public_key())

    # -- webhook objects --------------------------------------------------------------------------

    async def webhook_create(self, request: Request) -> Response:
        return json_response(self.sandbox.webhooks.create(await read_json(request)), 201)

    async def webhook_list(self, request: Request) -> Response:
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            raise not_found() from None
        api_url = f"{self.sandbox.settings.public_url}/api/v1/webhooks/"
        return json_response(self.sandbox.webhooks.page(page, lambda n: f"{api_url}?page={n}"))

    async def webhook_get(self, request: Request) -> Response:
        return json_response(self.sandbox.webhooks.get(object_id(request)))

    async def webhook_put(self, request: Request) -> Response:
        webhook = self.sandbox.webhooks.update(object_id(request), await read_json(request), partial=False)
        return json_response(webhook)

    async def webhook_patch(self, request: Request) -> Response:
        webhook = self.sandbox.webhooks.update(object_id(request), await read_json(request), partial=True)
        return json_response(webhook)

    async def webhook_delete(self, request: Request) -> Response:
        self.sandbox.webhooks.delete(object_id(request))
        return Response(status_code=204)
