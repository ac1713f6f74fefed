#!/usr/bin/env bash
# agent_http.sh -- the agent's HTTP API and its configuration errors, with
# curl on 127.0.0.1: status codes, JSON shapes, bearer token (and its file
# re-read), body limit, media types (415), Origin (403), hostile YAML
# nesting, metrics in Prometheus text, probes, the log of every split taken
# over HTTP; bad configs refused with line:column; no token beyond loopback
# refused at start.
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
  http: {enabled: true, listen: "127.0.0.1:0", tokenFile: "$d/token", maxBodyBytes: 1100000,
         allowedOrigins: ["https://ops.example"]}
YAML
"$AGENT" --config "$d/agent.yaml" --port-file "$d/port" 2>"$d/log" &
AGENT_PID=$!
for _ in $(seq 1200); do [ -s "$d/port" ] && break; sleep 0.05; done
U=http://127.0.0.1:$(cat "$d/port")
code() { curl -s -o "$d/body" -w '%{http_code}' "$@"; }
A=(-H "Authorization: Bearer s3cret-token")
J=(-H "Content-Type: application/json")
Y=(-H "Content-Type: application/yaml")
REQ='{"name":"h1","parent":{"shard":"s0"},"children":[
 {"name":"a","store":"file://'$d'/a","range":{"start":"","end":"key0000000250"}},
 {"name":"b","store":"file://'$d'/b","range":{"start":"key0000000250","end":""}}]}'

[ "$(code "$U/healthz")" = 200 ] && ok "healthz 200" || notok "healthz 200"
[ "$(code "$U/readyz")" = 200 ] && ok "readyz 200" || notok "readyz 200"
[ "$(code "$U/v1/splits")" = 401 ] && ok "no token: 401" || notok "no token: 401"
[ "$(code -H 'Authorization: Bearer wrong' "$U/v1/splits")" = 401 ] && ok "wrong token: 401" \
  || notok "wrong token: 401"
grep -q '"error"' "$d/body" && ok "401 body is a JSON error" || notok "401 body is a JSON error"
[ "$(code "${A[@]}" "${Y[@]}" -X POST --data 'name: [unclosed' "$U/v1/splits")" = 400 ] \
  && ok "malformed YAML: 400" || notok "malformed YAML: 400"
grep -q 'line' "$d/body" && ok "400 names line and column" || notok "400 names line and column"
head -c 1200000 /dev/zero | tr '\0' a > "$d/big"
[ "$(code "${A[@]}" "${J[@]}" -X POST --data-binary @"$d/big" "$U/v1/splits")" = 413 ] \
  && ok "oversized body: 413" || notok "oversized body: 413"
# Media types: only JSON and YAML bodies; the types a browser may POST
# across sites without a preflight are refused before the body is read.
for t in text/plain application/x-www-form-urlencoded multipart/form-data; do
  [ "$(code "${A[@]}" -H "Content-Type: $t" -X POST --data-binary "$REQ" "$U/v1/splits")" = 415 ] \
    && grep -q UnsupportedMediaType "$d/body" && ok "POST as $t: 415" || notok "POST as $t: 415"
done
[ "$(code "${A[@]}" -X POST --data-binary "$REQ" "$U/v1/splits")" = 415 ] && ok "POST without JSON type (curl's form default): 415" \
  || notok "POST without JSON type (curl's form default): 415"
[ "$(code "${A[@]}" -H 'Content-Type: text/plain' -X POST --data x "$U/v1/splits/h1/abort")" = 415 ] \
  && ok "abort as text/plain: 415" || notok "abort as text/plain: 415"
[ "$(code "${A[@]}" "${J[@]}" -X POST --data 'name: x' "$U/v1/splits")" = 400 ] && grep -q 'not a JSON object' "$d/body" \
  && ok "application/json that is not JSON: 400" || notok "application/json that is not JSON: 400"
# Origin: a page on another site cannot drive the API, token or not.
[ "$(code "${A[@]}" "${J[@]}" -H 'Origin: https://evil.example' -X POST --data-binary "$REQ" "$U/v1/splits")" = 403 ] \
  && grep -q 'evil.example' "$d/body" && ok "POST with a foreign Origin: 403" || notok "POST with a foreign Origin: 403"
