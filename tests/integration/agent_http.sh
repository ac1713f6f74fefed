#!/usr/bin/env bash
# agent_http.sh -- the agent's HTTP API and its configuration errors, with
# curl on 127.0.0.1: status codes, JSON shapes, bearer token, body limit,
# metrics in Prometheus text, probes; bad configs refused with line:column.
source "$(dirname "$0")/lib.sh"
d=$(tmpdir)
AGENT_PID=
trap '[ -n "$AGENT_PID" ] && kill $AGENT_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
"$SHALE" --wal-store "file://$d/wal" load "file://$d/parent" --count 500 >/dev/null
echo -n "s3cret-token" > "$d/token"
cat > "$d/agent.yaml" <<YAML
shard: s0
store: {uri: "file://$d/parent", walUri: "file://$d/wal"}
sources:
  local: {enabled: false}
  http: {enabled: true, listen: "127.0.0.1:0", tokenFile: "$d/token", maxBodyBytes: 4096}
YAML
"$AGENT" --config "$d/agent.yaml" --port-file "$d/port" 2>"$d/log" &
AGENT_PID=$!
for _ in $(seq 100); do [ -s "$d/port" ] && break; sleep 0.05; done
U=http://127.0.0.1:$(cat "$d/port")
code() { curl -s -o "$d/body" -w '%{http_code}' "$@"; }
A=(-H "Authorization: Bearer s3cret-token")
REQ='{"name":"h1","parent":{"shard":"s0"},"children":[
 {"name":"a","store":"file://'$d'/a","range":{"start":"","end":"key0000000250"}},
 {"name":"b","store":"file://'$d'/b","range":{"start":"key0000000250","end":""}}]}'

[ "$(code "$U/healthz")" = 200 ] && ok "healthz 200" || notok "healthz 200"
[ "$(code "$U/readyz")" = 200 ] && ok "readyz 200" || notok "readyz 200"
[ "$(code "$U/v1/splits")" = 401 ] && ok "no token: 401" || notok "no token: 401"
[ "$(code -H 'Authorization: Bearer wrong' "$U/v1/splits")" = 401 ] && ok "wrong token: 401" \
  || notok "wrong token: 401"
grep -q '"error"' "$d/body" && ok "401 body is a JSON error" || notok "401 body is a JSON error"
[ "$(code "${A[@]}" -X POST --data 'name: [unclosed' "$U/v1/splits")" = 400 ] \
  && ok "malformed YAML: 400" || notok "malformed YAML: 400"
grep -q 'line' "$d/body" && ok "400 names line and column" || notok "400 names line and column"
[ "$(code "${A[@]}" -X POST --data "$(head -c 5000 /dev/zero | tr '\0' a)" "$U/v1/splits")" = 413 ] \
  && ok "oversized body: 413" || notok "oversized body: 413"
BAD=${REQ//key0000000250\",\"end\":\"\"/key0000000200\",\"end\":\"\"}
[ "$(code "${A[@]}" -X POST --data "$BAD" "$U/v1/splits")" = 400 ] && ok "overlapping ranges: 400" \
  || notok "overlapping ranges: 400"
grep -q 'overlap' "$d/body" && ok "400 says the ranges overlap" || notok "400 says the ranges overlap"
[ "$(code "${A[@]}" -X POST --data "${REQ/\"children\"/\"verify\":\"often\",\"children\"}" "$U/v1/splits")" = 400 ] \
  && grep -q "verify" "$d/body" && ok "unknown verify mode: 400 naming the field" \
  || notok "unknown verify mode: 400 naming the field"
[ "$(code "${A[@]}" -X POST --data "$REQ" "$U/v1/splits")" = 201 ] && ok "POST split: 201" \
  || notok "POST split: 201"
for _ in $(seq 200); do
  code "${A[@]}" "$U/v1/splits/h1" >/dev/null
  grep -q '"phase": "Complete"' "$d/body" && break; sleep 0.05
done
grep -q '"phase": "Complete"' "$d/body" && ok "split completes" || notok "split completes"
node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));
  if(!Array.isArray(j.steps)||j.steps.length!==7||j.children.length!==2||!j.checkpointId) process.exit(1)' \
  "$d/body" && ok "status JSON shape" || notok "status JSON shape"
