"""Revio sandbox: a local emulator of Revio Pay's gateway API.

It runs as its own process (``revio-sandbox``), serves the API subset the wallet backend uses under
``/api/v1/``, a hosted checkout page under ``/p/<id>/``, signed webhook deliveries with Revio's retry
schedule, and a fault-injection control API under ``/_sandbox/``. See ``docs/sandbox.md``.
"""

__version__ = "0.1.0"
