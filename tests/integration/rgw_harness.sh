#!/usr/bin/env bash
# rgw_harness.sh -- tests/tools/rgw.sh itself: a second throw-away cluster
# (beside the run's) starts, serves signed requests, and `stop` ends exactly
# the processes it started and removes its directory; `stop` of a directory
# whose pid files name other processes leaves those alone; a start that
# cannot work fails and leaves nothing running.
source "$(dirname "$0")/lib.sh"
RGW=$ROOT/tests/tools/rgw.sh
base=$(tmpdir)
d=$base/c1
trap 'bash "$RGW" stop "$d" >/dev/null 2>&1; kill $SLEEPER 2>/dev/null; rm -rf "$base"' EXIT
if bash "$RGW" start "$d" >"$base/env" 2>"$base/start.log"; then
  ok "rgw.sh start"
else
  notok "rgw.sh start"; tail -5 "$base/start.log"; finish
fi
pids=$(cat "$d"/pids/*.pid)
[ "$(echo "$pids" | wc -w)" = 3 ] && ok "three processes recorded (mon, osd, radosgw)" \
  || notok "three processes recorded ($pids)"
alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
[ "$alive" = 3 ] && ok "all three running" || notok "all three running ($alive)"
( . "$base/env"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    --data-binary x "$SHALE_TEST_S3_ENDPOINT/$SHALE_TEST_S3_BUCKET/harness")
  [ "$code" = 200 ] ) && ok "a signed PUT into the bucket" || notok "a signed PUT into the bucket"
( . "$base/env"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
    --user "$AWS_ACCESS_KEY_ID:wrong" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    --data-binary x "$SHALE_TEST_S3_ENDPOINT/$SHALE_TEST_S3_BUCKET/harness")
  [ "$code" = 403 ] ) && ok "a wrong secret: 403" || notok "a wrong secret: 403"
# A pid file naming a process that is not ours: stop must leave it alone.
sleep 300 & SLEEPER=$!
echo "$SLEEPER" > "$d/pids/stranger.pid"
bash "$RGW" stop "$d"
# Gone, or a zombie its parent has still to reap (it runs nothing).
running() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1; [ "$st" != Z ] && [ "$st" != X ]; }
left=0; for p in $pids; do running "$p" && left=$((left + 1)); done
[ "$left" = 0 ] && ok "stop ends every process it started" || notok "stop ends every process it started ($left left)"
kill -0 "$SLEEPER" 2>/dev/null && ok "stop leaves a process it did not start alone" \
  || notok "stop leaves a process it did not start alone"
[ ! -e "$d" ] && ok "stop removes the directory" || notok "stop removes the directory"
# A start that cannot work fails and leaves nothing running: a non-empty
# directory; a radosgw that exits at once (after the monitor and the OSD
# are up: those are stopped).
d=$base/c2; mkdir -p "$d"; touch "$d/junk"
if bash "$RGW" start "$d" >/dev/null 2>&1; then notok "start refuses a non-empty directory"
else ok "start refuses a non-empty directory"; fi
d=$base/c3; mkdir -p "$base/bin"
printf '#!/bin/sh\nexit 1\n' > "$base/bin/radosgw"; chmod +x "$base/bin/radosgw"
t0=$SECONDS
if PATH=$base/bin:$PATH bash "$RGW" start "$d" >/dev/null 2>"$base/fail.log"; then
  notok "a radosgw that exits: start fails"
else
  ok "a radosgw that exits: start fails in $((SECONDS - t0)) s, naming it"
  grep -q "rgw exited" "$base/fail.log" || notok "the failure names radosgw"
fi
if pgrep -f -- "--conf $d/ceph.conf" >/dev/null; then notok "a failed start leaves nothing running"
else ok "a failed start leaves nothing running"; fi
finish
