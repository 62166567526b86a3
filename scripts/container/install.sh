#!/bin/sh
# The image's install steps, one stage each, so the Dockerfile and the test suite run the same commands.
#
#   install.sh deps      third-party dependencies from uv.lock (no dev group), not the project itself
#   install.sh project   the project into the same environment (after the source is copied)
#   install.sh static    collectstatic into DJANGO_STATIC_ROOT with the production settings
#
# uv installs into UV_PROJECT_ENVIRONMENT (the Dockerfile sets /app/.venv). src/wallet/core/tests/
# test_container.py runs these steps outside Docker so a broken step fails `make test`.
set -eu

APP_DIR=${APP_DIR:-$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)}
cd "$APP_DIR"
UV=${UV:-uv}
PYTHON=${PYTHON:-python}

case "${1:-}" in
  deps)
    "$UV" sync --frozen --no-dev --no-install-project
    ;;
  project)
    "$UV" sync --frozen --no-dev --no-editable
    ;;
  static)
    # Settings refuse to load without their secrets; collectstatic uses none of them, so build-only
    # placeholders are given here and never reach a running container.
    DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.production} \
    DJANGO_SECRET_KEY=build-only-not-a-secret \
    JWT_SIGNING_KEY=build-only-not-a-secret \
    FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1zZWNyZXQtMzItYnl0ZXM= \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=${BUILD_DATABASE_URL:-postgres://build@build.invalid/build} \
    REDIS_URL=${BUILD_REDIS_URL:-redis://build.invalid:6379/0} \
    SENTRY_DSN='' \
    PYTHONPATH="$APP_DIR:$APP_DIR/src" \
      "$PYTHON" manage.py collectstatic --no-input --verbosity 0
    ;;
  *)
    echo "usage: install.sh deps|project|static" >&2
    exit 2
    ;;
esac
