#!/usr/bin/env bash
# valgrind_demo.sh -- the demo's path under valgrind memcheck: loading a
# shard with the CLI, a 2-way split with `shale-agent --once`, scans of the
# children.  Any memory error or definite leak fails it.
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { notok "valgrind is installed"; finish; }
d=$(tmpdir); trap 'rm -rf "$d"' EXIT
VG=(valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite -q)
"${VG[@]}" "$SHALE" --wal-store "file://$d/wal" load "file://$d/p" --count 2000 >/dev/null 2>"$d/vg1" \
  && ok "valgrind: shale load" || { notok "valgrind: shale load"; tail -20 "$d/vg1"; }
mkdir -p "$d/splits/requests"
cat > "$d/agent.yaml" <<YAML
shard: vg
store: {uri: "file://$d/p", walUri: "file://$d/wal"}
sources: {local: {enabled: true, dir: "$d/splits"}, http: {enabled: false}}
YAML
cat > "$d/splits/requests/s.yaml" <<YAML
name: s
parent: {shard: vg}
children:
  - {name: a, store: "file://$d/a", range: {start: "", end: "key0000001000"}}
  - {name: b, store: "file://$d/b", range: {start: "key0000001000", end: ""}}
YAML
"${VG[@]}" "$AGENT" --once --config "$d/agent.yaml" 2>"$d/vg2" >/dev/null \
  && grep -q '"phase": "Complete"' "$d/splits/status/s.json" && ok "valgrind: shale-agent split" \
  || { notok "valgrind: shale-agent split"; grep -v '^{' "$d/vg2" | tail -20; }
for c in a b; do
  n=$("${VG[@]}" "$SHALE" scan "file://$d/$c" --count 2>"$d/vg3")
  [ $? = 0 ] && [ "$n" = 1000 ] && ok "valgrind: scan child $c" || { notok "valgrind: scan child $c"; tail -20 "$d/vg3"; }
done
finish
