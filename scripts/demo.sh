#!/usr/bin/env bash
# The demo of the README: a district, a street, two communities and a
# resident unit enrol down the administrative tree (certificate files carried
# over), write signed needs in Chinese, then run as five daemons on loopback
# that sync over libp2p; the district's merged list shows every unit's needs.
# A tampered certificate is refused.
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
step "the street admits communities 颐和路社区 and 北京西路社区, and resident unit 江苏省人民医院"
enrol "$work/street" "$work/c1" 320106002001 community 颐和路社区 320106002000 3 2
enrol "$work/street" "$work/c2" 320106002002 community 北京西路社区 320106002000 4 2
enrol "$work/street" "$work/hospital" 91350100M000100Y43 resident 江苏省人民医院 320106002000 5 2

step "each unit writes signed needs in its own document"
"$gj" need add --data-dir "$work/c1" --title "独居老人助餐志愿者" --category 志愿服务
"$gj" need add --data-dir "$work/c2" --title "社区活动室需要投影仪" --category 物资
"$gj" need add --data-dir "$work/hospital" --title "义诊场地" --category 场地
"$gj" need list --data-dir "$work/c1"

step "the street's roster"
"$gj" cert list --data-dir "$work/street"

step "five daemons start on loopback; communities and the hospital dial the street, the street dials the district"
"$gj" need add --data-dir "$work/district" --title "全区志愿者培训" --category 培训
for n in district street c1 c2 hospital; do
  GONGJIAN_LOG=info "$gj" run --data-dir "$work/$n" >"$work/$n.out" 2>"$work/$n.log" &
  pids+=($!)
done
want=4   # needs the district must end up holding: its own and three units'
for _ in $(seq 1 60); do
  sleep 1
  [ "$(grep -c 'peer admitted' "$work/street.log" || true)" -ge 4 ] && break
done
sleep 5   # relayed at once: new documents trigger a reconciliation upstream
api() { # data dir, api port offset, path: GET over the node's HTTP API with its token
  python3 - "$(cat "$1/api.token")" "http://127.0.0.1:$((port + $2))$3" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[2], headers={"Authorization": "Bearer " + sys.argv[1]})
print(json.dumps(json.load(urllib.request.urlopen(req)), ensure_ascii=False))
PY
}
step "the district's merged view over the HTTP API: GET /v1/view/items?list=need"
api "$work/district" 11 "/v1/view/items?list=need" >"$work/view.json"
python3 - "$work/view.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["items"]:
    who = r["unit_name"] or r["unit"]
    print(f"  {who:<8} {r['title']:<12} {r['status_zh']}  signed by {r['provenance']['author'][:24]}…")
PY
step "one digest of 颐和路社区's scope on the community and at the district"
echo "  community: $(api "$work/c1" 13 /v1/view/digest | json "['digest']")"
echo "  district:  $(api "$work/district" 11 '/v1/view/digest?scope=320106002001' | json "['digest']")"

step "SIGTERM: every daemon shuts down cleanly"
cleanup
for p in "${pids[@]}"; do wait "$p" || { echo "a daemon exited with $?"; exit 1; }; done
pids=()
grep -h "peer admitted" "$work"/street.log | sed 's/\x1b\[[0-9;]*m//g' | head -5

step "the district's merged view: every unit's needs, synced over libp2p"
"$gj" need list --data-dir "$work/district"
held=$("$gj" need list --data-dir "$work/district" | grep -c '"title"' || true)
if [ "$held" -lt "$want" ]; then echo "UNEXPECTED: the district holds $held of $want needs"; exit 1; fi

step "a tampered certificate is refused, and nothing is installed"
"$gj" init --data-dir "$work/c3" --unit 320106002003 --kind community --name 湖南路社区 \
  --parent 320106002000 --trust-root "$root" --listen /ip4/127.0.0.1/tcp/0 >/dev/null
key=$("$gj" id --data-dir "$work/c3" | json "['public_key']")
"$gj" cert issue --data-dir "$work/street" --unit 320106002003 --kind community --name 湖南路社区 \
  --key "$key" --out "$work/c3.cert" >/dev/null
python3 - "$work/c3.cert" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
i = b.find('湖南路社区'.encode()); b[i + 1] ^= 1   # 湖 becomes another character
open(p, 'wb').write(b)
PY
if "$gj" cert install --data-dir "$work/c3" "$work/c3.cert"; then
  echo "UNEXPECTED: tampered certificate accepted"; exit 1
else
  echo "refused (exit $?), as it must be"
fi
"$gj" id --data-dir "$work/c3" | json "['certified']"

step "status of the street's store"
"$gj" status --data-dir "$work/street"
echo; echo "done: data left in $work"
