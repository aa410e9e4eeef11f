#!/usr/bin/env bash
# The web console end to end in headless Chromium (browser/console.test.mjs)
# against two real daemons built from this tree. Part of scripts/test.sh;
# runs alone too. Prints TAP, ending with "# pass N" and "# fail N".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-browser.sh
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
# Absolute: the tests run from browser/.
export CARGO_TARGET_DIR="$(realpath -m "$CARGO_TARGET_DIR")"
# The binary of this tree (a no-op after `cargo test` built it).
cargo build -p gongjian --locked --quiet
cd browser
exec node --test --test-concurrency=1 --test-reporter=tap console.test.mjs
