#!/usr/bin/env bash
# Longer runs of the property tests than the normal suite: many more random
# delivery orders and inputs. `scripts/soak.sh [CASES]` (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
export PROPTEST_CASES="${1:-2000}"
cargo test --locked -p gongjian-engine --test order
cargo test --locked -p gongjian-identity --test records
cargo test --locked -p gongjian-model --test membership
