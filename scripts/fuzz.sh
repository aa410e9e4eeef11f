#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for SECONDS (default 60)
# on the nightly toolchain; crashes land in fuzz/artifacts/<target>/ and
# must become regression tests.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"; shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sync_message signed_change signed_record signed_chunk config bundle)
# The bundle target links the engine, hence RocksDB: reuse the static
# library the tests' build compiled (same crate, same features) instead of
# compiling its C++ again (~20 minutes on 2 cores).
if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
  built="$(ls -t "${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)"
  if [ -n "$built" ]; then
    export ROCKSDB_LIB_DIR="$(dirname "$built")" ROCKSDB_STATIC=1
  fi
fi
for t in "${targets[@]}"; do
  echo "== $t for ${secs}s"
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048
done
