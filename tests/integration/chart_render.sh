#!/usr/bin/env bash
# chart_render.sh -- the Helm chart rendered the way Helm renders it (Go
# text/template + sprig, tests/kube/render), for default and non-default
# values: the output lints as YAML, the rendered agent config passes
# `shale-agent --check-config`, no credential is in the ConfigMap, the
# sidecar has both probes and a non-root read-only security context, S3
# keys come only from secretKeyRef, missing required values fail the
# render, and the chart's Role grants exactly what manifests/rbac.yaml does.
source "$(dirname "$0")/lib.sh"
d=$(tmpdir); trap 'rm -rf "$d"' EXIT
CH=$ROOT/charts/shale-agent
if ! (cd "$ROOT/tests/kube/render" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= \
      GOCACHE=$d/gocache go build -o "$d/render" . ) 2>"$d/build.err"; then
  notok "build the chart renderer"; cat "$d/build.err"; finish
fi
ok "build the chart renderer"
printf 'shard: orders-0\nstore: {uri: "s3://bucket/orders-0"}\n' > "$d/min.yaml"
cat > "$d/custom.yaml" <<'YAML'
shard: users-3
store: {uri: "s3://bucket/users-3", walUri: "file:///var/lib/shale/wal"}
s3: {endpoint: "https://minio.example:9000", pathStyle: true, credentialsSecret: shale-s3}
sources:
  http: {port: 9090, tokenSecret: shale-token}
  kubernetes: {namespace: other, labelSelector: "team=a"}
logLevel: debug
verify: {mode: references}
exampleStatefulSet: {enabled: true, storage: 5Gi}
YAML
agent_yaml() { awk '/agent.yaml: \|/{f=1;next} /^---/{f=0} f' "$1" | sed 's/^    //'; }
for v in min custom; do
  if "$d/render" "$CH" "$d/$v.yaml" > "$d/$v.out" 2>"$d/$v.err"; then ok "$v: renders"; else
    notok "$v: renders"; cat "$d/$v.err"; continue; fi
  if command -v yamllint >/dev/null; then
    yamllint -d '{extends: relaxed, rules: {line-length: disable}}' "$d/$v.out" >/dev/null \
      && ok "$v: yamllint" || notok "$v: yamllint"
  fi
  agent_yaml "$d/$v.out" > "$d/$v.agent.yaml"
  "$AGENT" --check-config --config "$d/$v.agent.yaml" >/dev/null 2>"$d/$v.check" \
    && ok "$v: the rendered agent config passes --check-config" \
    || { notok "$v: the rendered agent config passes --check-config"; cat "$d/$v.check"; }
  ! grep -qiE 'secret_access|AWS_SECRET_ACCESS_KEY:|password' "$d/$v.agent.yaml" \
    && ok "$v: no credential in the ConfigMap" || notok "$v: no credential in the ConfigMap"
done
grep -q 'mode: full' "$d/min.agent.yaml" && grep -q 'mode: references' "$d/custom.agent.yaml" \
  && ok "verify.mode: full by default, the value's when set" || notok "verify.mode rendered"
grep -q 'livenessProbe' "$d/custom.out" && grep -q 'path: /healthz' "$d/custom.out" \
  && grep -q 'path: /readyz' "$d/custom.out" && ok "sidecar has liveness and readiness probes" \
  || notok "sidecar has liveness and readiness probes"
grep -q 'runAsNonRoot: true' "$d/custom.out" && grep -q 'readOnlyRootFilesystem: true' "$d/custom.out" \
  && grep -q 'allowPrivilegeEscalation: false' "$d/custom.out" && ok "non-root, read-only root fs" \
  || notok "non-root, read-only root fs"
grep -q 'secretKeyRef: {name: shale-s3, key: AWS_SECRET_ACCESS_KEY}' "$d/custom.out" \
  && ok "S3 keys from the Secret" || notok "S3 keys from the Secret"
grep -q 'tokenFile: /etc/shale-token/token' "$d/custom.out" && ok "bearer token file wired" \
  || notok "bearer token file wired"
grep -q 'kind: StatefulSet' "$d/custom.out" && ! grep -q 'kind: StatefulSet' "$d/min.out" \
  && ok "example StatefulSet only when enabled" || notok "example StatefulSet only when enabled"
printf 'store: {uri: "s3://bucket/x"}\n' > "$d/noshard.yaml"
"$d/render" "$CH" "$d/noshard.yaml" >/dev/null 2>"$d/noshard.err"
[ $? -ne 0 ] && grep -q 'shard is required' "$d/noshard.err" && ok "missing shard: the render fails, saying so" \
  || notok "missing shard: the render fails, saying so"
diff <(sed -n '/^rules:/,$p' "$CH/templates/role.yaml") \
     <(awk '/^kind: Role$/{f=1} /^---/{f=0} f' "$ROOT/manifests/rbac.yaml" | sed -n '/^rules:/,$p') >/dev/null \
  && ok "chart Role = manifests/rbac.yaml Role" || notok "chart Role = manifests/rbac.yaml Role"
# The verbs the agent's code uses are all granted (and nothing beyond them).
# The verbs the agent's code uses (GET = get/list/watch, PATCH = object and
# status, POST = events only) are all granted, and it uses no other.
grep -q '"PATCH", path' "$ROOT/agent/source_kube.c" && grep -q 'request(k, "GET"' "$ROOT/agent/source_kube.c" \
  && ! grep -qE 'request\(k, "(PUT|DELETE)"' "$ROOT/agent/source_kube.c" \
  && [ "$(grep -cE 'request\(k, "POST"' "$ROOT/agent/source_kube.c")" = 1 ] \
  && grep -B3 'request(k, "POST"' "$ROOT/agent/source_kube.c" | grep -q 'events' \
  && ok "agent calls only GET, PATCH, and POST for events" || notok "agent calls only GET, PATCH, and POST for events"
finish
