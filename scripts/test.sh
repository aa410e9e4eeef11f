#!/usr/bin/env bash
# The test command of the README: installs what is missing, then runs every
# test of the workspace. The target directory lives outside the clone so later
# runs on the same machine reuse the RocksDB build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
export PROPTEST_CASES="${PROPTEST_CASES:-32}"
cargo test --workspace --locked "$@"
