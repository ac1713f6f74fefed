#!/usr/bin/env bash
# agent_shard.sh -- shard facts and split points through the real agent
# (docs/agent-http.md "Shard facts"): GET /v1/shard and its token, GET
# /v1/shard/split-points (the same boundaries as `shale split-points`, bad
# parameters 400 naming them, a shard too small 400), the shale_shard_*
# gauges of /metrics, and split requests without ranges over HTTP: a dry
# run shows the computed ranges, a split completes with them (each child
# holds its range's keys), mixing ranged and unranged children is a 400.
source "$(dirname "$0")/lib.sh"
d=$(tmpdir)
AGENT_PID=
trap '[ -n "$AGENT_PID" ] && kill $AGENT_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
P="file://$d/parent"
"$SHALE" --wal-store "file://$d/wal" load "$P" --count 20000 --value-size 100 >/dev/null
"$SHALE" --wal-store "file://$d/wal" flush "$P" >/dev/null
echo -n "tok" > "$d/token"
cat > "$d/agent.yaml" <<YAML
shard: s0
store: {uri: "$P", walUri: "file://$d/wal"}
sources:
  local: {enabled: false}
  http: {enabled: true, listen: "127.0.0.1:0", tokenFile: "$d/token", readyCheckMs: 200}
YAML
"$AGENT" --config "$d/agent.yaml" --port-file "$d/port" 2>"$d/log" &
AGENT_PID=$!
for _ in $(seq 1200); do [ -s "$d/port" ] && break; sleep 0.05; done
U=http://127.0.0.1:$(cat "$d/port")
code() { curl -s -o "$d/body" -w '%{http_code}' "$@"; }
A=(-H "Authorization: Bearer tok")
J=(-H "Content-Type: application/json")
js() { node -e "const j=JSON.parse(require('fs').readFileSync('$d/body'));$1"; }

[ "$(code "$U/v1/shard")" = 401 ] && ok "/v1/shard without the token: 401" \
  || notok "/v1/shard without the token: 401"
[ "$(code "${A[@]}" -X POST "$U/v1/shard")" = 405 ] && ok "POST /v1/shard: 405" \
  || notok "POST /v1/shard: 405"
[ "$(code "${A[@]}" "$U/v1/shard")" = 200 ] && ok "GET /v1/shard: 200" || notok "GET /v1/shard: 200"
cp "$d/body" "$d/shard.json"
js 'if(j.shard!=="s0"||j.approxKeys!==20000||j.ssts<1||j.kvBytes<20000*100||j.bytes<=0||
     j.range.start!==""||j.range.end!==""||j.split.inProgress!==false||j.split.holder!==null||
     typeof j.wal.nextWalSstId!=="number"||typeof j.l0!=="number"||typeof j.sortedRuns!=="number")
     process.exit(1)' && ok "/v1/shard: the figures (20000 keys), visible range, no split" \
  || notok "/v1/shard: the figures ($(cat "$d/body"))"
"$SHALE" info "$P" > "$d/info"
keys=$(awk '$1=="approx_keys"{print $2}' "$d/info")
js "if(j.approxKeys!==$keys||j.kvBytes!==$(awk '$1=="kv_bytes"{print $2}' "$d/info"))process.exit(1)" \
  && ok "/v1/shard agrees with shale info" || notok "/v1/shard agrees with shale info"

# Split points: the CLI's boundaries, weights summing to the total.
[ "$(code "${A[@]}" "$U/v1/shard/split-points?ways=4")" = 200 ] && ok "split-points ways=4: 200" \
  || notok "split-points ways=4: 200 ($(cat "$d/body"))"
cp "$d/body" "$d/points.json"
"$SHALE" split-points "$P" --ways 4 > "$d/cli_points"
js 'const cli=require("fs").readFileSync("'"$d"'/cli_points","utf8").trim().split("\n");
    const s=j.weights.reduce((a,b)=>a+b,0);
    if(j.ways!==4||j.by!=="bytes"||j.boundaries.length!==3||j.weights.length!==4||s!==j.total||
       JSON.stringify(j.boundaries)!==JSON.stringify(cli))process.exit(1)' \
  && ok "split-points: 3 boundaries, the same as shale split-points; weights sum to total" \
  || notok "split-points: shape and CLI agreement ($(cat "$d/body"))"
[ "$(code "${A[@]}" "$U/v1/shard/split-points?ways=2&by=keys")" = 200 ] && js 'if(j.by!=="keys"||j.boundaries.length!==1)process.exit(1)' \
  && ok "split-points by=keys" || notok "split-points by=keys"
for q in "" "ways=1" "ways=abc" "ways=4x" "ways=2000"; do
  [ "$(code "${A[@]}" "$U/v1/shard/split-points?$q")" = 400 ] && grep -q "'ways'" "$d/body" \
    && ok "split-points ?$q: 400 naming ways" || notok "split-points ?$q: 400 naming ways ($(cat "$d/body"))"
done
[ "$(code "${A[@]}" "$U/v1/shard/split-points?ways=2&by=rows")" = 400 ] && grep -q "'by'" "$d/body" \
  && ok "split-points by=rows: 400 naming by" || notok "split-points by=rows: 400 naming by"
