#!/usr/bin/env bash
# kube_kubectl.sh -- the Kubernetes path end to end with REAL kubectl against
# tests/kube/apiserver.js (TLS, bearer token) on 127.0.0.1, and shale-agent
# with its Kubernetes source splitting a shard on file:// stores:
#   kubectl apply (CRD, RBAC, a ShardSplit) -> the agent splits ->
#   kubectl wait --for=condition=Complete -> kubectl get shows the phase.
# Also: another shard's ShardSplit is left alone; an invalid one (overlapping
# ranges) ends Failed with the reason; a wrong token gets 401.
source "$(dirname "$0")/lib.sh"
command -v kubectl >/dev/null || { notok "kubectl is installed"; finish; }
d=$(tmpdir)
SRV= AGENT_PID= AGENT2_PID=
trap '[ -n "$AGENT_PID" ] && kill $AGENT_PID 2>/dev/null; [ -n "$AGENT2_PID" ] && kill $AGENT2_PID 2>/dev/null; [ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
# $d/token: the agent's service-account token (shards:shale-agent, rotated
# below); $d/admin-token: kubectl's admin identity (group system:masters).
echo "t0ken-$RANDOM" > "$d/token"
echo "admin-$RANDOM$RANDOM" > "$d/admin-token"
# A client CA and a client certificate for certificate authentication.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 1 -subj "/CN=test-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$d/client.key" -out "$d/client.csr" -subj "/CN=shale-agent" 2>/dev/null
openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -out "$d/client.pem" -days 1 2>/dev/null
# RBAC is on: the agent gets only what manifests/rbac.yaml grants.
node "$ROOT/tests/kube/apiserver.js" --admin-token-file "$d/admin-token" \
  --sa-token "shards:shale-agent=$d/token" --tls-dir "$d" --client-ca "$d/ca.pem" > "$d/srv.out" 2>&1 &
SRV=$!
for _ in $(seq 100); do grep -q LISTENING "$d/srv.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/LISTENING //p' "$d/srv.out")
cat > "$d/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$PORT", certificate-authority-data: "$(base64 -w0 "$d/cert.pem")"}
users:
- name: agent
  user: {tokenFile: "$d/token"}
- name: admin
  user: {token: "$(cat "$d/admin-token")"}
- name: certuser
  user: {client-certificate-data: "$(base64 -w0 "$d/client.pem")", client-key-data: "$(base64 -w0 "$d/client.key")"}
contexts:
- name: admin
  context: {cluster: test, user: admin, namespace: shards}
- name: agent
  context: {cluster: test, user: agent, namespace: shards}
- name: cert
  context: {cluster: test, user: certuser, namespace: shards}
current-context: admin
YAML
export KUBECONFIG=$d/kubeconfig KUBECACHEDIR=$d/cache
K() { timeout 60 kubectl "$@"; }
# (kubectl create sends protobuf, which the test server does not speak:
# apply sends JSON.)
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shards}\n' > "$d/ns.yaml"
check "kubectl apply the namespace" K apply -f "$d/ns.yaml"
check "kubectl apply the CRD and RBAC" K apply -f "$ROOT/manifests/crd-shardsplit.yaml" -n shards -f "$ROOT/manifests/rbac.yaml"
# The certificate user (CN=shale-agent) gets the same Role.
cat > "$d/cert-binding.yaml" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shale-agent-cert}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: shale-agent}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: shale-agent}]
YAML
check "bind the Role to the certificate user" K apply -n shards -f "$d/cert-binding.yaml"

"$SHALE" --wal-store "file://$d/wal" load "file://$d/parent" --count 3000 >/dev/null
sed "s/current-context: admin/current-context: agent/" "$d/kubeconfig" > "$d/agent-kubeconfig"
# agent_config NAME SHARD PARENT WAL KUBECONFIG: writes $d/NAME.yaml, an
# agent watching namespace shards and nothing else.
agent_config() {
  cat > "$d/$1.yaml" <<YAML
shard: $2
store: {uri: "file://$d/$3", walUri: "file://$d/$4"}
sources:
  local: {enabled: false}
  http: {enabled: false}
  kubernetes: {enabled: true, kubeconfig: "$d/$5", namespace: shards}
YAML
}
agent_config agent orders-0 parent wal agent-kubeconfig
"$AGENT" --config "$d/agent.yaml" 2>"$d/agent.log" &
AGENT_PID=$!

