"""Serves the reference wallet page. The page is static: everything it shows it fetches from the public API
in the browser, with the user's JWT, like any frontend team's app would (ADR 0010)."""

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

# Scripts and styles only from our own origin (no inline code: an injected <script> or on* attribute does
# not run), API calls only to our own origin, nothing may frame the page, and Trusted Types forbid every
# HTML-parsing sink (innerHTML and the like), so API data can only ever reach the page as text.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)


@require_GET
def wallet_page(request: HttpRequest, transaction_id: uuid.UUID | None = None) -> HttpResponse:
    """The page at `/`, at `/deposits/<id>` where Revio's checkout sends the customer back, and at the paths
    the emails link to."""
    response = render(request, "webapp/index.html")
    response["Content-Security-Policy"] = PAGE_POLICY
    # The page's markup is the same for everyone, but a shared cache must not keep a stale copy past a
    # deploy that changed its script.
    response["Cache-Control"] = "no-cache"
    return response
