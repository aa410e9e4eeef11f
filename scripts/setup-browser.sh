#!/usr/bin/env bash
# Installs what the console's browser tests and screenshots need on a fresh
# Debian machine: Debian's Chromium (a test tool's own browser download does
# not work on these machines), a Chinese font for it to draw with, and
# playwright-core from the npm registry at the version the lockfile pins
# (again whenever the lockfile changes). Needs Node.js 20 or later (the
# machine's own; Debian 12's nodejs package is 18, too old for
# playwright-core). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old for playwright-core: install Node.js 20 or later" >&2
  exit 1
fi
stamp=browser/node_modules/.gongjian-lock
lock=$(sha256sum browser/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock" ]; then
  (cd browser && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock" > "$stamp"
fi
