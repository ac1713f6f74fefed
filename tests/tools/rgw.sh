#!/usr/bin/env bash
# rgw.sh -- a throw-away single-node Ceph with an S3 gateway for the tests.
#
#   rgw.sh start DIR   starts one monitor, one memstore OSD and one radosgw
#                      on 127.0.0.1 under DIR (created; must not exist or be
#                      empty), creates a user and a bucket, writes DIR/env
#                      (export lines) and prints it.  Exit 0 only when a
#                      signed PUT to the bucket works.
#   rgw.sh env DIR     prints DIR/env.
#   rgw.sh stop DIR    stops exactly the processes start recorded in
#                      DIR/pids/ (TERM, then KILL after 10 s) and removes DIR.
#
# The env names the contract of the test suite: SHALE_TEST_S3_ENDPOINT,
# SHALE_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
# Nothing is written outside DIR (logs, sockets, data and pid files all live
# there) and nothing is started that is not stopped by `stop`.  Settings and
# why they matter: docs/object-store.md ("The real server in the tests").
# Needs radosgw, ceph-mon and ceph-osd (scripts/deps.sh test installs them).
set -euo pipefail

cmd=${1:-}; dir=${2:-}
exec 9>&2   # die's messages reach stderr even from inside a silenced probe
die() { echo "rgw.sh: $*" >&9; exit 1; }
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: rgw.sh start|stop|env DIR"

BUCKET=shale-test
ACCESS=SHALETESTKEY0000001
SECRET=shale-test-secret-0000000000000000000000
REGION=us-east-1
# memstore keeps objects in RAM: the cap bounds the OSD's memory.
MEMSTORE_BYTES=${SHALE_RGW_MEMSTORE_BYTES:-$((2 << 30))}

running() {  # running PID: the process exists and is not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

stop_all() {  # stops the processes recorded under $dir/pids
  local f pid name i alive
  [ -d "$dir/pids" ] || return 0
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); name=$(basename "$f" .pid)
    # Only a process still running the program we started is ours.
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
       tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--conf $dir/ceph.conf"; then
      kill -TERM "$pid" 2>/dev/null || true
      echo "$pid" >>"$dir/pids/.stopping"
    fi
    rm -f "$f"
  done
  [ -e "$dir/pids/.stopping" ] || return 0
  for ((i = 0; i < 100; i++)); do   # up to 10 s for a clean exit
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids/.stopping"
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$dir/pids/.stopping"
  # SIGKILL is delivered, not yet acted on: wait (up to 10 s more) until
  # each is gone or a zombie its parent has still to reap, so that a caller
  # that checks right after stop returns finds nothing running.
  for ((i = 0; i < 100; i++)); do
    alive=0
    while read -r pid; do running "$pid" && alive=1; done <"$dir/pids/.stopping"
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  rm -f "$dir/pids/.stopping"
}

case $cmd in
  env) cat "$dir/env"; exit 0 ;;
  stop) stop_all; rm -rf "$dir"; exit 0 ;;
  start) ;;
  *) die "unknown command '$cmd' (start|stop|env)" ;;
esac

for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl; do
  command -v "$b" >/dev/null || die "$b is not installed: run scripts/deps.sh test"
