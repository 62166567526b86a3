"""Email: SendGrid through django-anymail when SENDGRID_API_KEY is set, otherwise files in a folder.

Notifications (wallet.notifications) hand every email to Django's email backend, so this choice is the
only difference between production, `make run` and the tests (which use Django's in-memory outbox).
"""

from pathlib import Path

from config.env import BASE_DIR, env

# base.RUN_DIR, read the same way: base.py imports this module, so this module cannot import from it.
_RUN_DIR = Path(env.str("WALLET_RUN_DIR", default=str(BASE_DIR / ".run")))

SENDGRID_API_KEY = env.str("SENDGRID_API_KEY", default="")
# Another Django backend by its dotted path (e.g. SMTP); production must name one way or the other
# (wallet.core.checks): files in a folder are `make run`'s, and in a container nobody reads them.
_EXPLICIT_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="")
EMAIL_BACKEND_EXPLICIT = bool(SENDGRID_API_KEY or _EXPLICIT_BACKEND)

if _EXPLICIT_BACKEND and not SENDGRID_API_KEY:
    EMAIL_BACKEND = _EXPLICIT_BACKEND
    DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL")
elif SENDGRID_API_KEY:
    EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    ANYMAIL = {
        "SENDGRID_API_KEY": SENDGRID_API_KEY,
        # (connect, read) seconds: the send task holds its outbox row lock for at most this long.
        "REQUESTS_TIMEOUT": (5, 20),
    }
    # SendGrid only sends from a verified sender, so there is no sensible default.
    DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL")
else:
    # `make run` and local work: each email is a file a developer can open (`make run` prints the folder).
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(_RUN_DIR / "emails"))
    DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="Wallet <no-reply@localhost>")

# -- notifications (wallet.notifications) ------------------------------------------------------------------
# A recorded email whose first send task never ran (a crash after commit) is sent by the sweep this long
# after it was recorded; the sweep runs every minute (config/celery.py).
NOTIFICATION_SWEEP_GRACE_SECONDS = env.int("NOTIFICATION_SWEEP_GRACE_SECONDS", default=60)
# Transient failures are retried after the base delay, then twice that, four times ... (capped): with the
# defaults, 2, 4, 8 and 16 minutes, so an email rides out a provider outage of about half an hour. After
# the last attempt the notification is marked failed and can be resent from the admin.
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=5)
NOTIFICATION_RETRY_BASE_SECONDS = env.int("NOTIFICATION_RETRY_BASE_SECONDS", default=120)
NOTIFICATION_RETRY_MAX_SECONDS = env.int("NOTIFICATION_RETRY_MAX_SECONDS", default=3600)

# -- password reset (wallet.accounts) ----------------------------------------------------------------------
# How long an emailed reset link works, in seconds. It also stops working once used (the password changes).
PASSWORD_RESET_TIMEOUT = env.int("DJANGO_PASSWORD_RESET_TIMEOUT", default=3600)
