"""Revio Pay: the API the wallet talks to (the local sandbox unless configured otherwise)."""

from config.env import env

REVIO_BASE_URL = env.str("REVIO_BASE_URL", default="http://127.0.0.1:8100/api/v1/")
REVIO_API_KEY = env.str("REVIO_API_KEY", default="")
REVIO_BRAND_ID = env.str("REVIO_BRAND_ID", default="")
REVIO_CONNECT_TIMEOUT = env.float("REVIO_CONNECT_TIMEOUT", default=3.0)
REVIO_READ_TIMEOUT = env.float("REVIO_READ_TIMEOUT", default=15.0)
# Whether a purchase Revio marks `is_test` may credit a wallet. Never in production (a test-mode key or the
# sandbox would mint money; wallet.core.checks refuses it under --deploy); local.py and test.py turn it on
# because the sandbox marks everything a test.
REVIO_ACCEPT_TEST_OBJECTS = env.bool("REVIO_ACCEPT_TEST_OBJECTS", default=False)
# Each deposit's purchase is created with its own `due` (now + this) and `due_strict: true`: past it the
# purchase expires and cannot be paid (without due_strict Revio would only mark it overdue, still payable).
DEPOSIT_DUE_SECONDS = env.int("DEPOSIT_DUE_SECONDS", default=3600)

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
# The drain (docs/adr/0021): intake nudges it at most once per WEBHOOK_NUDGE_SECONDS (not once per event); it
# claims up to WEBHOOK_BATCH_SIZE due events at a time, re-reads them from Revio WEBHOOK_REREAD_CONCURRENCY
# at a time, and after WEBHOOK_DRAIN_SECONDS hands the backlog to a fresh drain. How many drains run at
# once is the webhooks queue's worker concurrency: keep it below the cores, so intake keeps its latency.
WEBHOOK_NUDGE_SECONDS = env.float("WEBHOOK_NUDGE_SECONDS", default=0.5)
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=50)
WEBHOOK_REREAD_CONCURRENCY = env.int("WEBHOOK_REREAD_CONCURRENCY", default=8)
WEBHOOK_DRAIN_SECONDS = env.float("WEBHOOK_DRAIN_SECONDS", default=30.0)

# -- the EFT payments API: how withdrawals are paid out (wallet.revio.eft, docs/payouts.md) ----------------
# The gateway has no bank payouts; this is the only payout route. Defaults point at the local sandbox,
# which serves the EFT API next to the gateway.
REVIO_EFT_BASE_URL = env.str("REVIO_EFT_BASE_URL", default="http://127.0.0.1:8100/")
REVIO_EFT_TOKEN_URL = env.str("REVIO_EFT_TOKEN_URL", default="http://127.0.0.1:8100/oauth2/token")
REVIO_EFT_CLIENT_ID = env.str("REVIO_EFT_CLIENT_ID", default="")
REVIO_EFT_CLIENT_SECRET = env.str("REVIO_EFT_CLIENT_SECRET", default="")
# Our merchant profile and the debtor account the money leaves from (Revio's sandbox profile by default).
REVIO_EFT_PROFILE_CODE = env.str("REVIO_EFT_PROFILE_CODE", default="TEST1")
REVIO_EFT_ABBREVIATED_NAME = env.str("REVIO_EFT_ABBREVIATED_NAME", default="TESTMERCH1")
REVIO_EFT_DEBTOR_ACCOUNT_NUMBER = env.str("REVIO_EFT_DEBTOR_ACCOUNT_NUMBER", default="12345678")
REVIO_EFT_DEBTOR_BRANCH_CODE = env.str("REVIO_EFT_DEBTOR_BRANCH_CODE", default="051001")
REVIO_EFT_DEBTOR_ACCOUNT_TYPE = env.str("REVIO_EFT_DEBTOR_ACCOUNT_TYPE", default="CURRENT")
REVIO_EFT_DEBTOR_BANK = env.str("REVIO_EFT_DEBTOR_BANK", default="")
REVIO_EFT_DEBTOR_FIRST_NAME = env.str("REVIO_EFT_DEBTOR_FIRST_NAME", default="Wallet")
REVIO_EFT_DEBTOR_LAST_NAME = env.str("REVIO_EFT_DEBTOR_LAST_NAME", default="Payouts")
REVIO_EFT_DEBTOR_PHONE = env.str("REVIO_EFT_DEBTOR_PHONE", default="")
REVIO_EFT_DEBTOR_EMAIL = env.str("REVIO_EFT_DEBTOR_EMAIL", default="")
# SAMEDAY, ONEDAY or TWODAY (Revio's EFT service types; price and speed differ).
REVIO_EFT_SERVICE_TYPE = env.str("REVIO_EFT_SERVICE_TYPE", default="ONEDAY")
# Where Revio posts EFT_PAYMENT callbacks (register PUBLIC_BASE_URL + this with Revio, or let
# `revio-sandbox init` do it locally). The callbacks are unsigned: they only trigger a re-read.
REVIO_EFT_CALLBACK_PATH = "/api/v1/webhooks/revio/eft"
# OAuth2 tokens are cached in Redis until this long before they expire; one process fetches at a time,
# the others wait up to REVIO_EFT_TOKEN_LOCK_SECONDS for it.
REVIO_EFT_TOKEN_MARGIN_SECONDS = env.int("REVIO_EFT_TOKEN_MARGIN_SECONDS", default=120)
REVIO_EFT_TOKEN_LOCK_SECONDS = env.int("REVIO_EFT_TOKEN_LOCK_SECONDS", default=10)
