#!/usr/bin/env bash
# A real street hub under attack (uncertified floods, a stolen key that
# never reads) while the district cold-syncs from it; reports the hub's
# memory and penalties. See scripts/hostile.py.
#   scripts/hostile.sh [--seconds 60] [--identities 300] [--hold 300] [--bound-mb 256]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
cargo build -p gongjian -p gongjian-tests --bin gongjian --bin hostile --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/hostile.py "$CARGO_TARGET_DIR/debug/gongjian" "$CARGO_TARGET_DIR/debug/hostile" "$work" "$@"
