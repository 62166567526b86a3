"""Observability that is not an app: Sentry's scrubber, and the /metrics collector above the apps."""