[ "$(code "${A[@]}" -H 'Origin: https://evil.example' "$U/v1/splits")" = 403 ] && ok "GET with a foreign Origin: 403" \
  || notok "GET with a foreign Origin: 403"
[ "$(curl -s -o /dev/null -D "$d/hdr" -w '%{http_code}' "${A[@]}" -H 'Origin: https://ops.example' "$U/v1/splits")" = 200 ] \
  && grep -qi '^Access-Control-Allow-Origin: https://ops.example' "$d/hdr" && ok "allowed Origin: 200 with CORS header" \
  || notok "allowed Origin: 200 with CORS header"
[ "$(curl -s -o /dev/null -D "$d/hdr" -w '%{http_code}' -X OPTIONS -H 'Origin: https://ops.example' \
     -H 'Access-Control-Request-Method: POST' "$U/v1/splits")" = 204 ] \
  && grep -qi '^Access-Control-Allow-Headers: Authorization, Content-Type' "$d/hdr" && ok "preflight for an allowed Origin: 204" \
  || notok "preflight for an allowed Origin: 204"
# Hostile YAML: 1 MiB of '[' (libyaml's loader is quadratic on it) and of
# '? ' (deep block nesting) are refused by the pre-scan, with the reason.
head -c 1048576 /dev/zero | tr '\0' '[' > "$d/nest1"
yes '? ' | head -c 1048576 | tr -d '\n' > "$d/nest2"
for f in nest1 nest2; do
  [ "$(code -m 20 "${A[@]}" "${Y[@]}" -X POST --data-binary @"$d/$f" "$U/v1/splits")" = 400 ] \
    && grep -q 'nesting deeper than 32' "$d/body" && ok "1 MiB of nested YAML ($f): 400 nesting too deep" \
    || notok "1 MiB of nested YAML ($f): 400 nesting too deep ($(cat "$d/body"))"
done
BAD=${REQ//key0000000250\",\"end\":\"\"/key0000000200\",\"end\":\"\"}
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$BAD" "$U/v1/splits")" = 400 ] && ok "overlapping ranges: 400" \
  || notok "overlapping ranges: 400"
grep -q 'overlap' "$d/body" && ok "400 says the ranges overlap" || notok "400 says the ranges overlap"
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "${REQ/\"children\"/\"verify\":\"often\",\"children\"}" "$U/v1/splits")" = 400 ] \
  && grep -q "verify" "$d/body" && ok "unknown verify mode: 400 naming the field" \
  || notok "unknown verify mode: 400 naming the field"
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$REQ" "$U/v1/splits")" = 201 ] && ok "POST split: 201" \
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
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "$REQ" "$U/v1/splits")" = 200 ] && ok "same request again: 200" \
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
# Every split taken over HTTP is logged: accepted, refused with the reason.
node -e 'const ls=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(l=>JSON.parse(l));
  const acc=ls.find(l=>l.split==="h1"&&/split accepted/.test(l.msg));
  const ref=ls.find(l=>l.level==="warn"&&/refused: 400 BadRequest/.test(l.msg)&&/overlap/.test(l.msg));
  const typ=ls.find(l=>l.level==="warn"&&/refused: 415/.test(l.msg));
  const org=ls.find(l=>l.level==="warn"&&/refused: 403/.test(l.msg)&&/evil.example/.test(l.msg));
  if(!acc||!ref||!typ||!org){console.error(JSON.stringify({acc,ref,typ,org}));process.exit(1)}' "$d/log" \
  && ok "log: split accepted over HTTP, and refusals (400, 403, 415) with their reason" \
  || notok "log: split accepted over HTTP, and refusals (400, 403, 415) with their reason"
