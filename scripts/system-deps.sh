#!/usr/bin/env bash
# Install the Debian packages the test suite needs when they are missing:
# PostgreSQL and Redis servers (started per run by scripts/testenv.py) and Chromium (browser tests).
# As root it installs them with apt-get; otherwise it names what to install and fails.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts a system Redis on install; the tests start their own, so stop it if we started it.
    if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v service >/dev/null; then
        service redis-server stop >/dev/null 2>&1 || true
    fi
else
    echo "The test suite needs these Debian packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
