"""The EFT payments API (revio_sandbox.eft; revio-api.md section 3 B): the OAuth2 token endpoint,
``/v2/payment/eft`` and the callback registration, with the same faults as the gateway but OAuth2
Bearer tokens and the EFT API's error bodies."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revio_sandbox.eft import eft_error
from revio_sandbox.routes.fault_hook import eft_fault_response, faulted_endpoint
from revio_sandbox.routes.http import ALL_METHODS, Methods, RouteGroup, json_response, read_json, valid_uuid

if TYPE_CHECKING:
    pass


def eft_payment_id(request: Request) -> str:
    """The ``{id}`` path parameter; anything but a UUID is the EFT API's 404."""
    value = str(request.path_params["id"])
    if not valid_uuid(value):
        raise eft_error(404, "Payment not found")
    return value


def method_not_allowed(request: Request) -> Response:
    return json_response({"statusCode": 405, "message": "Method Not Allowed"}, 405)


class EftRoutes(RouteGroup):
    """The EFT API's routes over one ``Sandbox``."""

    def routes(self) -> list[Route]:
        eft = self._route
        return [
            eft("/oauth2/token", {"POST": ("eft.token", self.token)}, bearer=False),
            eft(
                "/v2/payment/eft",
                {
                    "POST": ("eft.payments.create", self.payment_create),
                    "GET": ("eft.payments.list", self.payment_list),
                },
            ),
            eft("/v2/payment/eft/{id}", {"GET": ("eft.payments.get", self.payment_get)}),
            eft("/v2/clientcallbackurl/", {"POST": ("eft.callbacks.register", self.callback_register)}),
            eft("/v2/clientcallbackurl", {"POST": ("eft.callbacks.register", self.callback_register)}),
            eft("/v2/callback/test/eft/{id}", {"POST": ("eft.callbacks.test", self.callback_test)}),
        ]

    def _route(self, path: str, methods: Methods, *, bearer: bool = True) -> Route:
        endpoint = faulted_endpoint(
            self.sandbox,
            methods,
            authenticate=self._authenticate if bearer else lambda request: None,
            error_response_for=eft_fault_response,
            not_allowed=method_not_allowed,
        )
        return Route(path, endpoint, methods=ALL_METHODS)

    def _authenticate(self, request: Request) -> None:
        self.sandbox.eft.authenticate(request.headers.get("authorization"))

    async def token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed here (Starlette's form parser needs python-multipart).
        pairs = urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace"))
        form = dict(pairs)
        return json_response(self.sandbox.eft.token_issue(request.headers.get("authorization"), form))

    async def payment_create(self, request: Request) -> Response:
        return json_response(self.sandbox.eft.payment_create(await read_json(request)), 201)

    async def payment_list(self, request: Request) -> Response:
        # SANDBOX EXTENSION: no documented lookup by contractReference.
        reference = request.query_params.get("contractReference")
        return json_response(self.sandbox.eft.payments_by_reference(reference))

    async def payment_get(self, request: Request) -> Response:
        return json_response(self.sandbox.eft.payment_get(eft_payment_id(request)))

    async def callback_register(self, request: Request) -> Response:
        return json_response(self.sandbox.eft.callback_register(await read_json(request)), 201)

    async def callback_test(self, request: Request) -> Response:
        payment = self.sandbox.eft.callback_test(eft_payment_id(request), await read_json(request))
        return json_response(payment)
