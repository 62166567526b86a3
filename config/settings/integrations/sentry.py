"""Sentry error tracking, switched on by SENTRY_DSN."""

from config.env import env

_dsn = env.str("SENTRY_DSN", default="")

if _dsn:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=_dsn,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        # Emails and bank details are personal data; Sentry gets ids, not them.
        send_default_pii=False,
    )
