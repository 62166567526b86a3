"""The sandbox's HTTP surface: the Revio API subset, the checkout page and the ``/_sandbox/`` control API.

``create_app`` wires a ``Sandbox`` into a Starlette application whose lifespan runs the delivery worker.
Every API endpoint passes through the fault hook first (so injected 5xx/429/hangs look like Revio's edge
failing), then Bearer authentication, then the handler.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from revio_sandbox import __version__, jsonb
from revio_sandbox.checkout import CSS, content_security_policy, render_not_found, render_purchase_page
from revio_sandbox.core import Sandbox
from revio_sandbox.delivery import DeliveryWorker
from revio_sandbox.eft import eft_error
from revio_sandbox.errors import ApiError, general_error, not_found, unauthorized
from revio_sandbox.faults import (
    clean_http_fault,
    clean_webhook_fault,
    fault_add,
    fault_delete,
    fault_list,
    take_http_fault,
)

Handler = Callable[[Request], Awaitable[Response]]

TRANSPORT_SCOPE_KEY = "revio_sandbox.transport"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response written jsonb-style, like the gateway's own responses."""
    return Response(
        jsonb.dumps_bytes(data), status_code=status, media_type="application/json", headers=headers
    )


def error_response(error: ApiError) -> Response:
    return json_response(error.body, error.status, error.headers)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return jsonb_loads(raw)
    except ValueError as exc:
        raise general_error(f"JSON parse error - {exc}", "parse_error") from exc


def jsonb_loads(raw: bytes) -> Any:
    import json

    return json.loads(raw)


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


PROXY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"


def _fault_headers(fault: dict[str, Any]) -> dict[str, str]:
    return {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}


def fault_response(fault: dict[str, Any]) -> Response:
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


def build_api_endpoint(sandbox: Sandbox, methods: dict[str, tuple[str, Handler]]) -> Handler:
    """One path's endpoint: dispatch by method, apply faults, check the API key, answer errors."""

    async def endpoint(request: Request) -> Response:
        if request.method not in methods:
            return error_response(
                general_error(f'Method "{request.method}" not allowed.', "method_not_allowed", 405)
            )
        name, handler = methods[request.method]
        try:
            fault = take_http_fault(sandbox.store, name=name, method=request.method, path=request.url.path)

            async def process() -> Response:
                _authenticate(sandbox, request)
                return await handler(request)

            return await run_with_fault(request, fault, process, fault_response)
        except ApiError as error:
            return error_response(error)

    return endpoint


def eft_fault_response(fault: dict[str, Any]) -> Response:
    """An injected error in the EFT API's own style (``{"statusCode", "message"}``)."""
    status, headers = fault["status"], _fault_headers(fault)
    if fault.get("body") is not None or fault["html"]:
        return fault_response(fault)
    return json_response({"statusCode": status, "message": f"Injected error {status}."}, status, headers)


def build_eft_endpoint(
    sandbox: Sandbox, methods: dict[str, tuple[str, Handler]], *, bearer: bool = True
) -> Handler:
    """Like ``build_api_endpoint`` for the EFT API: same faults, OAuth2 Bearer tokens, EFT error bodies."""

    async def endpoint(request: Request) -> Response:
        if request.method not in methods:
            return json_response({"statusCode": 405, "message": "Method Not Allowed"}, 405)
        name, handler = methods[request.method]
        try:
            fault = take_http_fault(sandbox.store, name=name, method=request.method, path=request.url.path)

            async def process() -> Response:
                if bearer:
                    sandbox.eft.authenticate(request.headers.get("authorization"))
                return await handler(request)

            return await run_with_fault(request, fault, process, eft_fault_response)
        except ApiError as error:
            return error_response(error)

    return endpoint


def _authenticate(sandbox: Sandbox, request: Request) -> None:
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Authentication credentials were not provided.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Invalid token header. No credentials provided.")
    if not _constant_time_equal(token.strip(), sandbox.api_key):
        raise unauthorized("Invalid token.")


def _control_authenticate(token: str, request: Request) -> None:
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not _constant_time_equal(given.strip(), token):
        raise unauthorized("The control API needs its token (REVIO_SANDBOX_CONTROL_TOKEN).")


