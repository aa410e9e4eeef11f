#!/usr/bin/env bash
# Crash durability: a real `gongjian run` takes writes over HTTP and is
# killed with SIGKILL at random moments; after every kill `gongjian verify`
# must find the store clean and every acknowledged write must be there.
#   scripts/crash.sh [--cycles 50] [--seed 1] [--writers 4]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
cargo build -p gongjian --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/crash.py "$CARGO_TARGET_DIR/debug/gongjian" "$work" "$@"
