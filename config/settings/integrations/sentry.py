"""Sentry error tracking, switched on by SENTRY_DSN."""

from config.env import env

_dsn = env.str("SENTRY_DSN", default="")

if _dsn:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    from wallet.observability.sentry import before_breadcrumb, before_send

    sentry_sdk.init(
        dsn=_dsn,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        # The image sets SENTRY_RELEASE to its git sha (Dockerfile GIT_SHA); Railway provides its own.
        release=env.str("SENTRY_RELEASE", default="")
        or env.str("RAILWAY_GIT_COMMIT_SHA", default="")
        or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        # Emails and bank details are personal data; Sentry gets ids, not them. Leaving both send_default_pii
        # (deprecated, it warns) and data_collection unset is the SDK's "send no personal data" default.
        # Bank account numbers and credentials are scrubbed from every event (wallet.observability.sentry).
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=before_breadcrumb,
    )