grep -q '"verifyMode": "full"' "$d/body" && ok "status says how Verify ran (full: the default)" \
  || notok "status says how Verify ran (full: the default)"
[ "$(code "${A[@]}" -X POST --data "$REQ" "$U/v1/splits")" = 200 ] && ok "same request again: 200" \
  || notok "same request again: 200"
[ "$(code "${A[@]}" -X POST "$U/v1/splits/h1/abort")" = 409 ] && ok "abort after Complete: 409" \
  || notok "abort after Complete: 409"
[ "$(code "${A[@]}" "$U/v1/splits/nope")" = 404 ] && ok "unknown split: 404" || notok "unknown split: 404"
[ "$(code "${A[@]}" -X DELETE "$U/v1/splits/h1")" = 405 ] && ok "wrong method: 405" || notok "wrong method: 405"
[ "$(code "${A[@]}" "$U/v1/splits")" = 200 ] && node -e 'if(!Array.isArray(JSON.parse(require("fs").readFileSync(process.argv[1]))))process.exit(1)' "$d/body" \
  && ok "list: JSON array" || notok "list: JSON array"
[ "$(code "${A[@]}" "$U/metrics")" = 200 ] && ok "metrics 200" || notok "metrics 200"
bad=$(grep -v '^#' "$d/body" | grep -cvE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? [0-9.eE+-]+$|^$')
[ "$bad" = 0 ] && ok "metrics parse as Prometheus text" || notok "metrics parse as Prometheus text ($bad bad lines)"
grep -q 'shale_splits_total{result="complete"} 1' "$d/body" && ok "metrics count the split" \
  || notok "metrics count the split"
grep -q 'shale_split_step_seconds_count{step="Clone"} 1' "$d/body" && ok "step histogram" \
  || notok "step histogram"
! grep -q 's3cret-token' "$d/log" && ok "token never logged" || notok "token never logged"
head -1 "$d/log" | node -e 'let s="";process.stdin.on("data",x=>s+=x).on("end",()=>{const j=JSON.parse(s);if(!j.time||!j.level||!j.msg)process.exit(1)})' \
  && ok "logs are JSON lines" || notok "logs are JSON lines"
kill -TERM $AGENT_PID; wait $AGENT_PID; rc=$?; AGENT_PID=
[ $rc = 0 ] && ok "SIGTERM: clean exit" || notok "SIGTERM: clean exit ($rc)"

# Bad configurations: refused with file:line:column, the agent does not start.
printf 'shard: s0\nstore: {uri: "file:///x"}\nsources:\n  http: {listen: 8080, bogus: 1}\n' > "$d/bad1.yaml"
out=$("$AGENT" --check-config --config "$d/bad1.yaml" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q 'bad1.yaml:4:' && ok "bad config: exit 2 with line" \
  || notok "bad config: exit 2 with line ($out)"
printf 'shard: s0\nstore: [oops\n' > "$d/bad2.yaml"
out=$("$AGENT" --check-config --config "$d/bad2.yaml" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q 'line' && ok "malformed YAML config: exit 2 with line" \
  || notok "malformed YAML config: exit 2 with line ($out)"
out=$("$AGENT" --check-config --config "$d/agent.yaml" --set logLevel=loud 2>&1); rc=$?
[ $rc = 2 ] && ok "bad --set value refused" || notok "bad --set value refused"
"$AGENT" --check-config --config "$d/agent.yaml" >/dev/null 2>&1 && ok "good config accepted" \
  || notok "good config accepted"
finish
