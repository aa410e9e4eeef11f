#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md, each figure beside its limit measured in
# the same run on this machine:
#   1. bench-district: ingest of the generated district against ed25519
#      batch verification, RocksDB synced batches and automerge; the view's
#      queries in process; view lag; restart in process;
#   2. the daemon on the same district: start → ready, RSS at rest, HTTP
#      query p50/p99;
#   3. bench-catchup: sync bytes after 1% of documents changed, cold, and
#      with nothing changed;
#   4. the cold sync of the district from its 13 street hubs over libp2p on
#      loopback (14 daemons): time, bytes received, peak RSS;
#   5. the district's reconnect to its hubs after an outage in which 1% of
#      the documents changed: bytes exchanged vs missing, messages, time;
#   6. criterion: the reconciliation core (release); ingest of the district beside
#      its limits (same throughput unit, same run) and the view's queries and a refresh
#      (the project's dev profile, opt-level 2: no second RocksDB build).
# usage: scripts/bench.sh [--scale F]   (F = 10 for a large city)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
scale=1
[ "${1:-}" = "--scale" ] && scale="$2"
cargo build -p gongjian -p gongjian-tests --locked --quiet
bin="$CARGO_TARGET_DIR/debug"
work="$(mktemp -d "${TMPDIR:-/tmp}/gongjian-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "== 1. in process (district ×$scale)"
"$bin/bench-district" --scale "$scale"
echo "== 2. the daemon (district ×$scale)"
"$bin/gongjian" demo generate --profile district --seed 1 --scale "$scale" --out "$work/district" \
  --api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 >/dev/null
python3 scripts/bench_daemon.py "$bin/gongjian" "$work/district"
echo "== 3. sync catch-up (3,000 documents)"
"$bin/bench-catchup" --docs 3000
echo "== 4. cold sync from the street hubs (district ×$scale)"
python3 scripts/bench_cold_sync.py "$bin/gongjian" "$work" --scale "$scale"
echo "== 5. reconnect after an outage, 1% of documents changed (district ×$scale)"
python3 scripts/bench_reconnect.py "$bin/gongjian" "$work" --scale "$scale"
echo "== 6. criterion: reconciliation of 3,000 documents in process"
cargo bench -p gongjian-sync --bench reconcile --locked -- --noplot 2>&1 | grep -E "^[a-z].*|time:"
echo "== 6b. criterion: ingest of the district ×1 beside its limits"
cargo bench --profile dev -p gongjian-engine --bench ingest --locked -- --noplot 2>&1 | grep -E "^[a-z].*|time:|thrpt:"
echo "== 6c. criterion: the view's queries on the district ×1"
cargo bench --profile dev -p gongjian-view --bench queries --locked -- --noplot 2>&1 | grep -E "^[a-z].*|time:"
