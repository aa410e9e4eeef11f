#!/usr/bin/env bash
# The test command of the README: installs what is missing, then runs every
# test of the workspace, then the web console's tests in headless Chromium
# against the binary just built. The target directory lives outside the
# clone so later runs on the same machine reuse the RocksDB build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
export PROPTEST_CASES="${PROPTEST_CASES:-32}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
  scripts/browser-test.sh 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  # Set-up failed before any test ran: count it as one failure.
  if [ "$status" -ne 0 ] && ! grep -q '^# fail ' "$log"; then
    echo "# fail 1 (the browser tests did not run)" | tee -a "$log"
  fi
else
  echo "(the browser tests are skipped while cargo tests fail)"
fi
set -e
# One closing line with the totals of every test binary and the browser tests.
awk '/^test result:/ { p += $4; f += $6 } /^# pass / { p += $3 } /^# fail / { f += $3 }
  END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
