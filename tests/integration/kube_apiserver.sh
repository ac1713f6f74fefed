#!/usr/bin/env bash
# kube_apiserver.sh -- tests/kube/apiserver.js refuses what kube-apiserver
# refuses, checked with real kubectl and curl: CRD schema validation (ajv)
# with 422 causes on create, patch and the status subresource, pruning,
# defaults, fieldValidation=Strict, non-structural CRDs, RBAC from the
# manifests' Role/RoleBinding (403 worded as the real one), 401, rate limits
# (429 + Retry-After), in-stream ERROR 410 after compaction, namespaces that
# must exist, finalizer-held deletes, no-op writes, core/v1 and
# events.k8s.io events with field selectors (kubectl describe lists them),
# kubectl explain from /openapi/v3, and the per-identity request counter.
source "$(dirname "$0")/lib.sh"
command -v kubectl >/dev/null || { notok "kubectl is installed"; finish; }
[ -d "$ROOT/tests/tools/node_modules/ajv" ] || { notok "ajv is installed (bash scripts/deps.sh test)"; finish; }
d=$(tmpdir); SRV=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
echo "admin-$RANDOM$RANDOM" > "$d/admin"; echo "sa-$RANDOM$RANDOM" > "$d/sa"; echo "other-$RANDOM" > "$d/other"
node "$ROOT/tests/kube/apiserver.js" --tls-dir "$d" --admin-token-file "$d/admin" \
  --sa-token "shards:shale-agent=$d/sa" --sa-token "elsewhere:shale-agent=$d/other" > "$d/srv.out" 2>&1 &
SRV=$!
for _ in $(seq 1200); do grep -q LISTENING "$d/srv.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/LISTENING //p' "$d/srv.out")
[ -n "$PORT" ] || { notok "the test API server starts"; cat "$d/srv.out"; finish; }
U=https://127.0.0.1:$PORT
cat > "$d/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "$U", certificate-authority-data: "$(base64 -w0 "$d/cert.pem")"}}]
users: [{name: admin, user: {token: "$(cat "$d/admin")"}}]
contexts: [{name: admin, context: {cluster: t, user: admin, namespace: shards}}]
current-context: admin
YAML
export KUBECONFIG=$d/kubeconfig KUBECACHEDIR=$d/cache
K() { timeout 60 kubectl "$@"; }
# C TOKENFILE METHOD PATH [BODY [CONTENT-TYPE]] -> body in $d/r, code in $d/code
C() {
  local ct=${5:-application/json}
  curl -sk -o "$d/r" -D "$d/h" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $(cat "$1")" \
    ${4:+-H "Content-Type: $ct" --data "$4"} "$U$3" > "$d/code"
}
code() { cat "$d/code"; }
j() { node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval("o" + process.argv[2]);
  console.log(typeof v === "object" ? JSON.stringify(v) : v)' "$d/r" "$1"; }
SS=/apis/shale.io/v1alpha1/namespaces/shards/shardsplits

C "$d/admin" POST $SS '{"apiVersion":"shale.io/v1alpha1","kind":"ShardSplit","metadata":{"name":"x"}}'
[ "$(code)" = 404 ] && ok "no CRD yet: 404" || notok "no CRD yet: 404 ($(code))"
check "apply the CRD" K apply -f "$ROOT/manifests/crd-shardsplit.yaml"
K apply -f "$ROOT/manifests/examples/split-2way.yaml" > "$d/ns.out" 2>&1
grep -q 'namespaces "shards" not found' "$d/ns.out" && ok "a missing namespace: 404 namespaces not found" \
  || { notok "a missing namespace: 404 namespaces not found"; cat "$d/ns.out"; }
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shards}\n' > "$d/ns.yaml"
check "create the namespace" K apply -f "$d/ns.yaml"
check "apply RBAC in it" K apply -n shards -f "$ROOT/manifests/rbac.yaml"
check "apply a valid ShardSplit" K apply -f "$ROOT/manifests/examples/split-2way.yaml"

# Schema validation on create: every cause, with its field path.
cat > "$d/bad.yaml" <<'YAML'
apiVersion: shale.io/v1alpha1
kind: ShardSplit
metadata: {name: bad}
spec:
  parent: {shard: ""}
  verify: fast
  children:
    - {name: A_b, store: "x://y"}