[ "$(code "${A[@]}" "${J[@]}" -X POST --data "${REQ//key0000000250/key0000000300}" "$U/v1/splits")" = 409 ] \
  && grep '"split":"h1"' "$d/log" | grep -q 'refused: 409 Conflict: split h1 exists' \
  && ok "409 (same name, other content) is logged with the split and reason" \
  || notok "409 (same name, other content) is logged with the split and reason"
# The token file is re-read when it changes (a rotated Secret).
echo "rotated-token-2" > "$d/token.new" && mv "$d/token.new" "$d/token"
[ "$(code "${A[@]}" "$U/v1/splits")" = 401 ] && ok "rotated token: the old one gets 401" \
  || notok "rotated token: the old one gets 401"
[ "$(code -H 'Authorization: Bearer rotated-token-2' "$U/v1/splits")" = 200 ] && ok "rotated token: the new one is taken" \
  || notok "rotated token: the new one is taken"
rm -f "$d/token"
[ "$(code -H 'Authorization: Bearer rotated-token-2' "$U/v1/splits")" = 401 ] && grep -q 'token file' "$d/body" \
  && ok "token file gone: fails closed (401)" || notok "token file gone: fails closed (401)"
[ "$(code "$U/healthz")" = 200 ] && ok "probes stay open" || notok "probes stay open"
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
# Fail closed: beyond loopback without a token the agent does not start.
printf 'shard: s0\nstore: {uri: "file://%s/parent"}\nsources:\n  local: {enabled: false}\n  http: {listen: "0.0.0.0:0"}\n' "$d" > "$d/open.yaml"
out=$("$AGENT" --config "$d/open.yaml" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "sources.http.listen" && echo "$out" | grep -q "tokenFile" \
  && ok "0.0.0.0 without a token: refuses to start (exit 2), naming the settings" \
  || notok "0.0.0.0 without a token: refuses to start ($rc: $out)"
out=$("$AGENT" --check-config --config "$d/open.yaml" --set 'sources.http.listen=[::]:0' 2>&1); rc=$?
[ $rc = 2 ] && ok "[::] without a token: refused" || notok "[::] without a token: refused ($rc: $out)"
"$AGENT" --check-config --config "$d/open.yaml" --set sources.http.listen=127.0.0.1:0 >/dev/null 2>&1 \
  && ok "loopback without a token: allowed" || notok "loopback without a token: allowed"
"$AGENT" --check-config --config "$d/open.yaml" --set sources.http.token=abcdefgh >/dev/null 2>&1 \
  && ok "0.0.0.0 with a token: allowed" || notok "0.0.0.0 with a token: allowed"
out=$("$AGENT" --config "$d/open.yaml" --set sources.http.tokenFile="$d/missing" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "$d/missing" && ok "unreadable token file: refuses to start naming it" \
  || notok "unreadable token file: refuses to start naming it ($rc: $out)"

# IPv6 loopback, and a probe listener of its own.
"$AGENT" --config "$d/open.yaml" --set 'sources.http.listen=[::1]:0' \
  --set 'sources.http.probeListen=127.0.0.1:0' --port-file "$d/port6" 2>"$d/log6" &
AGENT_PID=$!
for _ in $(seq 1200); do [ -s "$d/port6" ] && break; sleep 0.05; done
[ "$(code "http://[::1]:$(cat "$d/port6")/v1/splits")" = 200 ] && ok "[::1] listener serves the API (loopback, no token)" \
  || notok "[::1] listener serves the API (loopback, no token)"
pp=$(grep -o 'port [0-9]*' "$d/log6" | head -1 | cut -d' ' -f2)
[ -n "$pp" ] && [ "$(code "http://127.0.0.1:$pp/healthz")" = 200 ] && [ "$(code "http://127.0.0.1:$pp/readyz")" = 200 ] \
  && [ "$(code "http://127.0.0.1:$pp/v1/splits")" = 404 ] && ok "probe listener: /healthz and /readyz only" \
  || notok "probe listener: /healthz and /readyz only (port '$pp')"
kill -TERM $AGENT_PID; wait $AGENT_PID; AGENT_PID=

# The local request directory: one that others can write is refused at start.
mkdir -p "$d/shared/splits" && chmod 0777 "$d/shared/splits"
out=$("$AGENT" --config "$d/open.yaml" --set sources.http.listen=127.0.0.1:0 \
  --set sources.local.enabled=true --set sources.local.dir="$d/shared/splits" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "$d/shared/splits is writable by every user" \
  && ok "world-writable local request directory: refuses to start, naming it" \
  || notok "world-writable local request directory: refuses to start ($rc: $out)"
finish