cat > "$d/split.yaml" <<YAML
apiVersion: shale.io/v1alpha1
kind: ShardSplit
metadata: {name: orders-0-split, labels: {shale.io/shard: orders-0}}
spec:
  parent: {shard: orders-0}
  verify: references
  children:
    - {name: orders-0a, store: "file://$d/a", range: {start: "", end: "key0000001000"}}
    - {name: orders-0b, store: "file://$d/b", range: {start: "key0000001000", end: ""}}
YAML
cat > "$d/other.yaml" <<YAML
apiVersion: shale.io/v1alpha1
kind: ShardSplit
metadata: {name: someone-else}
spec:
  parent: {shard: users-9}
  children:
    - {name: u1, store: "file://$d/u1", range: {start: "", end: "m"}}
    - {name: u2, store: "file://$d/u2", range: {start: "m", end: ""}}
YAML
check "kubectl apply a ShardSplit" K apply -f "$d/split.yaml" -f "$d/other.yaml"
if K wait --for=condition=Complete shardsplit/orders-0-split --timeout=60s >/dev/null 2>&1; then
  ok "kubectl wait --for=condition=Complete"
else
  notok "kubectl wait --for=condition=Complete"; tail -5 "$d/agent.log"
fi
K get shardsplits > "$d/get.out" 2>&1
grep -E '^orders-0-split +Complete +2 ' "$d/get.out" >/dev/null && ok "kubectl get shows PHASE and CHILDREN" \
  || { notok "kubectl get shows PHASE and CHILDREN"; cat "$d/get.out"; }
[ "$(K get ss orders-0-split -o jsonpath='{.status.observedGeneration}')" = 1 ] \
  && ok "observedGeneration" || notok "observedGeneration"
[ "$(K get ss orders-0-split -o jsonpath='{.status.verifyMode}')" = references ] \
  && ok "spec.verify reaches the split (status.verifyMode)" \
  || notok "spec.verify reaches the split (status.verifyMode)"
[ "$(K get ss orders-0-split -o jsonpath='{.status.conditions[?(@.type=="Progressing")].status}')" = False ] \
  && ok "Progressing=False when done" || notok "Progressing=False when done"