YAML
K apply -f "$d/bad.yaml" > "$d/bad.out" 2>&1
grep -q 'spec.children: Invalid value: 1: spec.children in body should have at least 2 items' "$d/bad.out" \
  && grep -q 'spec.verify: Unsupported value: "fast": supported values: "full", "references"' "$d/bad.out" \
  && grep -q 'spec.children\[0\].name: Invalid value: "A_b"' "$d/bad.out" \
  && grep -q 'spec.parent.shard: Invalid value: ""' "$d/bad.out" && grep -q 'spec.children\[0\].store' "$d/bad.out" \
  && ok "an invalid ShardSplit: refused with every field named" || { notok "an invalid ShardSplit: refused with every field named"; cat "$d/bad.out"; }
C "$d/admin" POST $SS '{"apiVersion":"shale.io/v1alpha1","kind":"ShardSplit","metadata":{"name":"nospec"}}'
[ "$(code)" = 422 ] && [ "$(j .reason)" = Invalid ] && [ "$(j '.details.causes[0].field')" = spec ] \
  && [ "$(j '.details.causes[0].reason')" = FieldValueRequired ] && ok "422 Invalid Status with details.causes" \
  || { notok "422 Invalid Status with details.causes"; cat "$d/r"; }
# Unknown fields: refused with fieldValidation=Strict (kubectl's default),
# pruned without it; defaults applied.
sed 's/verify: fast/verify: full\n  bogus: 1/; s/name: bad/name: unk/; s/shard: ""/shard: p/; s/A_b/a/; s#x://y#s3://b/a"}\n    - {name: b, store: "s3://b/b#' "$d/bad.yaml" > "$d/unk.yaml"
K apply -f "$d/unk.yaml" > "$d/unk.out" 2>&1
grep -q 'strict decoding error: unknown field "spec.bogus"' "$d/unk.out" && ok "fieldValidation=Strict: unknown field refused, named" \
  || { notok "fieldValidation=Strict: unknown field refused, named"; cat "$d/unk.out"; }
C "$d/admin" POST $SS '{"apiVersion":"shale.io/v1alpha1","kind":"ShardSplit","metadata":{"name":"pruned","junk":1},"spec":{"bogus":1,"parent":{"shard":"p"},"children":[{"name":"a","store":"s3://b/a","range":{"end":"m"},"x":2},{"name":"b","store":"s3://b/b"}]}}'
[ "$(code)" = 201 ] && [ "$(j .spec.bogus)" = undefined ] && [ "$(j '.spec.children[0].x')" = undefined ] \
  && [ "$(j .metadata.junk)" = undefined ] && ok "unknown fields pruned (spec, items, metadata)" || { notok "unknown fields pruned"; cat "$d/r"; }
[ "$(j .spec.dryRun)" = false ] && [ "$(j '.spec.children[0].range.start')" = "" ] && [ "$(j '.spec.children[0].range.end')" = m ] \
  && ok "defaults applied (spec.dryRun, range.start)" || { notok "defaults applied"; cat "$d/r"; }

# The agent's identity: what manifests/rbac.yaml grants, nothing more.
C "$d/sa" GET "$SS"; [ "$(code)" = 200 ] && ok "service account: list shardsplits" || notok "service account: list shardsplits ($(code))"
C "$d/sa" GET /api/v1/namespaces/shards/secrets
[ "$(code)" = 403 ] && [ "$(j .message)" = 'secrets is forbidden: User "system:serviceaccount:shards:shale-agent" cannot list resource "secrets" in API group "" in the namespace "shards"' ] \
  && ok "403 Forbidden, worded as kube-apiserver" || { notok "403 Forbidden, worded as kube-apiserver"; cat "$d/r"; }
C "$d/sa" DELETE $SS/orders-0-split
[ "$(code)" = 403 ] && [ "$(j .details.name)" = orders-0-split ] && ok "no delete for the agent" || notok "no delete for the agent ($(code))"
C "$d/other" GET "$SS"
[ "$(code)" = 403 ] && ok "the Role binds only in its namespace (another namespace's account: 403)" || notok "RoleBinding namespace ($(code))"
curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer nope" "$U$SS" | grep -q 401 && ok "a wrong token: 401" || notok "a wrong token: 401"
# Status subresource: validated too; only status changes through it.
C "$d/sa" PATCH $SS/orders-0-split/status '{"status":{"phase":"Bogus","childCount":"x","conditions":[{"type":"A","status":"True"},{"type":"A","status":"True"}]}}' application/merge-patch+json
[ "$(code)" = 422 ] && grep -q '"field":"status.phase"' "$d/r" && grep -q '"field":"status.childCount"' "$d/r" \
  && grep -q '"reason":"FieldValueDuplicate","field":"status.conditions\[1\]"' "$d/r" \
  && ok "status patch: enum, type and list-map key uniqueness checked" || { notok "status patch validated"; cat "$d/r"; }
