#!/usr/bin/env bash
# agent_kill_matrix.sh -- the agent is SIGKILLed right after each journal
# version a split writes (Journal.<v>: v1 at Accept, Running and Done of
# every step, the terminal phase, the released lease), after the lease is
# taken and released, and in the middle of the steps that loop or release
# (SHALE_FAILPOINTS), restarted, and the split completes: the children's
# keys exactly partition the parent's pre-split keys (every acknowledged
# write present, none twice), every child passes `shale verify`, the
# split's checkpoint is gone from the parent and the shard's split lease is
# released.  Abort after a crash at each step before the WAL wipe leaves
# the parent readable and writable with all its data.
source "$(dirname "$0")/lib.sh"
N=${N:-3000}
# A 3-child split writes journal versions 1..6 (docs/agent.md "Journal":
# version 1 records the accept, Fence Running and FullFlush Running; version
# 2 Fence and FullFlush Done, WipeLocalWAL Running; version 5 Verify Done
# and Complete Done with the checkpoint's release owed, version 6 the
# releases).
JOURNAL_VERSIONS=6
# FullFlush.mid: the checkpoint is in the parent's manifest, its id not yet
# in the journal; the redone FullFlush replaces it by its name.
# Preflight.claimed: the pre-flight beside Fence and FullFlush has claimed
# every child store, the WAL is not wiped (WipeLocalWAL joins the
# pre-flight before its first delete); the resumed run claims again (its
# own claims pass) before the wipe.
POINTS="Lease.taken $(for v in $(seq 1 $JOURNAL_VERSIONS); do printf 'Journal.%d ' "$v"; done)
Preflight.claimed FullFlush.mid WipeLocalWAL.mid Clone.mid Complete.mid Lease.released"

setup() {  # setup DIR: parent shard with N keys and an agent config + request
  local d=$1
  "$SHALE" --wal-store "file://$d/wal" load "file://$d/parent" --count "$N" >/dev/null || return 1
  mkdir -p "$d/splits/requests"
  cat > "$d/agent.yaml" <<YAML
shard: s0
store: {uri: "file://$d/parent", walUri: "file://$d/wal"}
sources: {local: {enabled: true, dir: "$d/splits"}, http: {enabled: false}}
logLevel: warn
YAML
  local a b; a=$(printf 'key%010d' $((N / 3))); b=$(printf 'key%010d' $((2 * N / 3)))
  cat > "$d/splits/requests/sp.yaml" <<YAML
name: sp
parent: {shard: s0}
children:
  - {name: c0, store: "file://$d/c0", walStore: "file://$d/c0-wal", range: {start: "", end: "$a"}}
  - {name: c1, store: "file://$d/c1", range: {start: "$a", end: "$b"}}
  - {name: c2, store: "file://$d/c2", range: {start: "$b", end: ""}}
YAML
}

for fp in $POINTS; do
  d=$(tmpdir)
  setup "$d" || { notok "$fp: setup"; continue; }
  SHALE_FAILPOINTS=$fp timeout 120 "$AGENT" --once --config "$d/agent.yaml" 2>"$d/log1"
  rc=$?
  if [ "$rc" -ne 137 ]; then notok "$fp: agent was killed at the failpoint (rc=$rc)"; continue; fi
  timeout 120 "$AGENT" --once --config "$d/agent.yaml" 2>"$d/log2"
  rc=$?
  grep -q '"phase": "Complete"' "$d/splits/status/sp.json" 2>/dev/null && [ "$rc" -eq 0 ] \
    && ok "$fp: resumed to Complete" || { notok "$fp: resumed to Complete (rc=$rc)"; tail -5 "$d/log2"; }
  : > "$d/got"
  for c in 0 1 2; do
    opt=; [ $c = 0 ] && opt="--wal-store file://$d/c0-wal"
    "$SHALE" $opt scan "file://$d/c$c" | cut -f1 >> "$d/got"
    "$SHALE" $opt verify "file://$d/c$c" >/dev/null 2>&1 || notok "$fp: child c$c verifies"
  done
  if "$SHALE" --wal-store "file://$d/wal" checkpoint list "file://$d/parent" 2>&1 | grep -q 'split:sp'; then
    notok "$fp: the split's checkpoint is released"
  else
    ok "$fp: the split's checkpoint is released"
  fi
  top=$(ls "$d/parent/splits/_lease/" 2>/dev/null | sort | tail -1)
  grep -q '"op": "release"' "$d/parent/splits/_lease/$top" 2>/dev/null \
    && ok "$fp: the split lease is released ($top)" || notok "$fp: the split lease is released ($top)"
  # The newest journal version records the end: Complete, lease released
  # (a step killed while Running is journalled Running again when redone).
  last=$(ls "$d/parent/splits/sp/" | sort | tail -1)
  j="$d/parent/splits/sp/$last"   # indented JSON: only the lease has a state "Released"
  grep -q '^  "phase": "Complete"' "$j" && grep -q '"state": "Released"' "$j" \
    && grep -q '^  "completionTime": "' "$j" \
    && ok "$fp: the newest journal ($last) is Complete with the lease released" \
    || notok "$fp: the newest journal ($last) is Complete with the lease released"
  if diff -q <(expected_keys "$N") "$d/got" >/dev/null; then
    ok "$fp: children partition the parent's $N keys exactly"
  else
    notok "$fp: children partition the parent's $N keys exactly ($(wc -l < "$d/got") keys)"
  fi
  rm -rf "$d"
