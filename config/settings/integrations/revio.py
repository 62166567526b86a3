"""Revio Pay: the API the wallet talks to (the local sandbox unless configured otherwise)."""

from config.env import env

REVIO_BASE_URL = env.str("REVIO_BASE_URL", default="http://127.0.0.1:8100/api/v1/")
REVIO_API_KEY = env.str("REVIO_API_KEY", default="")
REVIO_BRAND_ID = env.str("REVIO_BRAND_ID", default="")
REVIO_CONNECT_TIMEOUT = env.float("REVIO_CONNECT_TIMEOUT", default=3.0)
REVIO_READ_TIMEOUT = env.float("REVIO_READ_TIMEOUT", default=15.0)
# How withdrawals are paid out (wallet.revio.payouts): "gateway" (/payouts/) or "eft" (the EFT payments API).
REVIO_PAYOUT_ROUTE = env.str("REVIO_PAYOUT_ROUTE", default="gateway")

# Where Revio sends the customer back after checkout, and where it posts callbacks.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
REVIO_CALLBACK_PATH = "/api/v1/webhooks/revio"

# -- webhooks (wallet.webhooks) ---------------------------------------------------------------------------
# Keys that verify Revio's X-Signature. Set them to pin keys; leave them empty to fetch them from Revio
# (the company key from /public_key/, the webhook's key from /webhooks/<REVIO_WEBHOOK_ID>/) and cache them.
REVIO_PUBLIC_KEY = env.str("REVIO_PUBLIC_KEY", default="").replace("\\n", "\n")
REVIO_WEBHOOK_PUBLIC_KEY = env.str("REVIO_WEBHOOK_PUBLIC_KEY", default="").replace("\\n", "\n")
REVIO_WEBHOOK_ID = env.str("REVIO_WEBHOOK_ID", default="")
# After a failed verification with fetched keys, fetch them again at most this often (key rotation heals,
# forged requests cannot force a storm of fetches).
WEBHOOK_KEY_REFETCH_SECONDS = env.int("WEBHOOK_KEY_REFETCH_SECONDS", default=60)
WEBHOOK_KEY_CACHE_SECONDS = env.int("WEBHOOK_KEY_CACHE_SECONDS", default=24 * 3600)
# Revio retries for about 36 hours; an event last updated longer ago than this is refused (docs/adr/0005).
WEBHOOK_MAX_EVENT_AGE_SECONDS = env.int("WEBHOOK_MAX_EVENT_AGE_SECONDS", default=(36 + 6) * 3600)
# Processing retries: exponential from the base, capped; after the last attempt the event is dead-lettered.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=15)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
# A worker that claimed an event and went silent this long is presumed dead; the event is retried.
WEBHOOK_PROCESSING_LEASE_SECONDS = env.int("WEBHOOK_PROCESSING_LEASE_SECONDS", default=300)