C "$d/sa" PATCH $SS/orders-0-split/status '{"spec":{"dryRun":true},"status":{"phase":"Accepted","junk":1}}' application/merge-patch+json
[ "$(code)" = 200 ] && [ "$(j .status.phase)" = Accepted ] && [ "$(j .status.junk)" = undefined ] && [ "$(j .spec.dryRun)" = false ] \
  && ok "status patch: status pruned, spec untouched" || { notok "status patch: status pruned, spec untouched"; cat "$d/r"; }
C "$d/sa" PATCH $SS/orders-0-split/status '{"status":{"plan":{"children":[{"ssts":3,"x":{"y":1}}]},"lease":{"holder":"a","n":2},"stalled":{"step":"Clone","junk":1}}}' application/merge-patch+json
[ "$(j '.status.plan.children[0].x.y')" = 1 ] && [ "$(j .status.lease.holder)" = a ] && [ "$(j .status.stalled.step)" = Clone ] \
  && [ "$(j .status.stalled.junk)" = undefined ] && ok "x-kubernetes-preserve-unknown-fields: plan and lease kept whole, stalled pruned" \
  || { notok "x-kubernetes-preserve-unknown-fields respected"; cat "$d/r"; }
rv=$(j .metadata.resourceVersion)
C "$d/sa" PATCH $SS/orders-0-split/status '{"status":{"phase":"Accepted"}}' application/merge-patch+json
[ "$(j .metadata.resourceVersion)" = "$rv" ] && ok "a write that changes nothing: same resourceVersion" || notok "no-op write bumped the resourceVersion"
C "$d/sa" PATCH $SS/orders-0-split '{"spec":{"children":[]}}' application/merge-patch+json
[ "$(code)" = 422 ] && ok "patch of the object: validated" || notok "patch of the object: validated ($(code))"
C "$d/sa" PATCH $SS/orders-0-split '{"metadata":{"labels":{"a":"b"}}}' application/strategic-merge-patch+json
[ "$(code)" = 415 ] && ok "strategic merge patch on a custom resource: 415" || notok "strategic merge patch: 415 ($(code))"
C "$d/admin" GET $SS/orders-0-split; sed 's/"resourceVersion":"[0-9]*",//' "$d/r" > "$d/put.json"
C "$d/admin" PUT $SS/orders-0-split "$(cat "$d/put.json")"
[ "$(code)" = 422 ] && grep -q 'must be specified for an update' "$d/r" && ok "PUT without resourceVersion: 422" || notok "PUT without resourceVersion ($(code))"

# Lists in key order, paged by limit/continue over the first page's snapshot.
C "$d/admin" GET "$SS?limit=1"; tok=$(j .metadata.continue); first=$(j '.items[0].metadata.name'); lrv=$(j .metadata.resourceVersion)
C "$d/admin" PATCH $SS/pruned '{"metadata":{"labels":{"p":"1"}}}' application/merge-patch+json
C "$d/admin" GET "$SS?limit=1&continue=$tok"
[ "$first" = orders-0-split ] && [ "$(j '.items[0].metadata.name')" = pruned ] && [ "$(j .metadata.resourceVersion)" = "$lrv" ] \
  && [ "$(j '.items[0].metadata.labels')" = undefined ] && [ "$(j .metadata.continue)" = undefined ] \
  && ok "list paging: limit/continue, in name order, from one snapshot" || { notok "list paging"; cat "$d/r"; }
C "$d/admin" GET "$SS?limit=1&continue=bogus"
[ "$(code)" = 410 ] && ok "an unknown continue token: 410 Expired" || notok "an unknown continue token: 410 ($(code))"
# A watch with a label selector sees an object that stops matching as
# DELETED and one that starts matching as ADDED.
C "$d/admin" GET "$SS"; wrv=$(j .metadata.resourceVersion)
C "$d/admin" PATCH $SS/pruned '{"metadata":{"labels":{"p":"2"}}}' application/merge-patch+json
C "$d/admin" PATCH $SS/pruned '{"metadata":{"labels":{"p":"1"}}}' application/merge-patch+json
timeout 10 curl -sk -N -H "Authorization: Bearer $(cat "$d/sa")" "$U$SS?watch=true&labelSelector=p%3D1&resourceVersion=$wrv&timeoutSeconds=1" > "$d/ws.out"
[ "$(grep -o '"type":"[A-Z]*"' "$d/ws.out" | tr '\n' ' ')" = '"type":"DELETED" "type":"ADDED" ' ] \
  && ok "selector watch: leaving is DELETED, entering is ADDED" || { notok "selector watch: leaving is DELETED, entering is ADDED"; cat "$d/ws.out"; }

