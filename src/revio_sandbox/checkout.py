"""The hosted checkout page (``/p/<purchase id>/``) a person opens in a browser.

Plain server-rendered HTML with forms that POST back to the sandbox: no JavaScript, so the page can
carry a strict Content-Security-Policy. Styles come from one static stylesheet (``style-src 'self'``).
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlsplit

CSS = """
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; color: #1d2330; }
main { max-width: 26rem; margin: 3rem auto; background: #fff; border-radius: 10px; padding: 2rem;
       box-shadow: 0 2px 10px rgba(0, 0, 0, .08); }
.banner { background: #fff3cd; color: #6b5200; padding: .5rem .75rem; border-radius: 6px; font-size: .85rem; }
.amount { font-size: 2.2rem; font-weight: 700; margin: 1rem 0 .25rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .35rem 1rem; font-size: .95rem; }
dt { color: #5b6475; }
dd { margin: 0; word-break: break-all; }
.actions { display: flex; gap: .5rem; margin-top: 1.5rem; }
.actions form { flex: 1; }
button { width: 100%; padding: .75rem; border: 0; border-radius: 6px; font-size: 1rem; cursor: pointer; }
#pay { background: #1f7a3d; color: #fff; }
#decline { background: #b3261e; color: #fff; }
#cancel { background: #e3e6eb; color: #1d2330; }
.status { font-weight: 600; }
.notice { margin-top: 1rem; padding: .6rem .75rem; border-radius: 6px; background: #fdecea; color: #7a1c15; }
.result { margin-top: 1rem; font-size: 1.1rem; }
"""

STATUS_TEXT = {
    "created": "Awaiting payment",
    "viewed": "Awaiting payment",
    "error": "Awaiting payment (the last attempt was declined)",
    "paid": "Paid",
    "cancelled": "Cancelled",
    "overdue": "Awaiting payment (past due)",
    "expired": "Expired",
    "pending_refund": "Paid (refund in progress)",
    "refunded": "Refunded",
    "chargeback": "Charged back",
}


def format_amount(minor_units: int, currency: str) -> str:
    """Format minor units for display: ``R 150.00`` for rand, ``USD 150.00`` otherwise (2 decimals)."""
    sign = "-" if minor_units < 0 else ""
    whole, cents = divmod(abs(minor_units), 100)
    symbol = "R" if currency == "ZAR" else currency
    return f"{sign}{symbol} {whole:,}.{cents:02d}".replace(",", " ")


def content_security_policy(purchase: dict[str, Any] | None) -> str:
    """A strict CSP: nothing but our stylesheet; forms may only go to the sandbox itself and, because
    browsers check ``form-action`` on the redirect after a POST, to the purchase's redirect origins."""
    form_targets = ["'self'"]
    if purchase is not None:
        for key in ("success_redirect", "failure_redirect"):
            url = purchase.get(key) or ""
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc:
                origin = f"{parts.scheme}://{parts.netloc}"
                if origin not in form_targets:
                    form_targets.append(origin)
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"form-action {' '.join(form_targets)}; frame-ancestors 'none'"
    )


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="/p/static/checkout.css"></head>'
        f"<body><main>{body}</main></body></html>\n"
    )


def render_purchase_page(purchase: dict[str, Any], *, message: str | None = None) -> str:
    """The checkout page: amount, currency, reference and, while unpaid, Pay / Decline / Cancel."""
    status = purchase["status"]
    currency = purchase["purchase"]["currency"]
    amount = format_amount(purchase["purchase"]["total"], currency)
    reference = purchase.get("reference") or purchase.get("reference_generated") or ""
    product_names = ", ".join(p["name"] for p in purchase["purchase"]["products"])
    base = f"/p/{escape(purchase['id'])}"
    parts = [
        '<p class="banner">Revio sandbox: test payment, no real money moves.</p>',
        f'<h1 class="amount" id="amount">{escape(amount)}</h1>',
        "<dl>",
        f'<dt>Currency</dt><dd id="currency">{escape(currency)}</dd>',
        f'<dt>Reference</dt><dd id="reference">{escape(reference)}</dd>',
        f"<dt>For</dt><dd>{escape(product_names)}</dd>",
        f'<dt>Status</dt><dd class="status" id="status" data-status="{escape(status)}">'
        f"{escape(STATUS_TEXT.get(status, status))}</dd>",
        "</dl>",
    ]
    if status == "error":
        parts.append(
            '<p class="notice" id="declined-notice">Your last payment attempt was declined. '
            "You can try again.</p>"
        )
    if message:
        parts.append(f'<p class="result" id="result">{escape(message)}</p>')
    if status in ("created", "viewed", "error", "overdue"):
        parts.append('<div class="actions">')
        for action, label in (("pay", f"Pay {amount}"), ("decline", "Decline"), ("cancel", "Cancel")):
            parts.append(
                f'<form method="post" action="{base}/{action}/">'
                f'<button type="submit" id="{action}">{escape(label)}</button></form>'
            )
        parts.append("</div>")
        cancel_redirect = purchase.get("cancel_redirect")
        if cancel_redirect:
            parts.append(f'<p><a id="back" href="{escape(cancel_redirect)}">Back to the seller</a></p>')
    return _layout(f"Pay {amount}", "".join(parts))


def render_not_found() -> str:
    return _layout("Not found", "<h1>Payment not found</h1><p>This payment link is not valid.</p>")
