#!/usr/bin/env bash
# agent_s3.sh -- splits through shale-agent on the run's Ceph RGW (a real,
# signature-checking S3; tests/run.sh starts it and exports its endpoint,
# bucket and keys).  2-way and 8-way, each two ways:
#   config: the endpoint only in the agent's config YAML (s3.endpoint, the
#           Helm chart's way), keys from the environment, no
#           AWS_ENDPOINT_URL in the agent's environment;
#   env:    everything in the environment (AWS_ENDPOINT_URL too).
# The parent lives on S3 with its WAL on local disk (as a shard's does); the
# children on S3.  Then every child is read back with `shale scan` (every
# key of the parent exactly once across the children) and passes
# `shale verify`.  Without RGW every case fails (never skips).
source "$(dirname "$0")/lib.sh"
N=${N:-2000}
EP=${SHALE_TEST_S3_ENDPOINT:-}
BUCKET=${SHALE_TEST_S3_BUCKET:-}
if [ -z "$EP" ] || [ -z "$BUCKET" ] || [ -z "${AWS_ACCESS_KEY_ID:-}" ]; then
  notok "RGW environment (SHALE_TEST_S3_ENDPOINT etc.; tests/run.sh starts it)"
  finish
fi
D=$(tmpdir)
trap 'rm -rf "$D"' EXIT
run_id=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')

split_case() {  # split_case MODE WAYS
  local mode=$1 ways=$2 d="$D/$1-$2" p="agent-$run_id-$1-$2" i
  local root="s3://$BUCKET/$p"
  mkdir -p "$d/splits/requests"
  if ! AWS_ENDPOINT_URL=$EP "$SHALE" --wal-store "file://$d/wal" load "$root/parent" \
       --count "$N" >"$d/load.log" 2>&1; then
    notok "$mode $ways-way: load the parent on RGW"; cat "$d/load.log"; return
  fi
  local s3conf=""
  [ "$mode" = config ] && s3conf="s3: {endpoint: \"$EP\", timeoutSeconds: 10}"
  [ "$mode" = env ] && s3conf="s3: {timeoutSeconds: 10}"
  cat > "$d/agent.yaml" <<YAML
shard: s0
store: {uri: "$root/parent", walUri: "file://$d/wal"}
$s3conf
sources: {local: {enabled: true, dir: "$d/splits"}, http: {enabled: false}}
timeouts: {stepSeconds: 10}
logLevel: warn
YAML
  {
    echo "name: sp"
    echo "parent: {shard: s0}"
    echo "children:"
    local lo="" hi
    for ((i = 0; i < ways; i++)); do
      if [ "$i" -eq $((ways - 1)) ]; then hi=""; else hi=$(printf 'key%010d' $(((i + 1) * N / ways))); fi
      echo "  - {name: c$i, store: \"$root/c$i\", range: {start: \"$lo\", end: \"$hi\"}}"
      lo=$hi
    done
  } > "$d/splits/requests/sp.yaml"
  local envp=(env)
  [ "$mode" = config ] && envp=(env -u AWS_ENDPOINT_URL)
  [ "$mode" = env ] && envp=(env AWS_ENDPOINT_URL="$EP")
  local t0=$SECONDS
  # --once waits at most 8 x stepSeconds; a split that cannot finish keeps
  # the agent busy retrying, so the agent is killed after that.
  timeout -k 5 100 "${envp[@]}" "$AGENT" --once --config "$d/agent.yaml" 2>"$d/agent.log"
  local rc=$?
  if grep -q '"phase": "Complete"' "$d/splits/status/sp.json" 2>/dev/null && [ "$rc" -eq 0 ]; then
    ok "$mode $ways-way: split on RGW completes ($((SECONDS - t0)) s)"
  else
    notok "$mode $ways-way: split on RGW completes (rc=$rc)"
    echo "# $(grep -o '"phase": "[A-Za-z]*"' "$d/splits/status/sp.json" 2>/dev/null | head -1)"
    grep -o '"error": "[^"]*"' "$d/splits/status/sp.json" 2>/dev/null | head -2 | sed 's/^/# /'
    tail -3 "$d/agent.log" | sed 's/^/# /'
    FAILED_MODE=$mode
  fi
  : > "$d/got"
  local bad=0
  for ((i = 0; i < ways; i++)); do
    AWS_ENDPOINT_URL=$EP "$SHALE" scan "$root/c$i" 2>>"$d/scan.log" | cut -f1 >> "$d/got"
    AWS_ENDPOINT_URL=$EP "$SHALE" verify "$root/c$i" >>"$d/verify.log" 2>&1 || bad=$((bad + 1))
  done
  if diff -q <(expected_keys "$N") "$d/got" >/dev/null; then
    ok "$mode $ways-way: the children hold every one of the parent's $N keys once"
  else
    notok "$mode $ways-way: the children hold every one of the parent's $N keys once" \
          "($(wc -l < "$d/got") keys read back)"
    tail -3 "$d/scan.log" 2>/dev/null
  fi
  [ "$bad" -eq 0 ] && ok "$mode $ways-way: every child passes shale verify" \
    || { notok "$mode $ways-way: every child passes shale verify ($bad failed)"; tail -3 "$d/verify.log"; }
}