# Deleting an object with a finalizer: deletionTimestamp, generation + 1,
# no new finalizers; the object goes when the last one is removed.
C "$d/sa" PATCH $SS/pruned '{"metadata":{"finalizers":["shale.io/split"]}}' application/merge-patch+json
g=$(j .metadata.generation)
C "$d/admin" DELETE $SS/pruned '{"propagationPolicy":"Background"}'
[ "$(code)" = 200 ] && [ -n "$(j .metadata.deletionTimestamp)" ] && [ "$(j .metadata.generation)" = $((g + 1)) ] \
  && ok "delete with a finalizer: deletionTimestamp set, generation bumped" || { notok "delete with a finalizer"; cat "$d/r"; }
C "$d/sa" PATCH $SS/pruned '{"metadata":{"finalizers":["shale.io/split","x.io/y"]}}' application/merge-patch+json
[ "$(code)" = 422 ] && grep -q 'no new finalizers can be added if the object is being deleted' "$d/r" \
  && ok "no new finalizer on an object being deleted" || { notok "no new finalizer on an object being deleted"; cat "$d/r"; }
C "$d/sa" PATCH $SS/pruned '{"metadata":{"finalizers":null}}' application/merge-patch+json
C "$d/admin" GET $SS/pruned; [ "$(code)" = 404 ] && ok "the last finalizer removed: the object is gone" || notok "finalizer removal deletes"

# A CRD whose schema is not structural is refused.
sed 's/name: shardsplits.shale.io/name: things.shale.io/; s/plural: shardsplits/plural: things/; s/singular: shardsplit/singular: thing/; s/kind: ShardSplit$/kind: Thing/; s/listKind: ShardSplitList/listKind: ThingList/; s/shortNames: \[ss, shsplit\]/shortNames: [th]/; 0,/type: boolean/s/type: boolean/x-note: untyped/' \
  "$ROOT/manifests/crd-shardsplit.yaml" > "$d/crd2.yaml"
K apply -f "$d/crd2.yaml" > "$d/crd2.out" 2>&1
grep -q 'properties\[dryRun\].type: Required value' "$d/crd2.out" && ok "a non-structural CRD schema: refused" || { notok "a non-structural CRD schema: refused"; cat "$d/crd2.out"; }

# Watches: the history is compacted, an old resourceVersion gets the
# in-stream ERROR 410 Expired.
W() { timeout 10 curl -sk -N -H "Authorization: Bearer $(cat "$d/sa")" "$U$SS?watch=true&resourceVersion=$1&timeoutSeconds=1" > "$d/w.out"; }
C "$d/sa" GET "$SS"; lrv=$(j .metadata.resourceVersion)
C "$d/admin" PATCH $SS/orders-0-split '{"metadata":{"labels":{"w":"1"}}}' application/merge-patch+json
C "$d/sa" GET "$SS"; crv=$(j .metadata.resourceVersion)
curl -sk -X POST --data '{"compact": true}' "$U/__test/faults" > /dev/null
W "$lrv"
grep -q '"type":"ERROR".*"reason":"Expired".*"code":410' "$d/w.out" && grep -q "too old resource version: $lrv ($crv)" "$d/w.out" \
  && ok "watch from before a compaction: in-stream ERROR 410 Expired" \
  || { notok "watch from before a compaction: in-stream ERROR 410 Expired"; cat "$d/w.out"; }
W "$crv"
! grep -q '"type":"ERROR"' "$d/w.out" && ok "watch from the compacted revision itself: no error (nothing was lost)" \
  || { notok "watch from the compacted revision itself: no error"; cat "$d/w.out"; }

