#!/usr/bin/env bash
# Runs the seeded sync simulator over many seeds (52 real replicas per seed,
# drops, duplicates, reordering, partitions, restarts). A failing seed is
# replayed exactly with: scripts/sim.sh --seed N
#   scripts/sim.sh                      seeds 1..1000
#   scripts/sim.sh --from 5000 --count 2000
#   scripts/sim.sh --revocation [--from N --count M | --seed N]
#       a key writing behind a partition while revoked: every node accepts
#       exactly the cut's prefix, over many delivery orders
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
case " $* " in
  *" --seed "*|*" --from "*|*" --count "*) ;;
  *) set -- "$@" --from 1 --count 1000 ;;
esac
exec cargo run --locked -q -p gongjian-tests --bin sim -- "$@"