def _constant_time_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def sandbox_eft_not_found() -> ApiError:
    return eft_error(404, "Payment not found")


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def create_app(sandbox: Sandbox) -> ASGIApp:
    """Build the ASGI application around one ``Sandbox``."""
    settings = sandbox.settings
    worker = DeliveryWorker(sandbox)

    # -- API handlers -----------------------------------------------------------------------------

    def object_id(request: Request) -> str:
        value = str(request.path_params["id"])
        if not _valid_uuid(value):
            raise not_found()
        return value

    async def purchase_create(request: Request) -> Response:
        client_ip = request.client.host if request.client else ""
        return json_response(sandbox.purchase_create(await read_json(request), client_ip=client_ip), 201)

    async def purchase_get(request: Request) -> Response:
        return json_response(sandbox.purchase_get(object_id(request)))

    async def purchase_cancel(request: Request) -> Response:
        return json_response(sandbox.purchase_cancel(object_id(request), idempotent=True))

    async def purchase_refund(request: Request) -> Response:
        return json_response(sandbox.payments.refund(object_id(request), await read_json(request)))

    def purchase_refused(operation: str) -> Handler:
        async def handler(request: Request) -> Response:
            body = await read_json(request)
            return json_response(sandbox.payments.refuse(object_id(request), operation, body))

        return handler

    def query_lists(request: Request) -> dict[str, list[str]]:
        lists: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            lists.setdefault(key, []).append(value)
        return lists

    async def payment_methods(request: Request) -> Response:
        return json_response(sandbox.payments.payment_methods(query_lists(request)))

    async def account_balance(request: Request) -> Response:
        return json_response(sandbox.payments.balance(query_lists(request)))

    async def public_key(request: Request) -> Response:
        return json_response(sandbox.company_public_key())

    async def webhook_create(request: Request) -> Response:
        return json_response(sandbox.webhook_create(await read_json(request)), 201)

    async def webhook_list(request: Request) -> Response:
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            raise not_found() from None
        api_url = f"{settings.public_url}/api/v1/webhooks/"
        return json_response(sandbox.webhook_list(page, lambda n: f"{api_url}?page={n}"))

    async def webhook_get(request: Request) -> Response:
        return json_response(sandbox.webhook_get(object_id(request)))

    async def webhook_put(request: Request) -> Response:
        return json_response(
            sandbox.webhook_update(object_id(request), await read_json(request), partial=False)
        )

    async def webhook_patch(request: Request) -> Response:
        return json_response(
            sandbox.webhook_update(object_id(request), await read_json(request), partial=True)
        )

    async def webhook_delete(request: Request) -> Response:
        sandbox.webhook_delete(object_id(request))
        return Response(status_code=204)

    def api(path: str, methods: dict[str, tuple[str, Handler]]) -> Route:
        # Every method reaches the endpoint so an unsupported one gets a Revio-style 405.
        return Route(f"/api/v1/{path}", build_api_endpoint(sandbox, methods), methods=ALL_METHODS)

    api_routes = [
        api("purchases/", {"POST": ("purchases.create", purchase_create)}),
        api("purchases/{id}/", {"GET": ("purchases.get", purchase_get)}),
        api("purchases/{id}/cancel/", {"POST": ("purchases.cancel", purchase_cancel)}),
        api("purchases/{id}/refund/", {"POST": ("purchases.refund", purchase_refund)}),
        *(
            api(
                f"purchases/{{id}}/{operation}/",
                {"POST": (f"purchases.{operation}", purchase_refused(operation))},
            )
            for operation in ("capture", "release", "charge", "delete_recurring_token")
        ),
        api("payment_methods/", {"GET": ("payment_methods", payment_methods)}),
        api("account/json/balance/", {"GET": ("account.balance", account_balance)}),
        api("public_key/", {"GET": ("public_key", public_key)}),
        api(
            "webhooks/", {"POST": ("webhooks.create", webhook_create), "GET": ("webhooks.list", webhook_list)}
        ),
        api(
            "webhooks/{id}/",
            {
                "GET": ("webhooks.get", webhook_get),
                "PUT": ("webhooks.update", webhook_put),
                "PATCH": ("webhooks.partial_update", webhook_patch),
                "DELETE": ("webhooks.delete", webhook_delete),
            },
        ),
    ]

    # -- the EFT payments API (revio_sandbox.eft; revio-api.md section 3 B) -------------------------

    async def eft_token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed here (Starlette's form parser needs python-multipart).
        pairs = urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace"))
        form = dict(pairs)
        return json_response(sandbox.eft.token_issue(request.headers.get("authorization"), form))

    async def eft_payment_create(request: Request) -> Response:
        return json_response(sandbox.eft.payment_create(await read_json(request)), 201)

    async def eft_payment_list(request: Request) -> Response:
        # SANDBOX EXTENSION: no documented lookup by contractReference.
        return json_response(sandbox.eft.payments_by_reference(request.query_params.get("contractReference")))

    def eft_payment_id(request: Request) -> str:
        value = str(request.path_params["id"])
        if not _valid_uuid(value):
            raise sandbox_eft_not_found()
        return value

    async def eft_payment_get(request: Request) -> Response:
        return json_response(sandbox.eft.payment_get(eft_payment_id(request)))

    async def eft_callback_register(request: Request) -> Response:
        return json_response(sandbox.eft.callback_register(await read_json(request)), 201)

    async def eft_callback_test(request: Request) -> Response:
        return json_response(sandbox.eft.callback_test(eft_payment_id(request), await read_json(request)))

    def eft(path: str, methods: dict[str, tuple[str, Handler]], *, bearer: bool = True) -> Route:
        return Route(path, build_eft_endpoint(sandbox, methods, bearer=bearer), methods=ALL_METHODS)

    eft_routes = [
        eft("/oauth2/token", {"POST": ("eft.token", eft_token)}, bearer=False),
        eft(
            "/v2/payment/eft",
            {
                "POST": ("eft.payments.create", eft_payment_create),
                "GET": ("eft.payments.list", eft_payment_list),
            },
        ),
        eft("/v2/payment/eft/{id}", {"GET": ("eft.payments.get", eft_payment_get)}),
        eft("/v2/clientcallbackurl/", {"POST": ("eft.callbacks.register", eft_callback_register)}),
        eft("/v2/clientcallbackurl", {"POST": ("eft.callbacks.register", eft_callback_register)}),
        eft("/v2/callback/test/eft/{id}", {"POST": ("eft.callbacks.test", eft_callback_test)}),
    ]

    # -- checkout page ----------------------------------------------------------------------------

    def html_page(text: str, status: int = 200, purchase: dict[str, Any] | None = None) -> HTMLResponse:
        return HTMLResponse(
            text,
            status_code=status,
            headers={
                "Content-Security-Policy": content_security_policy(purchase),
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def checkout_css(request: Request) -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})

    async def checkout_page(request: Request) -> Response:
        purchase_id = str(request.path_params["id"])
        if not _valid_uuid(purchase_id):
            return html_page(render_not_found(), 404)
        try:
            purchase = sandbox.purchase_view(purchase_id)
        except ApiError:
            return html_page(render_not_found(), 404)
        return html_page(render_purchase_page(purchase), purchase=purchase)

    async def checkout_action(request: Request) -> Response:
        purchase_id = str(request.path_params["id"])
        action = str(request.path_params["action"])
        if not _valid_uuid(purchase_id) or action not in ("pay", "decline", "cancel"):
            return html_page(render_not_found(), 404)
        try:
            if action == "pay":
                purchase = sandbox.purchase_pay(purchase_id)
                redirect, message = (
                    purchase["success_redirect"],
                    "Payment successful. You can close this page.",
                )
            elif action == "decline":
                purchase = sandbox.purchase_decline(purchase_id)
                redirect, message = purchase["failure_redirect"], "The payment was declined."
            else:
                purchase = sandbox.purchase_cancel(purchase_id)
                redirect, message = purchase["failure_redirect"], "The payment was cancelled."
        except ApiError as error:
            try:
                current = sandbox.purchase_get(purchase_id)
            except ApiError:
                return html_page(render_not_found(), 404)
            text = error.body["__all__"][0]["message"] if "__all__" in error.body else "Not possible."
            return html_page(render_purchase_page(current, message=text), 409, current)
        if redirect:
            return RedirectResponse(redirect, status_code=303)
        return html_page(render_purchase_page(purchase, message=message), purchase=purchase)

    checkout_routes = [
        Route("/p/static/checkout.css", checkout_css, methods=["GET"]),
        Route("/p/{id}/", checkout_page, methods=["GET"]),
        Route("/p/{id}/{action}/", checkout_action, methods=["POST"]),
    ]

    # -- control API (/_sandbox/, no auth: loopback/dev only) --------------------------------------

    def control(handler: Handler, *, open_: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if settings.control_token and not open_:
                    _control_authenticate(settings.control_token, request)
                return await handler(request)
            except ApiError as error:
                return error_response(error)

        return endpoint

    async def health(request: Request) -> Response:
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

    async def config(request: Request) -> Response:
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

    async def reset(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise general_error("Expected a JSON object.", "invalid")
        sandbox.reset(
            regenerate_keys=bool(body.get("regenerate_keys", False)),
            keep_webhooks=bool(body.get("keep_webhooks", False)),
        )
        return json_response({"status": "reset"})

    async def faults_get(request: Request) -> Response:
        return json_response({"results": fault_list(sandbox.store)})

    async def faults_clear(request: Request) -> Response:
        return json_response({"deleted": fault_delete(sandbox.store)})

    async def fault_remove(request: Request) -> Response:
        if not fault_delete(sandbox.store, int(request.path_params["fault_id"])):
            raise not_found()
        return json_response({"deleted": 1})

    async def http_fault_add(request: Request) -> Response:
        return json_response(
            fault_add(sandbox.store, "http", clean_http_fault(await read_json(request))), 201
        )

    async def webhook_fault_add(request: Request) -> Response:
        spec = clean_webhook_fault(await read_json(request))
        return json_response(fault_add(sandbox.store, "webhook", spec), 201)

    async def purchase_control(request: Request) -> Response:
        purchase_id, action = object_id(request), str(request.path_params["action"])
        actions: dict[str, Callable[[str], dict[str, Any]]] = {
            "pay": sandbox.purchase_pay,
            "decline": sandbox.purchase_decline,
            "cancel": sandbox.purchase_cancel,
            "expire": sandbox.purchase_expire,
            "view": sandbox.purchase_view,
        }
        if action == "chargeback":
            return json_response(sandbox.payments.chargeback(purchase_id, await read_json(request)), 201)
        if action not in actions:
            raise not_found()
        return json_response(actions[action](purchase_id))

    async def purchase_payments(request: Request) -> Response:
        return json_response({"results": sandbox.payments.payments_for(object_id(request))})

    async def purchase_peek(request: Request) -> Response:
        # The stored document as is: unlike the API, reading here never expires the purchase.
        return json_response(sandbox.purchase_peek(object_id(request)))

    async def purchases_lookup(request: Request) -> Response:
        return json_response(
            {"results": sandbox.purchases_by_reference(request.query_params.get("reference"))}
        )

    async def eft_payments_lookup(request: Request) -> Response:
        reference = request.query_params.get("contractReference")
        if not reference:
            raise general_error("Give ?contractReference=<your reference>.", "invalid")
        return json_response(sandbox.eft.payments_by_reference(reference))

    async def refunds_slow_next(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise general_error("Expected a JSON object.", "invalid")
        return json_response(
            sandbox.payments.slow_refunds_next(body.get("count", 1), body.get("seconds")), 201
        )

    async def deliveries_list(request: Request) -> Response:
        q = request.query_params
        results = sandbox.delivery_list(
            object_id=q.get("object_id"),
            event_type=q.get("event_type"),
            status=q.get("status"),
            target=q.get("target"),
        )
        return json_response({"results": results})

    async def delivery_detail(request: Request) -> Response:
        return json_response(sandbox.delivery_get(int(request.path_params["delivery_id"])))

    async def delivery_replay(request: Request) -> Response:
        return json_response(sandbox.delivery_replay(int(request.path_params["delivery_id"])), 201)

    async def deliveries_retry_now(request: Request) -> Response:
        return json_response({"updated": sandbox.deliveries_retry_now()})

    async def company_key_rotate(request: Request) -> Response:
        return json_response({"public_key": sandbox.company_rotate_key()})

    async def webhook_key_rotate(request: Request) -> Response:
        return json_response(sandbox.webhook_rotate_key(object_id(request)))

    async def eft_state(request: Request) -> Response:
        return json_response({**sandbox.eft.stats(), "callbacks": sandbox.eft.callbacks()})

    async def eft_token_lifetime(request: Request) -> Response:
        body = await read_json(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise general_error("seconds must be an integer >= 1", "invalid")
        sandbox.eft.set_token_lifetime(seconds)
        return json_response(sandbox.eft.stats())

    async def eft_tokens_revoke(request: Request) -> Response:
        return json_response({"revoked": sandbox.eft.revoke_tokens()})

    async def eft_payment_peek(request: Request) -> Response:
        return json_response(sandbox.eft.payment_get(eft_payment_id(request)))

    async def eft_payment_control(request: Request) -> Response:
        body = await read_json(request)
        status = body.get("status") if isinstance(body, dict) else None
        action = str(request.path_params["action"])
        return json_response(sandbox.eft.force(eft_payment_id(request), action, status))

    async def eft_callbacks_delete(request: Request) -> Response:
        return json_response(
            {"deleted": sandbox.eft.callbacks_delete(request.query_params.get("url_prefix"))}
        )

    control_routes = [
        Route("/_sandbox/eft", control(eft_state), methods=["GET"]),
        Route("/_sandbox/eft/token_lifetime", control(eft_token_lifetime), methods=["POST"]),
        Route("/_sandbox/eft/tokens/revoke", control(eft_tokens_revoke), methods=["POST"]),
        Route("/_sandbox/eft/callbacks", control(eft_callbacks_delete), methods=["DELETE"]),
        Route("/_sandbox/eft/payments", control(eft_payments_lookup), methods=["GET"]),
        Route("/_sandbox/eft/payments/{id}", control(eft_payment_peek), methods=["GET"]),
        Route("/_sandbox/eft/payments/{id}/{action}", control(eft_payment_control), methods=["POST"]),
        # Health stays open (no secrets in it) so process managers and SandboxProcess can poll it.
        Route("/_sandbox/health", control(health, open_=True), methods=["GET"]),
        Route("/_sandbox/config", control(config), methods=["GET"]),
        Route("/_sandbox/reset", control(reset), methods=["POST"]),
        Route("/_sandbox/faults", control(faults_get), methods=["GET"]),
        Route("/_sandbox/faults", control(faults_clear), methods=["DELETE"]),
        Route("/_sandbox/faults/http", control(http_fault_add), methods=["POST"]),
        Route("/_sandbox/faults/webhooks", control(webhook_fault_add), methods=["POST"]),
        Route("/_sandbox/faults/{fault_id:int}", control(fault_remove), methods=["DELETE"]),
        Route("/_sandbox/purchases", control(purchases_lookup), methods=["GET"]),
        Route("/_sandbox/purchases/{id}", control(purchase_peek), methods=["GET"]),
        Route("/_sandbox/purchases/{id}/payments", control(purchase_payments), methods=["GET"]),
        Route("/_sandbox/purchases/{id}/{action}", control(purchase_control), methods=["POST"]),
        Route("/_sandbox/refunds/slow_next", control(refunds_slow_next), methods=["POST"]),
        Route("/_sandbox/deliveries", control(deliveries_list), methods=["GET"]),
        Route("/_sandbox/deliveries/retry_now", control(deliveries_retry_now), methods=["POST"]),
        Route("/_sandbox/deliveries/{delivery_id:int}", control(delivery_detail), methods=["GET"]),
        Route("/_sandbox/deliveries/{delivery_id:int}/replay", control(delivery_replay), methods=["POST"]),
        Route("/_sandbox/keys/company/rotate", control(company_key_rotate), methods=["POST"]),
        Route("/_sandbox/webhooks/{id}/rotate_key", control(webhook_key_rotate), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return error_response(
                general_error(f'Method "{request.method}" not allowed.', "method_not_allowed", 405)
            )
        if status == 404:
            return error_response(not_found())
        return error_response(general_error("A server error occurred.", "server_error", status))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    app = Starlette(
        routes=[*api_routes, *eft_routes, *checkout_routes, *control_routes],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    return TransportStash(app)