[ "$(code "${A[@]}" "$U/v1/shard/split-points?ways=1024")" = 400 ] && grep -q "cannot be split 1024 ways" "$d/body" \
  && ok "split-points on a shard too small for the ways: 400 with the reason" \
  || notok "split-points on a shard too small: 400 ($(cat "$d/body"))"

# Gauges: from the background refresher (polled until the first refresh).
for _ in $(seq 1200); do
  code "${A[@]}" "$U/metrics" >/dev/null; grep -q '^shale_shard_facts_ok 1' "$d/body" && break; sleep 0.05
done
grep -q "^shale_shard_keys $keys\$" "$d/body" && grep -q '^shale_shard_split_in_progress 0$' "$d/body" \
  && grep -q '^shale_shard_ssts [1-9]' "$d/body" && grep -q '^shale_shard_l0 ' "$d/body" \
  && grep -q '^shale_shard_sorted_runs ' "$d/body" && grep -q '^shale_shard_kv_bytes [1-9]' "$d/body" \
  && grep -q '^shale_shard_bytes [1-9]' "$d/body" && ok "metrics: shale_shard_* gauges" \
  || notok "metrics: shale_shard_* gauges ($(grep shale_shard "$d/body"))"
bad=$(grep -v '^#' "$d/body" | grep -cvE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? [0-9.eE+-]+$|^$')
[ "$bad" = 0 ] && ok "metrics still parse as Prometheus text" || notok "metrics parse ($bad bad lines)"

# Requests without ranges.
kids() { local p=$1 n=$2 i s=""; for ((i = 0; i < n; i++)); do
  s+="${s:+,}{\"name\":\"k$i\",\"store\":\"file://$d/$p$i\"}"; done; echo "$s"; }
MIX='{"name":"mix","parent":{"shard":"s0"},"children":[{"name":"a","store":"file://'$d'/ma","range":{"start":"","end":"key0000000100"}},{"name":"b","store":"file://'$d'/mb"}]}'
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$MIX" "$U/v1/splits")" = 400 ] && grep -q 'children\[1\].range' "$d/body" \
  && ok "ranged and unranged children mixed: 400 naming children[1].range" \
  || notok "mixed children: 400 ($(cat "$d/body"))"
DRY='{"name":"auto-dry","dryRun":true,"parent":{"shard":"s0"},"children":['$(kids dry 4)']}'
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$DRY" "$U/v1/splits")" = 201 ] && ok "dry run without ranges: 201" \
  || notok "dry run without ranges: 201 ($(cat "$d/body"))"
for _ in $(seq 200); do
  code "${A[@]}" "$U/v1/splits/auto-dry" >/dev/null; grep -q '"phase": "Complete"' "$d/body" && break; sleep 0.05
done
ranges_ok='const b=JSON.parse(require("fs").readFileSync("'"$d"'/points.json")).boundaries;
  const r=j.children.map(c=>c.range);
  const want=[["",b[0]],[b[0],b[1]],[b[1],b[2]],[b[2],""]];
  if(j.rangesComputed!==true||JSON.stringify(r.map(x=>[x.start,x.end]))!==JSON.stringify(want))process.exit(1)'
js "$ranges_ok" && ok "dry run shows the computed ranges (the split points), rangesComputed" \
  || notok "dry run shows the computed ranges ($(cat "$d/body"))"
[ -e "$d/dry0" ] && notok "dry run touched no child store" || ok "dry run touched no child store"
REQ='{"name":"auto","parent":{"shard":"s0"},"children":['$(kids kid 4)']}'
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$REQ" "$U/v1/splits")" = 201 ] && ok "split without ranges: 201" \
  || notok "split without ranges: 201 ($(cat "$d/body"))"
for _ in $(seq 400); do
  code "${A[@]}" "$U/v1/splits/auto" >/dev/null; grep -qE '"phase": "(Complete|Failed)"' "$d/body" && break; sleep 0.05
done
grep -q '"phase": "Complete"' "$d/body" && ok "split without ranges completes" \
  || notok "split without ranges completes ($(cat "$d/body"))"
js "$ranges_ok" && ok "its status shows the computed ranges" || notok "its status shows the computed ranges"
total=0
for i in 0 1 2 3; do
  n=$("$SHALE" --wal-store "file://$d/kid$i" scan "file://$d/kid$i" --count 2>/dev/null | tr -dc 0-9)
  total=$((total + ${n:-0}))
  [ "${n:-0}" -ge 4500 ] && [ "${n:-0}" -le 5500 ] && ok "child $i holds about a quarter ($n keys)" \
    || notok "child $i holds about a quarter (${n:-?} keys)"
done
[ "$total" = 20000 ] && ok "the children hold every key once" || notok "the children hold every key once ($total)"
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$REQ" "$U/v1/splits")" = 200 ] && ok "same request without ranges again: 200" \
  || notok "same request without ranges again: 200 ($(cat "$d/body"))"
grep -q 'computed the children.s ranges' "$d/log" && ok "log: the computed ranges" || notok "log: the computed ranges"
[ "$(code "${A[@]}" "$U/v1/shard")" = 200 ] && js 'if(j.split.inProgress!==false)process.exit(1)' \
  && ok "/v1/shard after the split: no split holds the shard" || notok "/v1/shard after the split"
finish
