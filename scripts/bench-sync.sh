#!/usr/bin/env bash
# Catch-up cost of the sync protocol (BENCHMARKS.md, "Sync"): bytes exchanged
# after a node missed 1% of the changes over a few thousand documents, against
# the bytes of the missing signed changes; round trips; the same with nothing
# changed.   scripts/bench-sync.sh [--docs 3000]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
exec cargo run --locked -q -p gongjian-tests --bin bench-catchup -- "$@"
