#!/usr/bin/env bash
# Partitions across real processes: five daemons in their own network
# namespaces, a veth link per pair, links cut and restored at random while
# every node writes; then the time to converge (heads, view digests, every
# acknowledged write). As root, with `ip netns`; otherwise (or with
# --loopback) every node on 127.0.0.1 and each link a TCP relay that a cut
# pauses.
#   scripts/partition.sh [--minutes 2] [--seed 1] [--bound 120] [--loopback]
#   scripts/partition.sh --revoke-restore [--minutes 1]   a community revoked while
#       it writes behind a partition, another restored from an old backup
#       (see scripts/partition.py)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
cargo build -p gongjian --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/partition.py "$CARGO_TARGET_DIR/debug/gongjian" "$work" "$@"