# Every command names a missing bucket (it once printed only "not found").
for c in "get s3://shale-no-such-bucket/db key0" "scan s3://shale-no-such-bucket/db" \
         "verify s3://shale-no-such-bucket/db"; do
  # shellcheck disable=SC2086
  out=$(AWS_ENDPOINT_URL=$EP "$SHALE" $c 2>&1); rc=$?
  if [ "$rc" -ne 0 ] && grep -q "bucket 'shale-no-such-bucket' does not exist" <<<"$out" &&
     grep -q NoSuchBucket <<<"$out"; then
    ok "shale ${c%% *}: names the missing bucket"
  else
    notok "shale ${c%% *}: names the missing bucket (rc=$rc: $out)"
  fi
done

# The CLI on RGW: load, clone, gc, verify, scan (everything in the env).
cli=s3://$BUCKET/cli-$run_id
c() { AWS_ENDPOINT_URL=$EP "$SHALE" "$@" 2>>"$D/cli.log"; }
# No flush: the load's keys are only in WAL SSTs past the manifest's
# next_wal_sst_id, and the clone's own checkpoint must still cover them.
if c load "$cli/db" --count 500 >/dev/null && \
   c clone "$cli/db" "$cli/child" --range key0000000100:key0000000200 >/dev/null && \
   [ "$(c scan "$cli/child" --count)" = 100 ] && c gc "$cli/db" --min-age 0 >/dev/null && \
   c verify "$cli/db" >/dev/null && c verify "$cli/child" >/dev/null && \
   [ "$(c scan "$cli/db" --count)" = 500 ]; then
  ok "shale load, clone, gc, verify, scan on RGW"
else
  notok "shale load, clone, gc, verify, scan on RGW"; tail -5 "$D/cli.log"
fi

# The CLI's --s3-timeout bounds a command against an endpoint that accepts
# and never answers (the stub holds every request open).
node "$ROOT/tests/tools/s3stub.js" 0 >"$D/stub.log" 2>&1 &
STUB_PID=$!
trap 'kill $STUB_PID 2>/dev/null; wait $STUB_PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 200); do grep -q LISTENING "$D/stub.log" && break; sleep 0.05; done
SP=$(sed -n 's/^LISTENING //p' "$D/stub.log")
curl -s -o /dev/null --data '{"hang": 100000}' "http://127.0.0.1:$SP/__stub/faults"
t0=$(date +%s%N)
out=$(AWS_ENDPOINT_URL=http://127.0.0.1:$SP AWS_ACCESS_KEY_ID=STUBKEY AWS_SECRET_ACCESS_KEY=STUBSECRET \
      timeout -k 5 60 "$SHALE" --s3-timeout 2 get s3://test/db key0 2>&1); rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" = 1 ] && [ "$ms" -lt 8000 ] && grep -q "deadline reached" <<<"$out"; then
  ok "shale --s3-timeout 2 get on a hanging endpoint fails in ${ms} ms"
else
  notok "shale --s3-timeout 2 get on a hanging endpoint fails within 8 s (rc=$rc, ${ms} ms: $out)"
fi
kill $STUB_PID 2>/dev/null; wait $STUB_PID 2>/dev/null

FAILED_MODE=
for mode in env config; do
  for ways in 2 8; do
    if [ "$ways" = 8 ] && [ "$FAILED_MODE" = "$mode" ]; then
      # Counted as failures, not skipped: the 2-way split of this mode failed.
      for what in "split on RGW completes" "the children hold every one of the parent's $N keys once" \
                  "every child passes shale verify"; do
        notok "$mode 8-way: $what (not run: the $mode 2-way split failed)"
      done
      continue
    fi
    split_case "$mode" "$ways"
  done
done
finish