done
mkdir -p "$dir"
[ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir"/{pids,run,log,crash,mon,osd,rgw}
# A failed start leaves nothing running.
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "rgw.sh: start failed; logs:" >&2;
      tail -n 15 "$dir"/log/*.log >&2 2>/dev/null; stop_all; fi' EXIT

# Twelve free ports in a row: mon, ten for the OSD's messengers, radosgw.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=
for ((try = 0; try < 50; try++)); do
  p=$((20000 + RANDOM % 40000)); okp=1
  for ((i = 0; i < 12; i++)); do port_free $((p + i)) || { okp=0; break; }; done
  [ "$okp" -eq 1 ] && { base=$p; break; }
done
[ -n "$base" ] || die "no run of 12 free ports found"
MON_PORT=$base RGW_PORT=$((base + 11))

fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms bind port min = $((base + 1))
ms bind port max = $((base + 10))
# No cephx: a throw-away cluster on loopback.  radosgw's default messenger
# mode "secure" cannot work without it (it hangs at "failed to fetch mon
# config"), hence crc.
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc secure
# Each pool creation is a map change: 0.1 s instead of 1 s per proposal
# takes the start from about 21 s to about 4 s.
paxos propose interval = 0.1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
keyring = $dir/keyring
log to stderr = false
err to stderr = true
[mon]
mon data = $dir/mon/\$name
[osd]
osd data = $dir/osd/\$name
osd max object size = 268435456
[client.rgw.a]
rgw data = $dir/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dns name = 127.0.0.1
EOF

C=(--conf "$conf")
# Starts a daemon in the foreground of a background job: its pid is ours.
spawn() {  # spawn NAME PROGRAM ARGS...
  local name=$1; shift
  setsid "$@" "${C[@]}" -f </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/pids/$name.pid"
}
wait_for() {  # wait_for SECONDS WHAT COMMAND... (polls readiness, bounded)
  local secs=$1 what=$2 i; shift 2
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what not ready after ${secs}s"
}

t0=$(date +%s.%N)
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$dir/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" \
  >>"$dir/log/mkfs.out" 2>&1
spawn mon ceph-mon -i a
mon_up() { alive mon; timeout 5 ceph "${C[@]}" --connect-timeout 3 mon stat; }
wait_for 30 "monitor" mon_up

uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(timeout 20 ceph "${C[@]}" osd new "$uuid")
[ "$osd_id" = 0 ] || die "unexpected osd id '$osd_id'"
timeout 20 ceph "${C[@]}" osd crush add-bucket localhost host >/dev/null 2>&1
timeout 20 ceph "${C[@]}" osd crush move localhost root=default >/dev/null 2>&1
timeout 20 ceph "${C[@]}" osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
mkdir -p "$dir/osd/osd.0"
ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$uuid" >>"$dir/log/mkfs.out" 2>&1
spawn osd ceph-osd -i 0
osd_up() { alive osd; timeout 5 ceph "${C[@]}" osd dump 2>/dev/null | grep -q '^osd.0 up'; }
wait_for 60 "osd.0" osd_up

timeout 60 radosgw-admin "${C[@]}" user create --uid shale-test --display-name "shale tests" \
  --access-key "$ACCESS" --secret "$SECRET" >>"$dir/log/admin.out" 2>&1 ||
  die "radosgw-admin user create failed"
spawn rgw radosgw -n client.rgw.a
endpoint=http://127.0.0.1:$RGW_PORT
s3() {  # s3 METHOD PATH [curl args]: one signed request, prints the status
  local m=$1 path=$2; shift 2
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$m" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS:$SECRET" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$endpoint$path"
}
alive() { kill -0 "$(cat "$dir/pids/$1.pid")" 2>/dev/null || die "$1 exited (log: $dir/log/)"; }
rgw_up() { alive rgw; curl -s -o /dev/null --max-time 2 "$endpoint/"; }
wait_for 60 "radosgw" rgw_up
code=$(s3 PUT "/$BUCKET")
[ "$code" = 200 ] || die "creating bucket $BUCKET: HTTP $code"
code=$(s3 PUT "/$BUCKET/.rgw-sh-check" --data-binary ok)
[ "$code" = 200 ] || die "a signed PUT into $BUCKET: HTTP $code"
s3 DELETE "/$BUCKET/.rgw-sh-check" >/dev/null
t1=$(date +%s.%N)

cat >"$dir/env" <<EOF
export SHALE_TEST_S3_ENDPOINT=$endpoint
export SHALE_TEST_S3_BUCKET=$BUCKET
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=$REGION
export SHALE_TEST_RGW_DIR=$dir
EOF
trap - EXIT
echo "# rgw.sh: Ceph RGW up at $endpoint in $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") s (dir $dir)" >&2
cat "$dir/env"
