#!/usr/bin/env bash
# verify_mem.sh -- the agent's peak RSS through a split with full Verify,
# by parent size (docs/benchmarks.md "Full Verify in bounded memory").
#
#   scripts/verify_mem.sh [MiB ...]      default: 100 1024
#
# For each size: a parent of MiB of 16-byte keys and 100-byte values
# (`shale load`, then one full compaction and GC), split 2-way and 8-way by
# `shale-agent --once` from a local request directory, under
# /usr/bin/time -v, each split on a fresh copy of the parent (a split
# fences it).  Prints the peak RSS (Maximum resident set size), the CPU
# time and the Verify step's time from the split's status.  Environment:
# DIR (work directory, default /var/tmp/shale-verify-mem; removed at the
# end), VERIFY (full | references), WAYS (default "2 8"), AGENT_ARGS
# (extra shale-agent arguments, e.g. --set verify.threads=1), AGENT (the
# shale-agent binary, default build/shale-agent).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHALE=$ROOT/build/shale
AGENT=${AGENT:-$ROOT/build/shale-agent}
DIR=${DIR:-/var/tmp/shale-verify-mem}
VERIFY=${VERIFY:-full}
WAYS=${WAYS:-2 8}
[ -x "$SHALE" ] && [ -x "$AGENT" ] || { echo "build first: make" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)" >&2; exit 1; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1024)
rm -rf "$DIR"
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

for mb in "${sizes[@]}"; do
  keys=$((mb * 1048576 / 116))
  src=$DIR/parent-$mb
  "$SHALE" load "file://$src" --count "$keys" --value-size 100 --prefix k >/dev/null
  "$SHALE" compact "file://$src"
  "$SHALE" gc "file://$src" --min-age 0 >/dev/null
  for ways in $WAYS; do
    d=$DIR/run
    rm -rf "$d"
    mkdir -p "$d/splits/requests"
    cp -r "$src" "$d/parent"
    cat > "$d/agent.yaml" <<YAML
shard: s0
store: {uri: "file://$d/parent"}
sources: {local: {enabled: true, dir: "$d/splits"}, http: {enabled: false}}
logLevel: warn
YAML
    {
      printf 'name: sp\nparent: {shard: s0}\nverify: %s\nchildren:\n' "$VERIFY"
      for i in $(seq 0 $((ways - 1))); do
        lo=""; hi=""
        [ "$i" -gt 0 ] && lo=$(printf 'k%010d' $((keys * i / ways)))
        [ "$i" -lt $((ways - 1)) ] && hi=$(printf 'k%010d' $((keys * (i + 1) / ways)))
        printf '  - {name: c%d, store: "file://%s/c%d", range: {start: "%s", end: "%s"}}\n' \
          "$i" "$d" "$i" "$lo" "$hi"
      done
    } > "$d/splits/requests/sp.yaml"
    # shellcheck disable=SC2086
    /usr/bin/time -v "$AGENT" --once --config "$d/agent.yaml" ${AGENT_ARGS:-} \
      2> "$d/time.txt" > /dev/null || { tail -20 "$d/time.txt"; exit 1; }
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$d/time.txt")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$d/time.txt")
    vs=$(node -e '
      const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const v = s.steps.find((x) => x.name === "Verify");
      console.log(s.phase, ((Date.parse(v.endTime) - Date.parse(v.startTime)) / 1000).toFixed(2));
    ' "$d/splits/status/sp.json")
    printf '%5d MiB %d-way verify=%s: peak RSS %d MiB, CPU %s s, phase/Verify s: %s\n' \
      "$mb" "$ways" "$VERIFY" $((rss / 1024)) "$cpu" "$vs"
  done
  rm -rf "$src"
done
