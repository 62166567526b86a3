"""The control API (``/_sandbox/``): what a test or a person does to the sandbox that Revio's API cannot,
settling objects, injecting faults, reading and replaying deliveries, rotating keys.

No API key: it is for loopback/dev use. When ``REVIO_SANDBOX_CONTROL_TOKEN`` is set every route but
health needs ``Authorization: Bearer <token>`` (F9).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revio_sandbox import __version__
from revio_sandbox.errors import ApiError, general_error, not_found, unauthorized
from revio_sandbox.faults import clean_http_fault, clean_webhook_fault, fault_add, fault_delete, fault_list
from revio_sandbox.routes.eft import eft_payment_id
from revio_sandbox.routes.http import (
    Handler,
    RouteGroup,
    constant_time_equal,
    error_response,
    json_response,
    object_id,
    read_json,
    read_object,
)

if TYPE_CHECKING:
    pass


class ControlRoutes(RouteGroup):
    """The ``/_sandbox/`` routes over one ``Sandbox``."""

    def routes(self) -> list[Route]:
        def route(path: str, handler: Handler, method: str, *, open_: bool = False) -> Route:
            return Route(f"/_sandbox/{path}", self.guard(handler, open_=open_), methods=[method])

        return [
            route("eft", self.eft_state, "GET"),
            route("eft/token_lifetime", self.eft_token_lifetime, "POST"),
            route("eft/tokens/revoke", self.eft_tokens_revoke, "POST"),
            route("eft/callbacks", self.eft_callbacks_delete, "DELETE"),
            route("eft/payments", self.eft_payments_lookup, "GET"),
            route("eft/payments/{id}", self.eft_payment_peek, "GET"),
            route("eft/payments/{id}/{action}", self.eft_payment_control, "POST"),
            # Health stays open (no secrets in it) so process managers and SandboxProcess can poll it.
            route("health", self.health, "GET", open_=True),
            route("config", self.config, "GET"),
            route("reset", self.reset, "POST"),
            route("faults", self.faults_get, "GET"),
            route("faults", self.faults_clear, "DELETE"),
            route("faults/http", self.http_fault_add, "POST"),
            route("faults/webhooks", self.webhook_fault_add, "POST"),
            route("faults/{fault_id:int}", self.fault_remove, "DELETE"),
            route("overview", self.overview, "GET"),
            route("purchases", self.purchases_lookup, "GET"),
            route("purchases/{id}", self.purchase_peek, "GET"),
            route("purchases/{id}/payments", self.purchase_payments, "GET"),
            route("purchases/{id}/{action}", self.purchase_control, "POST"),
            route("refunds/slow_next", self.refunds_slow_next, "POST"),
            route("deliveries", self.deliveries_list, "GET"),
            route("deliveries/retry_now", self.deliveries_retry_now, "POST"),
            route("deliveries/{delivery_id:int}", self.delivery_detail, "GET"),
            route("deliveries/{delivery_id:int}/replay", self.delivery_replay, "POST"),
            route("deliveries/{delivery_id:int}/resend", self.delivery_resend, "POST"),
            route("keys/company/rotate", self.company_key_rotate, "POST"),
            route("webhooks/{id}/rotate_key", self.webhook_key_rotate, "POST"),
        ]

    def guard(self, handler: Handler, *, open_: bool = False) -> Handler:
        """The control token check (when one is set) and errors in the API's shape."""
        token = self.sandbox.settings.control_token

        async def endpoint(request: Request) -> Response:
            try:
                if token and not open_:
                    self._authenticate(token, request)
                return await handler(request)
            except ApiError as error:
                return error_response(error)

        return endpoint

    @staticmethod
    def _authenticate(token: str, request: Request) -> None:
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not constant_time_equal(given.strip(), token):
            raise unauthorized("The control API needs its token (REVIO_SANDBOX_CONTROL_TOKEN).")

    # -- the sandbox as a whole -------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        settings = self.sandbox.settings
        return json_response(
            {
                "status": "ok",
                "version": __version__,
                "pid": os.getpid(),
                "time": time.time(),
                "public_url": settings.public_url,
                "time_scale": settings.time_scale,
                "payout_delay": settings.payout_delay,
                "control_token_required": bool(settings.control_token),
            }
        )

    async def config(self, request: Request) -> Response:
        sandbox, settings = self.sandbox, self.sandbox.settings
        return json_response(
            {
                "base_url": settings.public_url,
                "api_url": f"{settings.public_url}/api/v1/",
                "api_key": sandbox.api_key,
                "brand_id": sandbox.brand_id,
                "company_id": sandbox.company_id,
                "company_public_key": sandbox.company_public_key(),
                "time_scale": settings.time_scale,
                "payout_delay": settings.payout_delay,
                "delivery_timeout": settings.delivery_timeout,
                "eft_base_url": f"{settings.public_url}/",
                "eft_token_url": f"{settings.public_url}/oauth2/token",
                "eft_client_id": sandbox.eft.client_id,
                "eft_client_secret": sandbox.eft.client_secret,
            }
        )

    async def reset(self, request: Request) -> Response:
        body = await read_object(request)
        self.sandbox.reset(
            regenerate_keys=bool(body.get("regenerate_keys", False)),
            keep_webhooks=bool(body.get("keep_webhooks", False)),
        )
        return json_response({"status": "reset"})

    async def overview(self, request: Request) -> Response:
        return json_response(self.sandbox.overview())

    async def company_key_rotate(self, request: Request) -> Response:
        return json_response({"public_key": self.sandbox.company_rotate_key()})

    async def webhook_key_rotate(self, request: Request) -> Response:
        return json_response(self.sandbox.webhooks.rotate_key(object_id(request)))

    # -- faults -----------------------------------------------------------------------------------

    async def faults_get(self, request: Request) -> Response:
        return json_response({"results": fault_list(self.sandbox.store)})

    async def faults_clear(self, request: Request) -> Response:
        return json_response({"deleted": fault_delete(self.sandbox.store)})

    async def fault_remove(self, request: Request) -> Response:
        if not fault_delete(self.sandbox.store, int(request.path_params["fault_id"])):
            raise not_found()
        return json_response({"deleted": 1})

    async def http_fault_add(self, request: Request) -> Response:
        spec = clean_http_fault(await read_json(request))
        return json_response(fault_add(self.sandbox.store, "http", spec), 201)

    async def webhook_fault_add(self, request: Request) -> Response:
        spec = clean_webhook_fault(await read_json(request))
        return json_response(fault_add(self.sandbox.store, "webhook", spec), 201)

    async def refunds_slow_next(self, request: Request) -> Response:
        body = await read_object(request)
        rule = self.sandbox.payments.slow_refunds_next(body.get("count", 1), body.get("seconds"))
        return json_response(rule, 201)

    # -- purchases and their payments -------------------------------------------------------------

    async def purchase_control(self, request: Request) -> Response:
        purchase_id, action = object_id(request), str(request.path_params["action"])
        purchases = self.sandbox.purchases
        actions: dict[str, Callable[[str], dict[str, Any]]] = {
            "pay": purchases.pay,
            "decline": purchases.decline,
            "cancel": purchases.cancel,
            "expire": purchases.expire,
            "view": purchases.view,
        }
        if action == "refund":
            # What the platform's own dashboard does: the API's refund, events and slow rules included.
            return json_response(self.sandbox.payments.refund(purchase_id, await read_json(request)))
        if action == "chargeback":
            payment = self.sandbox.payments.chargeback(purchase_id, await read_json(request))
            return json_response(payment, 201)
        if action not in actions:
            raise not_found()
        return json_response(actions[action](purchase_id))

    async def purchase_payments(self, request: Request) -> Response:
        return json_response({"results": self.sandbox.payments.payments_for(object_id(request))})

    async def purchase_peek(self, request: Request) -> Response:
        # The stored document as is: unlike the API, reading here never expires the purchase.
        return json_response(self.sandbox.purchases.peek(object_id(request)))

    async def purchases_lookup(self, request: Request) -> Response:
        found = self.sandbox.purchases.by_reference(request.query_params.get("reference"))
        return json_response({"results": found})

    # -- deliveries -------------------------------------------------------------------------------

    async def deliveries_list(self, request: Request) -> Response:
        q = request.query_params
        results = self.sandbox.deliveries.find(
            object_id=q.get("object_id"),
            event_type=q.get("event_type"),
            status=q.get("status"),
            target=q.get("target"),
        )
        return json_response({"results": results})

    async def delivery_detail(self, request: Request) -> Response:
        return json_response(self.sandbox.deliveries.get(int(request.path_params["delivery_id"])))

    async def delivery_replay(self, request: Request) -> Response:
        return json_response(self.sandbox.deliveries.replay(int(request.path_params["delivery_id"])), 201)

    async def delivery_resend(self, request: Request) -> Response:
        return json_response(self.sandbox.deliveries.resend(int(request.path_params["delivery_id"])))

    async def deliveries_retry_now(self, request: Request) -> Response:
        return json_response({"updated": self.sandbox.deliveries.retry_now()})

    # -- EFT payments -----------------------------------------------------------------------------

    async def eft_state(self, request: Request) -> Response:
        eft = self.sandbox.eft
        return json_response({**eft.stats(), "callbacks": eft.callbacks()})

    async def eft_token_lifetime(self, request: Request) -> Response:
        body = await read_json(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise general_error("seconds must be an integer >= 1", "invalid")
        self.sandbox.eft.set_token_lifetime(seconds)
        return json_response(self.sandbox.eft.stats())

    async def eft_tokens_revoke(self, request: Request) -> Response:
        return json_response({"revoked": self.sandbox.eft.revoke_tokens()})

    async def eft_payments_lookup(self, request: Request) -> Response:
        reference = request.query_params.get("contractReference")
        if not reference:
            raise general_error("Give ?contractReference=<your reference>.", "invalid")
        return json_response(self.sandbox.eft.payments_by_reference(reference))

    async def eft_payment_peek(self, request: Request) -> Response:
        return json_response(self.sandbox.eft.payment_get(eft_payment_id(request)))

    async def eft_payment_control(self, request: Request) -> Response:
        body = await read_json(request)
        status = body.get("status") if isinstance(body, dict) else None
        action = str(request.path_params["action"])
        return json_response(self.sandbox.eft.force(eft_payment_id(request), action, status))

    async def eft_callbacks_delete(self, request: Request) -> Response:
        deleted = self.sandbox.eft.callbacks_delete(request.query_params.get("url_prefix"))
        return json_response({"deleted": deleted})
