#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for SECONDS (default 60)
# on the nightly toolchain. A crash stops the run; its input lands in
# fuzz/artifacts/<target>/. Once fixed, the (minimised: `cargo fuzz tmin`)
# input goes into fuzz/regressions/<target>/, where `--replay` runs every
# saved input through its target again and fails if one still crashes.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   scripts/fuzz.sh --replay [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
replay=0
if [ "${1:-}" = "--replay" ]; then replay=1; shift; secs=0; else secs="${1:-60}"; shift || true; fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sync_message signed_change signed_record signed_chunk config bundle hello)
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
  if [ "$replay" = 1 ]; then
    inputs=(fuzz/regressions/"$t"/*)
    [ -e "${inputs[0]}" ] || { echo "== $t: no saved inputs"; continue; }
    echo "== $t: replaying ${#inputs[@]} saved inputs"
    cargo +nightly fuzz run "$t" "${inputs[@]}" -- -runs=1 >/dev/null 2>&1 \
      || { echo "!! $t crashes on a saved input: cargo +nightly fuzz run $t fuzz/regressions/$t/*"; exit 1; }
    continue
  fi
  echo "== $t for ${secs}s"
  # A build that fails is not a crash: say which it was.
  cargo +nightly fuzz build "$t" || { echo "!! $t does not build"; exit 2; }
  if ! cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048; then
    echo "!! $t crashed: the input is in fuzz/artifacts/$t/. Fix it, minimise it with"
    echo "   cargo +nightly fuzz tmin $t fuzz/artifacts/$t/<crash>, and add it to fuzz/regressions/$t/."
    exit 1
  fi
done
