"""Observability helpers that are not an app: Sentry's scrubber (metrics live in wallet.core.http.metrics)."""