done

# Abort after a crash before the point of no return.
# Journal.1: Accept, Fence Running and FullFlush Running; Fence.after: Fence
# done, journal still at version 1.  (Journal.2, FullFlush Done +
# WipeLocalWAL Running, is past the point of no return: an abort is refused
# there.)  FullFlush.mid: the checkpoint is on the parent and the journal
# does not have its id; the abort finds it by the split's name.
# At each of these the pre-flight beside Fence may have claimed the
# children or not yet; the abort releases what is claimed, so another split
# may use those stores.  (Preflight.claimed is not here: on file:// the
# claims can end after WipeLocalWAL is journalled Running, past the point
# of no return, where an abort is refused.)
for fp in Journal.1 FullFlush.before Fence.after FullFlush.mid WipeLocalWAL.before; do
  d=$(tmpdir)
  setup "$d" || { notok "abort $fp: setup"; continue; }
  SHALE_FAILPOINTS=$fp timeout 120 "$AGENT" --once --config "$d/agent.yaml" 2>/dev/null
  touch "$d/splits/requests/sp.cancel"
  timeout 120 "$AGENT" --once --config "$d/agent.yaml" 2>"$d/log2"
  grep -q '"phase": "Aborted"' "$d/splits/status/sp.json" && ok "abort after crash at $fp: Aborted" \
    || notok "abort after crash at $fp: Aborted"
  top=$(ls "$d/parent/splits/_lease/" 2>/dev/null | sort | tail -1)
  grep -q '"op": "release"' "$d/parent/splits/_lease/$top" 2>/dev/null \
    && ok "abort $fp: the split lease is released" || notok "abort $fp: the split lease is released"
  if "$SHALE" --wal-store "file://$d/wal" checkpoint list "file://$d/parent" 2>&1 | grep -q 'split:sp'; then
    notok "abort $fp: the split's checkpoint is released"
  else
    ok "abort $fp: the split's checkpoint is released"
  fi
  claimed=$(ls "$d"/c0/.shale/identity.json "$d"/c0-wal/.shale/identity.json \
                "$d"/c1/.shale/identity.json "$d"/c2/.shale/identity.json 2>/dev/null)
  [ -z "$claimed" ] && ok "abort $fp: the split's claims are released" \
    || notok "abort $fp: the split's claims are released (left: $claimed)"
  "$SHALE" --wal-store "file://$d/wal" put "file://$d/parent" zzz-after-abort 1 >/dev/null 2>&1 \
    && ok "abort $fp: parent writable" || notok "abort $fp: parent writable"
  n=$("$SHALE" --wal-store "file://$d/wal" scan "file://$d/parent" --count 2>/dev/null)
  [ "$n" = $((N + 1)) ] && ok "abort $fp: parent keeps all $N keys" \
    || notok "abort $fp: parent keeps all $N keys (has $n)"
  rm -rf "$d"
done
finish
