"""What every route module shares: JSON in and out in the gateway's style, ids, and the page headers."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from revio_sandbox import jsonb
from revio_sandbox.errors import ApiError, general_error, not_found

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox

Handler = Callable[[Request], Awaitable[Response]]
# A path's handlers by HTTP method, each with the endpoint name its faults match on.
Methods = dict[str, tuple[str, Handler]]

# Every method reaches an API endpoint so an unsupported one gets the API's own 405.
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class RouteGroup:
    """The routes of one surface over one ``Sandbox``; ``create_app`` mounts ``routes()``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        raise NotImplementedError


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response written jsonb-style, like the gateway's own responses."""
    return Response(
        jsonb.dumps_bytes(data), status_code=status, media_type="application/json", headers=headers
    )


def error_response(error: ApiError) -> Response:
    return json_response(error.body, error.status, error.headers)


async def read_json(request: Request) -> Any:
    """The request's JSON body (an empty body is ``{}``); malformed JSON is the API's 400 parse_error."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise general_error(f"JSON parse error - {exc}", "parse_error") from exc


async def read_object(request: Request) -> dict[str, Any]:
    """Like ``read_json``, but only a JSON object will do (the control API's bodies)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise general_error("Expected a JSON object.", "invalid")
    return body


def valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def object_id(request: Request) -> str:
    """The ``{id}`` path parameter; anything but a UUID is a 404, as on the gateway."""
    value = str(request.path_params["id"])
    if not valid_uuid(value):
        raise not_found()
    return value


def query_lists(request: Request) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        lists.setdefault(key, []).append(value)
    return lists


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def html_page(text: str, csp: str, status: int = 200) -> HTMLResponse:
    """An HTML page with its Content-Security-Policy and the headers that keep it out of frames,
    caches and other sites' Referer."""
    return HTMLResponse(
        text,
        status_code=status,
        headers={
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