[ "$("$SHALE" scan "file://$d/a" --count)" = 1000 ] && [ "$("$SHALE" scan "file://$d/b" --count)" = 2000 ] \
  && ok "children hold 1000 + 2000 keys" || notok "children hold 1000 + 2000 keys"
[ -z "$(K get ss someone-else -o jsonpath='{.status.phase}')" ] && ok "another shard's ShardSplit untouched" \
  || notok "another shard's ShardSplit untouched"
sed -e 's/orders-0-split/bad-split/' -e 's/start: "key0000001000"/start: "key0000000500"/' "$d/split.yaml" > "$d/bad.yaml"
K apply -f "$d/bad.yaml" >/dev/null
K wait --for=condition=Failed shardsplit/bad-split --timeout=30s >/dev/null 2>&1 \
  && ok "overlapping ranges end Failed" || notok "overlapping ranges end Failed"
K get ss bad-split -o jsonpath='{.status.message}' | grep -q overlap && ok "Failed says why" \
  || notok "Failed says why"
K get ss orders-0-split -o jsonpath='{.metadata.finalizers}' | grep -q 'shale.io/split' \
  && ok "the agent holds a finalizer" || notok "the agent holds a finalizer"
# The Complete event follows the status write: wait for it (bounded).
for _ in $(seq 100); do
  K get events.events.k8s.io -o jsonpath='{range .items[*]}{.regarding.name}/{.action} {end}' > "$d/ev.out" 2>&1
  grep -q 'orders-0-split/Complete' "$d/ev.out" && break; sleep 0.1
done
grep -q 'orders-0-split/Complete' "$d/ev.out" && grep -q 'orders-0-split/Accepted' "$d/ev.out" \
  && ok "events for the split's phases" || { notok "events for the split's phases"; cat "$d/ev.out"; }
# A spec edit after acceptance: observedGeneration follows, the split stands.
K patch ss orders-0-split --type=merge -p '{"spec":{"dryRun":true}}' >/dev/null
for _ in $(seq 100); do
  [ "$(K get ss orders-0-split -o jsonpath='{.status.observedGeneration}')" = 2 ] && break; sleep 0.1
done
[ "$(K get ss orders-0-split -o jsonpath='{.status.observedGeneration}')" = 2 ] \
  && [ "$(K get ss orders-0-split -o jsonpath='{.status.phase}')" = Complete ] \
  && ok "spec edit: observedGeneration 2, phase still Complete" || notok "spec edit: observedGeneration 2, phase still Complete"

# API faults while the agent watches: dropped streams, 410 Gone, 429 and 500
# answers, slow answers; then a token rotation.  A new split must still
# complete exactly once.
fault() { curl -sk -X POST --data "$1" "https://127.0.0.1:$PORT/__test/faults" >/dev/null; }
# Waits until the agent has run into every injected 429/500/410 answer.
faults_spent() {
  for _ in $(seq 300); do
    curl -sk -X POST --data '{}' "https://127.0.0.1:$PORT/__test/faults" | grep -q '"gone":0,"status429":0,"status500":0' && return 0
    sleep 0.1
  done
  return 1
}
fault '{"dropWatches": true, "gone": 2, "status429": 3, "status500": 3, "delayMs": 20}'
fault '{"dropWatches": true}'
faults_spent && ok "the agent ran through dropped watches, 410, 429 and 500 answers" \
  || notok "the agent ran through dropped watches, 410, 429 and 500 answers"
old=$(cat "$d/token"); echo "rotated-$RANDOM" > "$d/token.new"; mv "$d/token.new" "$d/token"
sed -i "s/token: \"$old\"/token: \"$(cat "$d/token")\"/" "$d/kubeconfig"
"$SHALE" --wal-store "file://$d/wal2" load "file://$d/parent2" --count 500 >/dev/null
fault '{"delayMs": 0}'
curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $old" \
  "https://127.0.0.1:$PORT/apis/shale.io/v1alpha1/namespaces/shards/shardsplits" | grep -q 401 \
  && ok "the old token is refused after rotation" || notok "the old token is refused after rotation"
sed -e 's/orders-0-split/again-split/' -e "s#file://$d/a\"#file://$d/a2\"#" -e "s#file://$d/b\"#file://$d/b2\"#" \
  -e '/verify: references/d' "$d/split.yaml" > "$d/again.yaml"
check "apply after faults and rotation" K apply -f "$d/again.yaml"
fault '{"dropWatches": true, "status500": 2}'
faults_spent
K wait --for=condition=Complete shardsplit/again-split --timeout=90s >/dev/null 2>&1 \
  && ok "split completes through API faults and a token rotation" \
  || { notok "split completes through API faults and a token rotation"; tail -15 "$d/agent.log"; }
[ "$(K get ss again-split -o jsonpath='{.status.children[1].keyCount}')" = 2000 ] \
  && ok "and exactly once (journaled)" || notok "and exactly once (journaled)"
[ "$(K get ss again-split -o jsonpath='{.status.verifyMode}')" = full ] \
  && ok "no spec.verify: the agent's default (full)" || notok "no spec.verify: the agent's default (full)"

# A second agent for another shard handles only its own ShardSplit; it
# authenticates with a client certificate instead of a token.
sed "s/current-context: admin/current-context: cert/" "$d/kubeconfig" > "$d/cert-kubeconfig"
agent_config agent2 users-9 parent2 wal2 cert-kubeconfig
"$AGENT" --config "$d/agent2.yaml" 2>"$d/agent2.log" &
AGENT2_PID=$!
K wait --for=condition=Complete shardsplit/someone-else --timeout=60s >/dev/null 2>&1 \
  && ok "a second agent splits its own shard's request" || notok "a second agent splits its own shard's request"
grep -q 'orders-0' "$d/agent2.log" && notok "the second agent left orders-0 alone" \
  || ok "the second agent left orders-0 alone"
kill $AGENT2_PID; wait $AGENT2_PID 2>/dev/null
# Turning TLS verification off is explicit and loud.
"$AGENT" --once --config "$d/agent2.yaml" --set sources.kubernetes.insecureSkipTlsVerify=true 2>"$d/insecure.log"
grep -q 'TLS verification is OFF' "$d/insecure.log" && ok "insecure TLS logs a warning" \
  || notok "insecure TLS logs a warning"
! grep -q 'TLS verification is OFF' "$d/agent.log" && ok "TLS verified by default" || notok "TLS verified by default"

# JSON patch, and a server-side dry run of the rendered Helm chart.
K patch ss orders-0-split --type=json -p '[{"op":"add","path":"/metadata/labels/team","value":"a"}]' >/dev/null
[ "$(K get ss orders-0-split -o jsonpath='{.metadata.labels.team}')" = a ] && ok "JSON patch" || notok "JSON patch"
if HELM=$ROOT/tests/tools/helm/helm && [ -x "$HELM" ]; then
  printf 'shard: orders-0\nstore: {uri: "s3://bucket/orders-0"}\nexampleStatefulSet: {enabled: true}\n' > "$d/v.yaml"
  "$HELM" template rel "$ROOT/charts/shale-agent" -n shards -f "$d/v.yaml" > "$d/chart.yaml"
  K apply --dry-run=server -n shards -f "$d/chart.yaml" > "$d/dry.out" 2>&1 && grep -q 'statefulset.apps/rel-shale-agent-example created (server dry run)' "$d/dry.out" \
    && ok "the rendered chart applies with --dry-run=server" || { notok "the rendered chart applies with --dry-run=server"; cat "$d/dry.out"; }
  [ -z "$(K get configmaps -n shards -o name 2>/dev/null)" ] && ok "a dry run stores nothing" || notok "a dry run stores nothing"
else
  notok "helm is installed (scripts/deps.sh test)"
fi

# Deleting a ShardSplit in the middle of a split: before the WAL wipe it
# aborts, after it the split finishes; either way the finalizer goes last.
del_case() {  # del_case SHARD FAILPOINT WANT_PHASE
  local shard=$1 fp=$2 want=$3 p=$d/$1
  "$SHALE" --wal-store "file://$p-wal" load "file://$p" --count 600 >/dev/null
  cat > "$p.yaml" <<YAML
shard: $shard
store: {uri: "file://$p", walUri: "file://$p-wal"}
sources: {local: {enabled: false}, http: {enabled: false},
          kubernetes: {enabled: true, kubeconfig: "$d/agent-kubeconfig", namespace: shards}}
logLevel: debug
YAML
  cat > "$p-split.yaml" <<YAML
apiVersion: shale.io/v1alpha1
kind: ShardSplit
metadata: {name: $shard-split}
spec:
  parent: {shard: $shard}
  children:
    - {name: cx, store: "file://$p-x", range: {start: "", end: "key0000000300"}}
    - {name: cy, store: "file://$p-y", range: {start: "key0000000300", end: ""}}
YAML
  K apply -f "$p-split.yaml" > "$p.apply" 2>&1 || cat "$p.apply"
  SHALE_FAILPOINTS=$fp timeout 60 "$AGENT" --config "$p.yaml" 2>"$p.log1"   # dies at the failpoint
  K get ss "$shard-split" -o jsonpath='{.status.phase} {.status.message} {.metadata.finalizers}' > "$p.st1" 2>&1
  K delete ss "$shard-split" --wait=false >/dev/null
  "$AGENT" --config "$p.yaml" 2>"$p.log2" &
  local pid=$!
  local gone=
  for _ in $(seq 300); do K get ss "$shard-split" >/dev/null 2>&1 || { gone=1; break; }; sleep 0.1; done
  kill $pid; wait $pid 2>/dev/null
  [ -n "$gone" ] && ok "deleted mid-split at $fp: the object goes once the split is over" \
    || notok "deleted mid-split at $fp: the object goes once the split is over"
  if [ "$want" = Complete ]; then
    [ "$("$SHALE" scan "file://$p-y" --count 2>/dev/null)" = 300 ] && ok "deleted after the wipe: the split finished" \
      || { notok "deleted after the wipe: the split finished"; cat "$p.st1"; echo; cat "$p.log1" "$p.log2" | tail -n 8; ls "$p-y" 2>&1 | head -3; ls "$p-x" 2>&1 | head; }
  else
    grep -q 'Failed' "$p.st1" && notok "the split was accepted before the delete ($(cat "$p.st1"))"
    [ "$("$SHALE" --wal-store "file://$p-wal" scan "file://$p" --count 2>/dev/null)" = 600 ] && \
      [ ! -e "$p-y" ] && ok "deleted before the wipe: aborted, the parent keeps its 600 keys" \
      || notok "deleted before the wipe: aborted, the parent keeps its 600 keys"
  fi
}
del_case del-early FullFlush.before Aborted
del_case del-late Clone.before Complete

check "kubectl delete (the agent releases its finalizer)" K delete ss orders-0-split --timeout=30s
K get ss orders-0-split >/dev/null 2>&1 && notok "deleted object gone" || ok "deleted object gone"
curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" \
  "https://127.0.0.1:$PORT/apis/shale.io/v1alpha1/namespaces/shards/shardsplits" | grep -q 401 \
  && ok "wrong token: 401" || notok "wrong token: 401"
! grep -q "$(cat "$d/token")" "$d/agent.log" && ok "token never logged" || notok "token never logged"
finish
