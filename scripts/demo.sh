#!/usr/bin/env bash
# demo.sh -- `make demo`: a 3-way split end to end on local directories.
#
# Writes a parent shard (main store + separate local WAL store), starts
# shale-agent with the local-directory source, drops a split request in its
# requests/ directory, prints the status as steps complete, then the
# children's key counts.  Everything lives in a temporary directory and the
# agent is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" all >/dev/null

KEYS=${DEMO_KEYS:-30000}
D=$(mktemp -d /tmp/shale-demo.XXXXXX)
AGENT_PID=
cleanup() {
  if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] && echo "(kept $D)" || rm -rf "$D"
}
trap cleanup EXIT

PARENT=file://$D/shard-0
WAL=file://$D/local-wal
echo "== 1. a parent shard with $KEYS keys: $PARENT (WAL in $WAL)"
build/shale --wal-store "$WAL" load "$PARENT" --count "$KEYS" --value-size 100
build/shale --wal-store "$WAL" checkpoint list "$PARENT" >/dev/null
echo "   WAL SSTs in the local WAL store: $(ls "$D/local-wal/wal" | wc -l)"

cat > "$D/agent.yaml" <<YAML
shard: demo-0
store: {uri: "$PARENT", walUri: "$WAL"}
sources:
  local: {enabled: true, dir: "$D/splits", pollMs: 100}
  http: {enabled: true, listen: "127.0.0.1:0"}
logLevel: info
YAML
echo "== 2. shale-agent for shard demo-0 (logs: JSON lines in $D/agent.log)"
build/shale-agent --config "$D/agent.yaml" --port-file "$D/port" 2>"$D/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.1; done
PORT=$(cat "$D/port")
echo "   HTTP API on 127.0.0.1:$PORT"

A=$(printf 'key%010d' $((KEYS / 3))); B=$(printf 'key%010d' $((2 * KEYS / 3)))
cat > "$D/splits/requests/split-3way.yaml" <<YAML
name: split-3way
parent: {shard: demo-0}
children:
  - {name: demo-0a, store: "file://$D/child-a", range: {start: "", end: "$A"}}
  - {name: demo-0b, store: "file://$D/child-b", range: {start: "$A", end: "$B"}}
  - {name: demo-0c, store: "file://$D/child-c", range: {start: "$B", end: ""}}
YAML
echo "== 3. split request dropped in $D/splits/requests/split-3way.yaml"
STATUS=$D/splits/status/split-3way.json
last=
for _ in $(seq 600); do
  if [ -s "$STATUS" ]; then
    phase=$(sed -n 's/^  "phase": "\([A-Za-z]*\)",*/\1/p' "$STATUS")
    if [ "$phase" != "$last" ]; then echo "   phase: $phase"; last=$phase; fi
    case $phase in Complete|Failed|Aborted) break ;; esac
  fi
  sleep 0.1
done
echo "== 4. status (GET /v1/splits/split-3way), steps:"
curl -s "http://127.0.0.1:$PORT/v1/splits/split-3way" | \
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);
    for (const t of j.steps) console.log(`   ${t.name.padEnd(13)} ${t.state.padEnd(8)} ${t.message||""}`);
    console.log(`   checkpoint ${j.checkpointId}, ${j.reason}: ${j.message}`);})' 2>/dev/null || cat "$STATUS"
[ "$last" = Complete ] || { echo "split did not complete"; tail -20 "$D/agent.log"; exit 1; }
echo "== 5. the children (each references the parent's SSTs; nothing was copied):"
total=0
for c in a b c; do
  n=$(build/shale scan "file://$D/child-$c" --count)
  total=$((total + n))
  echo "   child-$c: $n keys, $(find "$D/child-$c" -name '*.sst' | wc -l) SST files of its own"
done
echo "   total: $total of $KEYS keys; local WAL SSTs left: $(ls "$D/local-wal/wal" | wc -l) (the fence)"
[ "$total" -eq "$KEYS" ]
echo "== done"
