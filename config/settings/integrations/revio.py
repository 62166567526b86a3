"""Revio Pay: the API the wallet talks to (the local sandbox unless configured otherwise)."""

from config.env import env

REVIO_BASE_URL = env.str("REVIO_BASE_URL", default="http://127.0.0.1:8100/api/v1/")
REVIO_API_KEY = env.str("REVIO_API_KEY", default="")
REVIO_BRAND_ID = env.str("REVIO_BRAND_ID", default="")
REVIO_CONNECT_TIMEOUT = env.float("REVIO_CONNECT_TIMEOUT", default=3.0)
REVIO_READ_TIMEOUT = env.float("REVIO_READ_TIMEOUT", default=15.0)

# Where Revio sends the customer back after checkout, and where it posts callbacks.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
REVIO_CALLBACK_PATH = "/api/v1/webhooks/revio"
