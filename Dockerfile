# syntax=docker/dockerfile:1
# One image for every process: the command names it (scripts/container/entrypoint.sh, docs/deploy.md).
#   docker build -t wallet --build-arg GIT_SHA="$(git rev-parse HEAD)" .
#   docker run wallet web | worker | beat | migrate | release | sandbox
# The install and start steps are scripts that `make test` runs outside Docker (test_container.py).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: dependencies from uv.lock, then the project, then the static files -------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.8
# Dependencies first, in their own layer: it is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock README.md ./
COPY scripts/container/install.sh scripts/container/install.sh
RUN sh scripts/container/install.sh deps
COPY . .
RUN sh scripts/container/install.sh project \
    && DJANGO_STATIC_ROOT=/app/staticfiles sh scripts/container/install.sh static

# ---- runtime: the virtualenv, the source and the collected static files; no build tools -----------------
FROM ${PYTHON_IMAGE} AS runtime
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="wallet" \
      org.opencontainers.image.revision="${GIT_SHA}"
# MALLOC_ARENA_MAX: glibc gives each thread its own malloc arena; with many gunicorn threads the
# fragmented arenas grow a worker's RSS by ~100 MiB (docs/benchmarks.md). Two arenas cost no measurable speed.
ENV PATH=/app/.venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    WALLET_RUN_DIR=/tmp/wallet \
    WALLET_STATE_DIR=/tmp/wallet \
    SENTRY_RELEASE=${GIT_SHA} \
    PORT=8000
RUN groupadd --system --gid 10001 wallet \
    && useradd --system --uid 10001 --gid wallet --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin wallet \
    && mkdir -p /tmp/wallet /sandbox \
    && chown wallet:wallet /tmp/wallet /sandbox
WORKDIR /app
COPY --from=build --chown=root:root /app /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/scripts/container/entrypoint.sh", "healthcheck"]
ENTRYPOINT ["/app/scripts/container/entrypoint.sh"]
CMD ["web"]
