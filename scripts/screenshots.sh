#!/usr/bin/env bash
# Screenshots of every page of the web console (a generated district and a
# street syncing with it, in headless Chromium), for a reviewer who does not
# run it: docs/screenshots/*.png, or the directory given.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-browser.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
cargo build -p gongjian --locked --quiet
out="${1:-$PWD/docs/screenshots}"
cd browser
node screenshots.mjs "$out"
