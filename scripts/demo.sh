#!/usr/bin/env bash
# The demo of the README: a district, a street, three communities and two
# resident units enrol down the administrative tree (certificate files
# carried over) and run as seven daemons on loopback that sync over libp2p.
# Each loads a Chinese data set shaped by DOMAIN.md's figures over its HTTP
# API; units act on each other's records; one community goes offline, keeps
# recording, and comes back; the district prints merged answers. A tampered
# certificate is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gongjian/target}"
cargo build -p gongjian --locked --quiet
gj="$CARGO_TARGET_DIR/debug/gongjian"
work="$(mktemp -d "${TMPDIR:-/tmp}/gongjian-demo.XXXXXX")"
echo "demo data in $work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

port=${GONGJIAN_DEMO_PORT:-47100}
addr() { echo "/ip4/127.0.0.1/tcp/$((port + $1))"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

step "district 鼓楼区 creates its root key and node"
"$gj" init --data-dir "$work/district" --unit 320106000000 --kind district --name 南京市鼓楼区 \
  --listen "$(addr 1)" --api 127.0.0.1:$((port + 11))
root=$("$gj" id --data-dir "$work/district" | json "['trust_root']")

enrol() { # parent dir, child dir, unit, kind, name, parent unit, port offset, hub offset
  "$gj" init --data-dir "$2" --unit "$3" --kind "$4" --name "$5" --parent "$6" \
    --trust-root "$root" --listen "$(addr "$7")" --bootstrap "$(addr "$8")" \
    --api 127.0.0.1:$((port + 10 + $7)) >/dev/null
  key=$("$gj" id --data-dir "$2" | json "['public_key']")
  "$gj" cert issue --data-dir "$1" --unit "$3" --kind "$4" --name "$5" --key "$key" --out "$2.cert" >/dev/null
  "$gj" cert install --data-dir "$2" "$2.cert"
}
step "the district admits street 宁海路街道 (certificate file carried over)"
enrol "$work/district" "$work/street" 320106002000 street 宁海路街道 320106000000 2 1
credit() { # 17 characters → an 18-character unified social credit code (GB 32100 check character)
  python3 -c "
s='$1'; cs='0123456789ABCDEFGHJKLMNPQRTUWXY'; w=[1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28]
c=(31 - sum(cs.index(ch)*w[i] for i,ch in enumerate(s)) % 31) % 31; print(s+cs[c])"
}
step "the street admits three communities and a resident unit; a community admits a school"
enrol "$work/street" "$work/c1" 320106002001 community 颐和路社区 320106002000 3 2
enrol "$work/street" "$work/c2" 320106002002 community 北京西路社区 320106002000 4 2
enrol "$work/street" "$work/c3" 320106002003 community 江苏路社区 320106002000 5 2
enrol "$work/street" "$work/hospital" 91350100M000100Y43 resident 江苏省人民医院 320106002000 6 2
school=$(credit 52320106MJ0000001)
enrol "$work/c1" "$work/school" "$school" resident 南京师范大学附属中学 320106002001 7 3

names=(district street c1 c2 c3 hospital school)
start() { # name: run its daemon, wait for its JSON line
  GONGJIAN_LOG=info,automerge=warn "$gj" run --data-dir "$work/$1" >"$work/$1.out" 2>"$work/$1.log" &
  eval "pid_$1=$!"; pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/$1.out" ] && return; sleep 0.1; done
  echo "UNEXPECTED: $1 did not start"; cat "$work/$1.log"; exit 1
}
step "seven daemons on loopback: communities and resident units dial the street, the street dials the district"
for n in "${names[@]}"; do start "$n"; done
python3 - "$work" "${names[@]}" >"$work/nodes.json" <<'PY'
import json, sys, tomllib
work, names = sys.argv[1], sys.argv[2:]
out = {}
for n in names:
    line = json.loads(open(f"{work}/{n}.out").readline())
    cfg = tomllib.load(open(f"{work}/{n}/config.toml", "rb"))
    out[n] = {"api": "http://" + line["api"], "token": open(f"{work}/{n}/api.token").read().strip(),
              "unit": line["unit"], "name": cfg["name"]}
print(json.dumps(out, ensure_ascii=False))
PY
data() { python3 scripts/demo_data.py "$work/nodes.json" "$@"; }

step "each unit writes its lists, grids and agreements in Chinese over its own API (signed by its node)"
data load
step "the data spreads; units act on each other's records in their own documents"
data cross

step "江苏路社区 goes offline (its daemon stops: the office network is down)"
kill "$pid_c3"; wait "$pid_c3" || true
echo "  meanwhile its staff keep recording, with the command line on the local store:"
"$gj" need add --data-dir "$work/c3" --title "停电期间独居老人探访" --category 助老 --json | json "['title']"
"$gj" need add --data-dir "$work/c3" --title "临时避险安置点" --category 应急 --json | json "['title']"
"$gj" view items --data-dir "$work/c3" --list need --status open --limit 5
step "江苏路社区 comes back; its offline edits merge, nothing lost"
start c3

step "the district's merged answers"
data report
"$gj" view stats --data-dir "$work/district" --by community | head -20
"$gj" view items --data-dir "$work/district" --q 助老 --limit 8

step "SIGTERM: every daemon shuts down cleanly"
cleanup
for p in "${pids[@]}"; do wait "$p" || { echo "a daemon exited with $?"; exit 1; }; done
pids=()
held=$("$gj" need list --data-dir "$work/district" --json | json ".__len__()")
echo "  the district holds $held needs after shutdown (the offline ones among them)"
if [ "$held" -lt 20 ]; then echo "UNEXPECTED: the district holds only $held needs"; exit 1; fi

step "a tampered certificate is refused, and nothing is installed"
"$gj" init --data-dir "$work/c4" --unit 320106002004 --kind community --name 湖南路社区 \
  --parent 320106002000 --trust-root "$root" --listen /ip4/127.0.0.1/tcp/0 >/dev/null
key=$("$gj" id --data-dir "$work/c4" | json "['public_key']")
"$gj" cert issue --data-dir "$work/street" --unit 320106002004 --kind community --name 湖南路社区 \
  --key "$key" --out "$work/c4.cert" >/dev/null
python3 - "$work/c4.cert" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
i = b.find('湖南路社区'.encode()); b[i + 1] ^= 1   # 湖 becomes another character
open(p, 'wb').write(b)
PY
if "$gj" cert install --data-dir "$work/c4" "$work/c4.cert"; then
  echo "UNEXPECTED: tampered certificate accepted"; exit 1
else
  echo "refused (exit $?), as it must be"
fi
"$gj" id --data-dir "$work/c4" | json "['certified']"

step "status of the street's node"
"$gj" status --data-dir "$work/street"
echo; echo "done: data left in $work"
