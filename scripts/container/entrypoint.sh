#!/bin/sh
# One image runs every process; the container's command names which (docs/deploy.md).
#
#   web        gunicorn serving config.wsgi on $PORT (default 8000); `web --trusted-proxies N` behind N proxies
#   worker     a Celery worker on $CELERY_QUEUES (all queues by default)
#   beat       Celery beat, the periodic-job scheduler (run exactly one)
#   migrate    apply database migrations, then exit
#   release    check --deploy, migrate, then create the first admin if DJANGO_ADMIN_EMAIL/PASSWORD are set (pre-deploy)
#   sandbox    the Revio sandbox: init (keys, brand, webhook to $REVIO_SANDBOX_WEBHOOK_URL), then serve
#   collectstatic, healthcheck, manage <args>, or any other command (run as given)
#
# src/wallet/core/tests/test_container.py runs `migrate` and `web` from here against real PostgreSQL and
# Redis, so what the image starts is what `make test` checks.
set -eu

APP_DIR=${APP_DIR:-$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)}
cd "$APP_DIR"
export PYTHONPATH="$APP_DIR:$APP_DIR/src${PYTHONPATH:+:$PYTHONPATH}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.production}"
STATE_DIR=${WALLET_STATE_DIR:-/tmp/wallet}
PYTHON=${PYTHON:-python}
ALL_QUEUES=default,webhooks,notifications,reconciliation,payouts,events

# With the sandbox playing Revio, its `init` writes REVIO_* settings to a shared file; the wallet reads
# its API key, brand, webhook id and EFT client credentials from it (not the URLs, which differ inside
# the network, nor the signing keys, which are fetched and so follow a rotation). The file is data: each
# value is read as a plain token (the sandbox writes them JSON-quoted) and never evaluated, so "$(...)" in
# it runs nothing.
load_revio_config() {
  if [ -z "${REVIO_CONFIG_FILE:-}" ] || [ ! -f "$REVIO_CONFIG_FILE" ]; then
    return 0
  fi
  while IFS= read -r line || [ -n "$line" ]; do
    key=${line%%=*}
    case "$key" in
      REVIO_API_KEY | REVIO_BRAND_ID | REVIO_WEBHOOK_ID | REVIO_EFT_CLIENT_ID | REVIO_EFT_CLIENT_SECRET) ;;
      *) continue ;;
    esac
    value=${line#*=}
    case "$value" in
      \"*\") value=${value#\"} && value=${value%\"} ;;
    esac
    case "$value" in
      "" | *[!A-Za-z0-9._:+/=-]*)
        echo "entrypoint: ignoring $key from $REVIO_CONFIG_FILE: not a plain token" >&2
        continue
        ;;
    esac
    # A value set in the environment wins over the file.
    if [ -z "$(printenv "$key" || true)" ]; then
      export "$key=$value"
    fi
  done < "$REVIO_CONFIG_FILE"
}

# Production refuses to start on the sandbox's defaults or an inconsistent proxy count
# (wallet.core.checks, docs/deploy.md): the same checks `manage.py check --deploy` runs.
preflight() {
  export WALLET_ROLE="$1"
  "$PYTHON" manage.py check --deploy --fail-level ERROR
}

# The healthcheck asks the process this container runs.
remember_role() {
  printf '%s\n' "$1" > "$STATE_DIR/role"
}

mkdir -p "$STATE_DIR"
command=${1:-web}
if [ $# -gt 0 ]; then shift; fi

case "$command" in
  web)
    # `web --trusted-proxies N`: the platform's config says how many proxies stand in front (Railway: 1);
    # TRUSTED_PROXY_COUNT in the environment wins over it.
    if [ "${1:-}" = "--trusted-proxies" ]; then
      export TRUSTED_PROXY_COUNT="${TRUSTED_PROXY_COUNT:-${2:?--trusted-proxies needs a number}}"
      shift 2
    fi
    load_revio_config
    preflight web
    remember_role web
    # gunicorn trusts X-Forwarded-Proto, SCRIPT_NAME and the like only from these peers (loopback by
    # default): Django reads X-Forwarded-Proto and X-Forwarded-For itself (SECURE_PROXY_SSL_HEADER,
    # TRUSTED_PROXY_COUNT), so no peer needs gunicorn's trust, and "*" let any client rewrite the WSGI
    # environment.
    exec gunicorn config.wsgi \
      --config python:config.gunicorn \
      --bind "${WEB_BIND:-0.0.0.0:${PORT:-8000}}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --threads "${GUNICORN_THREADS:-4}" \
      --worker-class wallet.core.http.gunicorn_worker.QueueTimedThreadWorker \
      --timeout "${GUNICORN_TIMEOUT:-30}" \
      --graceful-timeout 20 \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1,::1}" \
      --access-logfile - \
      "$@"
    ;;
  worker)
    load_revio_config
    preflight worker
    remember_role worker
    exec celery -A config worker \
      --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" \
      --queues "${CELERY_QUEUES:-$ALL_QUEUES}" \
      --hostname "${CELERY_HOSTNAME:-worker@%h}" \
      "$@"
    ;;
  beat)
    remember_role beat
    exec celery -A config beat \
      --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --schedule "${CELERY_BEAT_SCHEDULE:-$STATE_DIR/celerybeat-schedule}" \
      "$@"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate --no-input "$@"
    ;;
  release)
    preflight release
    "$PYTHON" manage.py migrate --no-input
    if [ -n "${DJANGO_ADMIN_EMAIL:-}" ] && [ -n "${DJANGO_ADMIN_PASSWORD:-}" ]; then
      "$PYTHON" manage.py ensure_admin
    fi
    ;;
  sandbox)
    data_dir=${REVIO_SANDBOX_DATA_DIR:-$STATE_DIR/revio-sandbox}
    port=${REVIO_SANDBOX_PORT:-8100}
    revio-sandbox init --data-dir "$data_dir" --host 0.0.0.0 --port "$port" \
      --write-config "${REVIO_CONFIG_FILE:-$data_dir/revio.env}"
    remember_role sandbox
    exec revio-sandbox serve --data-dir "$data_dir" --host 0.0.0.0 --port "$port" "$@"
    ;;
  collectstatic)
    exec "$PYTHON" manage.py collectstatic --no-input "$@"
    ;;
  healthcheck)
    exec "$PYTHON" scripts/container/healthcheck.py "$STATE_DIR/role"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
