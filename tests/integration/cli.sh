#!/usr/bin/env bash
# cli.sh -- the `shale` command on a file:// store: every command, exit
# codes, usage errors, manifest show as JSON, verify catching a flipped byte.
source "$(dirname "$0")/lib.sh"
d=$(tmpdir); trap 'rm -rf "$d"' EXIT
U=file://$d/db; W=file://$d/wal
S() { "$SHALE" --wal-store "$W" "$@"; }
check "load" S load "$U" --count 500 --value-size 50
check "put" S put "$U" 'bin%00key' 'v%FF'
[ "$(S get "$U" 'bin%00key')" = 'v%FF' ] && ok "get round-trips %XX escapes" || notok "get round-trips %XX escapes"
S get "$U" nope >/dev/null 2>&1; [ $? = 1 ] && ok "get missing: exit 1" || notok "get missing: exit 1"
check "delete" S delete "$U" key0000000003
[ "$(S scan "$U" --count)" = 500 ] && ok "scan --count" || notok "scan --count"
[ "$(S scan "$U" --start key0000000002 --end key0000000005 | cut -f1 | tr '\n' ' ')" = "key0000000002 key0000000004 " ] \
  && ok "scan bounds skip the deleted key" || notok "scan bounds skip the deleted key"
check "flush" S flush "$U"
check "compact" S compact "$U"
S manifest show "$U" > "$d/m.json" && node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1]));
  if(m.format_version!==1||!Array.isArray(m.sorted_runs)||m.sorted_runs.length!==1)process.exit(1)' "$d/m.json" \
  && ok "manifest show is JSON with one sorted run" || notok "manifest show is JSON with one sorted run"
out=$(S checkpoint create "$U" --scope all --name keep) && ok "checkpoint create" || notok "checkpoint create"
id=$(echo "$out" | cut -f1)
S checkpoint list "$U" | grep -q "$id" && ok "checkpoint list" || notok "checkpoint list"
check "clone with a range" S clone "$U" "file://$d/child" --range key0000000100:key0000000200 --checkpoint "$id" --parent-wal "$W"
[ "$("$SHALE" scan "file://$d/child" --count)" = 100 ] && ok "clone sees its range" || notok "clone sees its range"
"$SHALE" manifest show "file://$d/child" | grep -q '"parents"' && ok "manifest show prints parents" \
  || notok "manifest show prints parents"
check "gc dry run" S gc "$U" --dry-run --min-age 0
check "verify" S verify "$U"
check "checkpoint delete" S checkpoint delete "$U" "$id"
S checkpoint delete "$U" "$id" >/dev/null 2>&1; [ $? = 1 ] && ok "delete missing checkpoint: exit 1" \
  || notok "delete missing checkpoint: exit 1"
n_before=$(ls "$d/db/manifest" | wc -l)
out=$(S gc "$U" --min-age 0) && echo "$out" | grep -q '^deleted ' && ok "gc deletes garbage" \
  || notok "gc deletes garbage ($out)"
[ "$(ls "$d/db/manifest" | wc -l)" -lt "$n_before" ] && ok "gc removed old manifest versions" \
  || notok "gc removed old manifest versions"
[ "$(S scan "$U" --count)" = 500 ] && [ "$(S get "$U" key0000000499 | cut -c1-5)" = "$(S scan "$U" --start key0000000499 | cut -f2 | cut -c1-5)" ] \
  && ok "data intact after gc" || notok "data intact after gc"
check "verify after gc" S verify "$U"
S manifest show "$U" > "$d/m.json"
mid=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).manifest_id)' "$d/m.json")
S manifest show --id "$mid" "$U" | node -e 'let t="";process.stdin.on("data",c=>t+=c).on("end",()=>{
  process.exit(JSON.parse(t).manifest_id===Number(process.argv[1])?0:1)})' "$mid" \
  && ok "manifest show --id (option before URI)" || notok "manifest show --id (option before URI)"
