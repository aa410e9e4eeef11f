#!/usr/bin/env bash
# Installs what the console's browser tests and screenshots need on a fresh
# Debian machine: Debian's Chromium (a test tool's own browser download does
# not work on these machines), a Chinese font for it to draw with, and
# playwright-core from the npm registry at the version the lockfile pins.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -d browser/node_modules/playwright-core ]; then
  (cd browser && npm ci --no-audit --no-fund --loglevel=error)
fi