# Events: core/v1 and events.k8s.io/v1 are one store; field selectors as
# kubectl describe sends them; validation as ValidateEvent.
uid=$(K get ss orders-0-split -o jsonpath='{.metadata.uid}')
ev='{"apiVersion":"v1","kind":"Event","metadata":{"name":"orders-0-split.1"},"involvedObject":{"apiVersion":"shale.io/v1alpha1","kind":"ShardSplit","name":"orders-0-split","namespace":"shards","uid":"'$uid'"},"reason":"Accepted","message":"split accepted","type":"Normal","source":{"component":"shale-agent"},"count":1}'
C "$d/sa" POST /api/v1/namespaces/shards/events "$ev"; [ "$(code)" = 201 ] && ok "core/v1 event created" || { notok "core/v1 event created"; cat "$d/r"; }
C "$d/sa" POST /api/v1/namespaces/shards/events "${ev/\"namespace\":\"shards\"/\"namespace\":\"other\"}"
[ "$(code)" = 422 ] && grep -q 'does not match event.namespace' "$d/r" && ok "an event about another namespace's object: 422" || notok "event namespace checked ($(code))"
C "$d/sa" POST /api/v1/namespaces/shards/events "${ev/\"namespace\":\"shards\",/}"
[ "$(code)" = 422 ] && grep -q '"field":"involvedObject.namespace"' "$d/r" && ok "an event whose object names no namespace: 422" \
  || { notok "an event whose object names no namespace: 422"; cat "$d/r"; }
C "$d/sa" POST /apis/events.k8s.io/v1/namespaces/shards/events '{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"orders-0-split.2"},"regarding":{"kind":"ShardSplit","name":"orders-0-split","namespace":"shards","uid":"'$uid'"},"reason":"Failed","note":"it broke","type":"Warning","eventTime":"2026-01-01T00:00:00.000000Z","action":"Failed"}'
[ "$(code)" = 422 ] && grep -q '"field":"reportingController"' "$d/r" && ok "events.k8s.io: reportingController required" || { notok "events.k8s.io validation"; cat "$d/r"; }
C "$d/sa" POST /apis/events.k8s.io/v1/namespaces/shards/events '{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"orders-0-split.2"},"regarding":{"kind":"ShardSplit","name":"orders-0-split","namespace":"shards","uid":"'$uid'"},"reason":"Failed","note":"it broke","type":"Warning","eventTime":"2026-01-01T00:00:00.000000Z","action":"Failed","reportingController":"shale.io/shale-agent","reportingInstance":"orders-0"}'
[ "$(code)" = 201 ] && ok "events.k8s.io event created" || { notok "events.k8s.io event created"; cat "$d/r"; }
C "$d/admin" GET "/api/v1/namespaces/shards/events?fieldSelector=involvedObject.uid%3D$uid,involvedObject.kind%3DShardSplit"
[ "$(j '.items.length')" = 2 ] && [ "$(j '.items[1].message')" = "it broke" ] && ok "core view lists both, by involvedObject.uid" \
  || { notok "core view lists both, by involvedObject.uid"; cat "$d/r"; }
C "$d/admin" GET "/apis/events.k8s.io/v1/namespaces/shards/events?fieldSelector=regarding.name%3Dorders-0-split"
[ "$(j '.items[0].regarding.uid')" = "$uid" ] && [ "$(j '.items[0].note')" = "split accepted" ] && ok "events.k8s.io view of a core event" \
  || { notok "events.k8s.io view of a core event"; cat "$d/r"; }
C "$d/admin" GET "/api/v1/namespaces/shards/events?fieldSelector=spec.foo%3Dx"
[ "$(code)" = 400 ] && grep -q 'field label not supported: spec.foo' "$d/r" && ok "an unsupported field selector: 400" || notok "unsupported field selector ($(code))"
K describe ss orders-0-split > "$d/describe.out" 2>&1
grep -q 'Normal.*Accepted.*split accepted' "$d/describe.out" && grep -q 'Warning.*Failed.*it broke' "$d/describe.out" \
  && ok "kubectl describe lists the events" || { notok "kubectl describe lists the events"; cat "$d/describe.out"; }

K get events > "$d/events.out" 2>&1
grep -qE '^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE' "$d/events.out" && grep -qE 'Warning +Failed +shardsplit/orders-0-split +it broke' "$d/events.out" \
  && ok "kubectl get events prints kube-apiserver's columns" || { notok "kubectl get events prints kube-apiserver's columns"; cat "$d/events.out"; }
K create namespace nope > "$d/pb.out" 2>&1
grep -q 'speaks JSON only' "$d/pb.out" && ok "protobuf bodies (kubectl create): 415 saying so" || { notok "protobuf: 415"; cat "$d/pb.out"; }