[ "$(S scan --limit 3 "$U" | wc -l)" = 3 ] && ok "scan --limit" || notok "scan --limit"
check "put with a dash-leading key after --" S put "$U" -- '-dash' '-v'
[ "$(S get "$U" -- '-dash')" = '-v' ] && ok "get after --" || notok "get after --"
out=$(S checkpoint create "$U" --lifetime 1 --name brief) && ok "checkpoint create --lifetime" \
  || notok "checkpoint create --lifetime"
echo "$out" | grep -q $'\tname=brief$' && ok "checkpoint name printed" || notok "checkpoint name printed"
sst=$(node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1]));
  console.log(m.sorted_runs[0].ssts[0].id + ".sst")' "$d/m.json")
node -e 'const fs=require("fs");const p=process.argv[1];const b=fs.readFileSync(p);b[Math.floor(b.length/3)]^=0x55;fs.writeFileSync(p,b)' "$d/db/compacted/$sst"
out=$(S verify "$U" 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "$sst" && ok "verify names the corrupt SST" || notok "verify names the corrupt SST ($out)"
"$SHALE" bogus >/dev/null 2>&1; [ $? = 2 ] && ok "unknown command: exit 2" || notok "unknown command: exit 2"
"$SHALE" get >/dev/null 2>&1; [ $? = 2 ] && ok "missing arguments: exit 2" || notok "missing arguments: exit 2"
"$SHALE" get "file://$d/nothing-here" k >/dev/null 2>&1; [ $? = 1 ] && ok "no database: exit 1" \
  || notok "no database: exit 1"
usage() { local what=$1; shift; "$SHALE" "$@" >/dev/null 2>"$d/err"; local rc=$?
  [ $rc = 2 ] && grep -q '^usage: shale' "$d/err" && ok "usage: $what" || notok "usage: $what (exit $rc)"; }
usage "unknown option" scan "$U" --limt 3
usage "option without value" scan "$U" --start
usage "extra argument" verify "$U" extra
usage "bad number" gc "$U" --min-age soon
usage "bad scope" checkpoint create "$U" --scope everything
usage "range without colon" clone "$U" "file://$d/c2" --range abc
"$SHALE" put "$U" 'k%G1' v 2>"$d/err"; [ $? = 2 ] && grep -q 'bad %XX escape' "$d/err" \
  && ok "usage: bad escape" || notok "usage: bad escape"
usage "no command"
out=$("$SHALE" verify "$U" 2>&1 >/dev/null); echo "$out" | grep -q '^shale: verify: ' \
  && ok "errors read 'shale: <command>: ...'" || notok "errors read 'shale: <command>: ...' ($out)"
# docs/format.md "Checksum": a manifest verifies by hand with xxhsum (an
# implementation of XXH3 that is not ours) over its bytes, digits zeroed.
m=$(ls "$d"/db/manifest/*.manifest 2>/dev/null | tail -1)
if [ -n "$m" ] && command -v xxhsum >/dev/null; then
  want=$(sed -n '2s/^  "checksum": "xxh3-64:\([0-9a-f]\{16\}\)",$/\1/p' "$m")
  got=$(sed '2s/"xxh3-64:[0-9a-f]\{16\}"/"xxh3-64:0000000000000000"/' "$m" | xxhsum -H3 - | awk '{print $NF}')
  [ -n "$want" ] && [ "$want" = "$got" ] && ok "manifest checksum verified with xxhsum -H3 ($got)" \
    || notok "manifest checksum by hand: stored '$want', xxhsum '$got' ($m)"
else
  notok "no manifest under $d/db or no xxhsum to check its checksum by hand"
fi
"$SHALE" version | grep -q '^shale ' && ok "version" || notok "version"
"$SHALE" help | grep -q 'checkpoint create' && ok "help lists commands" || notok "help lists commands"
finish
