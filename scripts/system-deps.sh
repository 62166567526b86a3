#!/usr/bin/env bash
# Install the Debian packages the test suite needs when they are missing: Chromium, for the browser tests.
# PostgreSQL and Valkey come from the project's own wheels (uv.lock; scripts/testenv.py, docs/adr/0013), so
# nothing else is installed system-wide. As root it installs with apt-get; otherwise it names what to install.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "The test suite needs these Debian packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