# kubectl explain from /openapi/v3: every field described.
K explain shardsplit.spec > "$d/explain.out" 2>&1
grep -q 'The split request' "$d/explain.out" && grep -q 'children.*-required-' "$d/explain.out" \
  && grep -q 'How Verify checks the children' "$d/explain.out" && ok "kubectl explain shardsplit.spec" \
  || { notok "kubectl explain shardsplit.spec"; cat "$d/explain.out"; }
K explain shardsplit.status.conditions.lastTransitionTime > "$d/explain2.out" 2>&1; grep -q "When status last changed" "$d/explain2.out" \
  && ok "kubectl explain reaches nested status fields" || { notok "kubectl explain reaches nested status fields"; cat "$d/explain2.out"; }

# Rate limits per identity: 429 with Retry-After; other identities unaffected.
curl -sk -X POST --data '{"rateLimit": {"qps": 0.001, "burst": 3, "user": "system:serviceaccount:shards:shale-agent"}}' "$U/__test/faults" > /dev/null
codes=; for _ in 1 2 3 4 5; do C "$d/sa" GET "$SS/orders-0-split"; codes="$codes$(code) "; done
[ "$codes" = "200 200 200 429 429 " ] && grep -qi '^Retry-After: 1' "$d/h" && [ "$(j .reason)" = TooManyRequests ] \
  && ok "rate limit: burst 3, then 429 with Retry-After" || { notok "rate limit: burst 3, then 429 with Retry-After ($codes)"; cat "$d/h"; }
C "$d/admin" GET "$SS/orders-0-split"; [ "$(code)" = 200 ] && ok "another identity is not limited" || notok "another identity is not limited"
curl -sk -X POST --data '{"rateLimit": null}' "$U/__test/faults" > /dev/null

# The request counter, by identity and verb (the API budget tests read it).
curl -sk -X POST "$U/debug/requests/reset" > /dev/null
C "$d/sa" GET "$SS"; C "$d/sa" GET "$SS/orders-0-split"; C "$d/sa" PATCH $SS/orders-0-split/status '{"status":{"phase":"Fencing"}}' application/merge-patch+json
curl -sk "$U/debug/requests" > "$d/r"
[ "$(j '["system:serviceaccount:shards:shale-agent"].total')" = 3 ] && [ "$(j '["system:serviceaccount:shards:shale-agent"].writes')" = 1 ] \
  && [ "$(j '["system:serviceaccount:shards:shale-agent"].byResource["patch shardsplits/status"]')" = 1 ] \
  && [ "$(j '["system:serviceaccount:shards:shale-agent"].list')" = 1 ] && ok "GET /debug/requests counts by identity and verb" \
  || { notok "GET /debug/requests counts by identity and verb"; cat "$d/r"; }
# The chart as Helm renders it, applied with a server-side dry run: every
# example's objects are accepted, in namespaces that exist.
H=$ROOT/tests/tools/helm/helm
if [ -x "$H" ]; then
  printf 'shard: orders-0\nstore: {uri: "s3://shards/orders-0"}\nexampleStatefulSet: {enabled: true}\n' > "$d/v.yaml"
  "$H" template rel "$ROOT/charts/shale-agent" -n shards -f "$d/v.yaml" -f "$ROOT/charts/shale-agent/examples/other-namespace.yaml" > "$d/other.out"
  K apply --dry-run=server -f "$d/other.out" > "$d/other.apply" 2>&1
  grep -q 'namespaces "shard-requests" not found' "$d/other.apply" && ok "chart: RBAC for a watched namespace that does not exist is refused" \
    || { notok "chart: RBAC for a watched namespace that does not exist is refused"; cat "$d/other.apply"; }
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shard-requests}\n' | K apply -f - > /dev/null
  for f in "$d/v.yaml" "$ROOT"/charts/shale-agent/examples/*.yaml; do
    n=$(basename "$f" .yaml)
    "$H" template rel "$ROOT/charts/shale-agent" -n shards -f "$d/v.yaml" -f "$f" > "$d/$n.out" \
      && K apply --dry-run=server -f "$d/$n.out" > "$d/$n.apply" 2>&1 \
      && ok "chart ($n): kubectl apply --dry-run=server accepts every object" \
      || { notok "chart ($n): kubectl apply --dry-run=server accepts every object"; cat "$d/$n.apply"; }
  done
  grep -q 'role.rbac.authorization.k8s.io/rel-shale-agent created (server dry run)' "$d/other-namespace.apply" \
    && ok "chart: the Role lands in the watched namespace" || notok "chart: the Role lands in the watched namespace"
else
  notok "helm is installed (bash scripts/deps.sh test)"
fi
finish
