#!/usr/bin/env bash
# kube_kubectl.sh -- the Kubernetes path end to end with REAL kubectl against
# tests/kube/apiserver.js (TLS, bearer token) on 127.0.0.1 and [::1], and
# shale-agent with its Kubernetes source splitting a shard on file:// stores:
#   kubectl apply (CRD, RBAC, a ShardSplit) -> the agent splits ->
#   kubectl wait --for=condition=Complete -> kubectl get shows the phase.
# The main agent runs the in-cluster path as in a pod (KUBERNETES_SERVICE_HOST
# ::1, a service-account directory with a rotating token, ca.crt, namespace);
# the API server counts the agent's requests (GET /debug/requests) for the
# budget of docs/kubernetes.md.  Also: refusals cost at most 3 requests and
# stay refused, a failed finalizer patch delays the split, re-created
# ShardSplits run, another shard's ShardSplit is left alone, a wrong token
# gets 401.
source "$(dirname "$0")/lib.sh"
command -v kubectl >/dev/null || { notok "kubectl is installed"; finish; }
d=$(tmpdir)
SRV= AGENT_PID= AGENT2_PID=
trap '[ -n "$AGENT_PID" ] && kill $AGENT_PID 2>/dev/null; [ -n "$AGENT2_PID" ] && kill $AGENT2_PID 2>/dev/null; [ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,IP:::1" 2>/dev/null
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
  --sa-token "shards:shale-agent=$d/token" --tls-dir "$d" --client-ca "$d/ca.pem" --ipv6 > "$d/srv.out" 2>&1 &
SRV=$!
for _ in $(seq 1200); do grep -q LISTENING "$d/srv.out" 2>/dev/null && break; sleep 0.05; done
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
# agent_config NAME SHARD PARENT WAL [KUBECONFIG]: writes $d/NAME.yaml, an
# agent watching namespace shards and nothing else; without a kubeconfig
# the agent takes the in-cluster path (and the namespace file).
agent_config() {
  local kube="{enabled: true, kubeconfig: \"$d/${5:-}\", namespace: shards}"
  [ -z "${5:-}" ] && kube="{enabled: true}"
  cat > "$d/$1.yaml" <<YAML
shard: $2
store: {uri: "file://$d/$3", walUri: "file://$d/$4"}
sources:
  local: {enabled: false}
  http: {enabled: false}
  kubernetes: $kube
YAML
}
API=/apis/shale.io/v1alpha1/namespaces/shards/shardsplits
# The main agent's requests so far, as the API server counts them (GET
# /debug/requests: an entry per client with total, writes and watch): "total
# writes watches".  The client is the main agent's identity (the service
# account shards:shale-agent), or its User-Agent where the server tells
# clients apart by that.
counts() {
  curl -sk "https://127.0.0.1:$PORT/debug/requests" | node -e '
    let s = ""; process.stdin.on("data", x => s += x).on("end", () => {
      const all = JSON.parse(s);
      const k = Object.keys(all).find(u => /serviceaccount:shards:shale-agent$|\(shard orders-0\)$/.test(u));
      const c = all[k] || {};
      console.log(c.total || 0, c.writes || 0, c.watch || 0); });'
}
# The agent log's lines matching a pattern, as "epoch_ms message".
log_lines() {
  grep -F "$2" "$1" | node -e '
    let s = ""; process.stdin.on("data", x => s += x).on("end", () => {
      for (const l of s.split("\n").filter(Boolean)) { const j = JSON.parse(l); console.log(Date.parse(j.time), j.msg); } });'
}
# until_true SECONDS CMD...: polls CMD (bounded) until it succeeds.
until_true() {
  local n=$(( $1 * 10 )); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
jp() { K get ss "$1" -o jsonpath="$2" 2>/dev/null; }
no_finalizer() { local f; f=$(jp "$1" '{.metadata.finalizers}'); [ -z "$f" ] || [ "$f" = "[]" ]; }
described() { K describe shardsplit "$1" 2>/dev/null | grep -Eq "$2"; }

# The main agent as in a pod: service host ::1 (bracketed in the URL), the
# service-account directory (a token that rotates: a symlink to the file the
# server checks, as kubelet's ..data link), ca.crt and the namespace file.
mkdir -p "$d/sa"
ln -s ../token "$d/sa/token"
cp "$d/cert.pem" "$d/sa/ca.crt"
echo shards > "$d/sa/namespace"
agent_config agent orders-0 parent wal
KUBERNETES_SERVICE_HOST=::1 KUBERNETES_SERVICE_PORT=$PORT SHALE_KUBE_SA_DIR=$d/sa \
  "$AGENT" --config "$d/agent.yaml" --set sources.http.enabled=true --set sources.http.listen=127.0.0.1:0 \
  --port-file "$d/agent.port" 2>"$d/agent.log" &
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
until_true 30 grep -q 'watching ShardSplits in shards on https://\[::1\]:' "$d/agent.log" \
  && ok "in-cluster: the service host ::1 is bracketed, the namespace comes from the file" \
  || { notok "in-cluster: the service host ::1 is bracketed, the namespace comes from the file"; head -3 "$d/agent.log"; }
read -r t0 w0 _ < <(counts)
check "kubectl apply a ShardSplit" K apply -f "$d/split.yaml" -f "$d/other.yaml"
if K wait --for=condition=Complete shardsplit/orders-0-split --timeout=60s >/dev/null 2>&1; then
  ok "kubectl wait --for=condition=Complete"
else
  notok "kubectl wait --for=condition=Complete"; tail -5 "$d/agent.log"
fi
# The split's last writes: the finalizer comes off (it guards nothing now)
# and the Complete event is posted.
until_true 30 no_finalizer orders-0-split && ok "the finalizer comes off once the split is over" \
  || notok "the finalizer comes off once the split is over"
until_true 30 described orders-0-split 'Normal +Complete' 
K describe shardsplit orders-0-split > "$d/describe.out" 2>&1
for ph in Accepted Fencing Flushing WipingWAL Cloning Verifying Complete; do
  grep -Eq "Normal +$ph " "$d/describe.out" || { notok "kubectl describe lists an event per phase ($ph missing)"; cat "$d/describe.out"; break; }
done && ok "kubectl describe lists an event per phase"
read -r t1 w1 x1 < <(counts)
split_writes=$((w1 - w0))
echo "# budget: one 2-way split cost $split_writes writes ($((t1 - t0)) requests)"
[ "$split_writes" -le 15 ] && ok "budget: a 2-way split costs at most 15 writes ($split_writes)" \
  || { notok "budget: a 2-way split costs at most 15 writes ($split_writes)"; curl -sk "https://127.0.0.1:$PORT/debug/requests"; }
idle_t0=$(date +%s%N)
K get shardsplits > "$d/get.out" 2>&1
grep -E '^orders-0-split +Complete +2 ' "$d/get.out" >/dev/null && ok "kubectl get shows PHASE and CHILDREN" \
  || { notok "kubectl get shows PHASE and CHILDREN"; cat "$d/get.out"; }
[ "$(jp orders-0-split '{.status.observedGeneration}')" = 1 ] && ok "observedGeneration" || notok "observedGeneration"
[ "$(jp orders-0-split '{.status.verifyMode}')" = references ] \
  && ok "spec.verify reaches the split (status.verifyMode)" \
  || notok "spec.verify reaches the split (status.verifyMode)"
[ "$(jp orders-0-split '{.status.conditions[?(@.type=="Progressing")].status}')" = False ] \
  && ok "Progressing=False when done" || notok "Progressing=False when done"
[ "$(jp orders-0-split '{.status.conditions[?(@.type=="Complete")].observedGeneration}')" = 1 ] \
  && ok "conditions carry observedGeneration" || notok "conditions carry observedGeneration"
[ "$("$SHALE" scan "file://$d/a" --count)" = 1000 ] && [ "$("$SHALE" scan "file://$d/b" --count)" = 2000 ] \
  && ok "children hold 1000 + 2000 keys" || notok "children hold 1000 + 2000 keys"
[ -z "$(jp someone-else '{.status.phase}')" ] && ok "another shard's ShardSplit untouched" \
  || notok "another shard's ShardSplit untouched"
# Idle: between the end of the split and the next request the agent sends
# nothing but its watch (and its renewal when the server ends it).
read -r t2 _ x2 < <(counts)
idle_ms=$(( ($(date +%s%N) - idle_t0) / 1000000 ))
idle_other=$(( (t2 - t1) - (x2 - x1) ))
echo "# budget: idle for $idle_ms ms: $((t2 - t1)) requests, $((x2 - x1)) of them watch renewals"
[ "$idle_other" -eq 0 ] && ok "budget: idle, nothing but the watch ($((x2 - x1)) renewals in $idle_ms ms)" \
  || notok "budget: idle, nothing but the watch ($idle_other other requests)"

# A refused request (overlapping ranges): Failed with the reason, a Warning,
# no finalizer, and at most 3 requests -- then nothing, whatever happens to
# the object later (it used to loop at hundreds of requests a second).
sed -e 's/orders-0-split/bad-split/' -e 's/start: "key0000001000"/start: "key0000000500"/' "$d/split.yaml" > "$d/bad.yaml"
read -r t0 _ x0 < <(counts)
K apply -f "$d/bad.yaml" >/dev/null
K wait --for=condition=Failed shardsplit/bad-split --timeout=30s >/dev/null 2>&1 \
  && ok "overlapping ranges end Failed" || notok "overlapping ranges end Failed"
jp bad-split '{.status.message}' | grep -q overlap && ok "Failed says why" || notok "Failed says why"
[ "$(jp bad-split '{.status.conditions[?(@.type=="Accepted")].status}/{.status.conditions[?(@.type=="Accepted")].reason}')" = False/InvalidRequest ] \
  && ok "refused: Accepted=False, reason InvalidRequest" || notok "refused: Accepted=False, reason InvalidRequest"
until_true 30 described bad-split 'Warning +InvalidRequest' && ok "refused: a Warning event" \
  || notok "refused: a Warning event"
no_finalizer bad-split && ok "refused: no finalizer" || notok "refused: no finalizer"
read -r t1 _ x1 < <(counts)
refused_reqs=$(( (t1 - t0) - (x1 - x0) ))
echo "# budget: a refused request cost $refused_reqs requests"
[ "$refused_reqs" -le 3 ] && ok "budget: a refused request costs at most 3 requests ($refused_reqs)" \
  || notok "budget: a refused request costs at most 3 requests ($refused_reqs)"
K label ss bad-split touched=yes >/dev/null   # a MODIFIED event of the same generation
bad_rv=$(jp bad-split '{.metadata.resourceVersion}')
curl -s "http://127.0.0.1:$(cat "$d/agent.port")/metrics" > "$d/metrics.out"
grep -q '^shale_kube_refusals_total{reason="InvalidRequest"} 1$' "$d/metrics.out" \
  && grep -q '^shale_kube_events_total{result="posted"} [1-9]' "$d/metrics.out" \
  && grep -q '^shale_kube_requests_total [1-9]' "$d/metrics.out" \
  && ok "metrics: refusals, events and API requests" || { notok "metrics: refusals, events and API requests"; grep kube "$d/metrics.out"; }

# A spec edit after acceptance: observedGeneration follows (on the
# conditions too, so kubectl wait works), the split stands, the
# Complete condition keeps its lastTransitionTime, a Warning says why.
ltt=$(jp orders-0-split '{.status.conditions[?(@.type=="Complete")].lastTransitionTime}')
K patch ss orders-0-split --type=merge -p '{"spec":{"dryRun":true}}' >/dev/null
K wait --for=condition=Complete shardsplit/orders-0-split --timeout=30s >/dev/null 2>&1 \
  && [ "$(jp orders-0-split '{.status.conditions[?(@.type=="Complete")].observedGeneration}')" = 2 ] \
  && ok "kubectl wait --for=condition=Complete returns after a spec edit" \
  || notok "kubectl wait --for=condition=Complete returns after a spec edit"
[ "$(jp orders-0-split '{.status.observedGeneration}')" = 2 ] && [ "$(jp orders-0-split '{.status.phase}')" = Complete ] \
  && ok "spec edit: observedGeneration 2, phase still Complete" || notok "spec edit: observedGeneration 2, phase still Complete"
[ "$(jp orders-0-split '{.status.conditions[?(@.type=="Complete")].lastTransitionTime}')" = "$ltt" ] \
  && ok "lastTransitionTime changes only with the condition's status" \
  || notok "lastTransitionTime changes only with the condition's status"
until_true 30 described orders-0-split 'Warning +SpecChangeIgnored' && ok "spec edit: a Warning SpecChangeIgnored" \
  || notok "spec edit: a Warning SpecChangeIgnored"
# The refused object saw its MODIFIED event long before now (one worker,
# in order): it was not written again.
[ "$(jp bad-split '{.metadata.resourceVersion}')" = "$bad_rv" ] \
  && [ "$(jp bad-split '{.status.phase}')" = Failed ] && no_finalizer bad-split \
  && ok "refused stays refused (no finalizer loop, no re-submission)" \
  || notok "refused stays refused (no finalizer loop, no re-submission)"

# API faults while the agent watches: dropped streams, 410 Gone (as an
# answer and in the stream), 429 and 500 answers, slow answers; then a token
# rotation.  A new split must still complete exactly once.
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
  "https://127.0.0.1:$PORT$API" | grep -q 401 \
  && ok "the old token is refused after rotation" || notok "the old token is refused after rotation"
sed -e 's/orders-0-split/again-split/' -e "s#file://$d/a\"#file://$d/a2\"#" -e "s#file://$d/b\"#file://$d/b2\"#" \
  -e '/verify: references/d' "$d/split.yaml" > "$d/again.yaml"
check "apply after faults and rotation" K apply -f "$d/again.yaml"
fault '{"dropWatches": true, "status500": 2}'
faults_spent
K wait --for=condition=Complete shardsplit/again-split --timeout=90s >/dev/null 2>&1 \
  && ok "split completes through API faults and a token rotation (in-cluster token re-read)" \
  || { notok "split completes through API faults and a token rotation (in-cluster token re-read)"; tail -15 "$d/agent.log"; }
[ "$(jp again-split '{.status.children[1].keyCount}')" = 2000 ] \
  && ok "and exactly once (journaled)" || notok "and exactly once (journaled)"
[ "$(jp again-split '{.status.verifyMode}')" = full ] \
  && ok "no spec.verify: the agent's default (full)" || notok "no spec.verify: the agent's default (full)"
# A ShardSplit without ranges: the agent computes them from the parent's
# SST indexes (by keys here) and shows them in status.
cat > "$d/auto.yaml" <<YAML
apiVersion: shale.io/v1alpha1
kind: ShardSplit
metadata: {name: auto-split, labels: {shale.io/shard: orders-0}}
spec:
  parent: {shard: orders-0}
  verify: references
  splitBy: keys
  children:
    - {name: orders-0c, store: "file://$d/c1"}
    - {name: orders-0d, store: "file://$d/c2"}
YAML
check "kubectl apply a ShardSplit without ranges" K apply -f "$d/auto.yaml"
K wait --for=condition=Complete shardsplit/auto-split --timeout=60s >/dev/null 2>&1 \
  && ok "a ShardSplit without ranges completes" \
  || { notok "a ShardSplit without ranges completes"; K get ss auto-split -o json | head -40; }
ab=$(jp auto-split '{.status.children[0].range.end}')
want=$("$SHALE" --wal-store "file://$d/wal" split-points "file://$d/parent" --ways 2 --by keys 2>&1)
[ "$(jp auto-split '{.status.rangesComputed}')" = true ] && [ "$(jp auto-split '{.status.splitBy}')" = keys ] \
  && [ -n "$ab" ] && [ "$ab" = "$want" ] && [ "$(jp auto-split '{.status.children[1].range.start}')" = "$ab" ] \
  && [ -z "$(jp auto-split '{.status.children[0].range.start}')" ] && [ -z "$(jp auto-split '{.status.children[1].range.end}')" ] \
  && ok "its status shows the computed boundary ($ab, the split points by keys)" \
  || notok "its status shows the computed boundary ('$ab', want '$want')"
n1=$("$SHALE" scan "file://$d/c1" --count); n2=$("$SHALE" scan "file://$d/c2" --count)
[ $((n1 + n2)) = 3000 ] && [ "$n1" -ge 1400 ] && [ "$n1" -le 1600 ] \
  && ok "its children hold half the keys each ($n1 + $n2)" || notok "its children hold half the keys each ($n1 + $n2)"
# A finalizer patch that fails delays the split: it does not start
# unguarded.  First a 429 (Retry-After: 1 s is honoured), then 500s until
# the fault is lifted.
GP=$API/guard-split
sed -e 's/orders-0-split/guard-split/' -e "s#file://$d/a\"#file://$d/a3\"#" -e "s#file://$d/b\"#file://$d/b3\"#" \
  "$d/split.yaml" > "$d/guard.yaml"
fault "{\"fail\": [{\"method\": \"PATCH\", \"path\": \"$GP\", \"status\": 429, \"count\": 1},
                   {\"method\": \"PATCH\", \"path\": \"$GP\", \"status\": 500, \"count\": 1000}]}"
K apply -f "$d/guard.yaml" >/dev/null
fin_failures() { [ "$(grep -c 'guard-split: cannot add the finalizer' "$d/agent.log")" -ge "$1" ]; }
until_true 60 fin_failures 3
[ -z "$(jp guard-split '{.status.phase}')" ] && [ ! -e "$d/a3" ] && [ ! -e "$d/b3" ] \
  && fin_failures 3 && no_finalizer guard-split && ok "a failing finalizer patch: the split waits (not started, no status)" \
  || { notok "a failing finalizer patch: the split waits (not started, no status)"; grep guard-split "$d/agent.log" | head -5; }
# The attempts, as the agent logged them: after the 429 the next try came
# no sooner than its Retry-After (1 s; the backoff alone would be 500 ms).
log_lines "$d/agent.log" 'guard-split: cannot add the finalizer' | head -2 | awk '{print $1}' > "$d/guard.t"
gap=$(( $(sed -n 2p "$d/guard.t") - $(sed -n 1p "$d/guard.t") ))
log_lines "$d/agent.log" 'guard-split: cannot add the finalizer' | head -1 | grep -q 429 \
  && [ "$gap" -ge 1000 ] && ok "429 Retry-After honoured (next try after $gap ms)" \
  || notok "429 Retry-After honoured (next try after $gap ms)"
fault '{"fail": []}'
K wait --for=condition=Complete shardsplit/guard-split --timeout=60s >/dev/null 2>&1 \
  && ok "the fault lifted: the split runs and completes" || notok "the fault lifted: the split runs and completes"
# The finalizer was set before the split was submitted (so before Fence).
fin_at=$(grep -n 'guard-split: finalizer shale.io/split added' "$d/agent.log" | head -1 | cut -d: -f1)
acc_at=$(grep -n 'ShardSplit shards/guard-split accepted' "$d/agent.log" | head -1 | cut -d: -f1)
[ -n "$fin_at" ] && [ -n "$acc_at" ] && [ "$fin_at" -lt "$acc_at" ] \
  && ok "the finalizer was set before the split was submitted" \
  || { notok "the finalizer was set before the split was submitted"; grep guard-split "$d/agent.log" | tail -5; }

# From here on the main agent (shard orders-0) has nothing to do while the
# test runs other agents for ~a minute: its idle budget is measured across.
until_true 30 no_finalizer guard-split
until_true 30 described guard-split 'Normal +Complete'
read -r it0 _ ix0 < <(counts)
idle2_t0=$(date +%s%N)

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
[ "$(jp orders-0-split '{.metadata.labels.team}')" = a ] && ok "JSON patch" || notok "JSON patch"
if HELM=$ROOT/tests/tools/helm/helm && [ -x "$HELM" ]; then
  printf 'shard: orders-0\nstore: {uri: "s3://bucket/orders-0"}\nexampleStatefulSet: {enabled: true}\n' > "$d/v.yaml"
  "$HELM" template rel "$ROOT/charts/shale-agent" -n shards -f "$d/v.yaml" > "$d/chart.yaml"
  K apply --dry-run=server -n shards -f "$d/chart.yaml" > "$d/dry.out" 2>&1 && grep -q 'statefulset.apps/rel-shale-agent-example created (server dry run)' "$d/dry.out" \
    && ok "the rendered chart applies with --dry-run=server" || { notok "the rendered chart applies with --dry-run=server"; cat "$d/dry.out"; }
  [ -z "$(K get configmaps -n shards -o name 2>/dev/null)" ] && ok "a dry run stores nothing" || notok "a dry run stores nothing"
else
  notok "helm is installed (scripts/deps.sh test)"
fi

# shard_agent SHARD: a parent store of 600 keys and $d/SHARD.yaml, an agent
# config for it (kubeconfig with the client certificate: another identity
# than the main agent's, whose requests are counted).
shard_agent() {
  local shard=$1 p=$d/$1
  "$SHALE" --wal-store "file://$p-wal" load "file://$p" --count 600 >/dev/null
  cat > "$p.yaml" <<YAML
shard: $shard
store: {uri: "file://$p", walUri: "file://$p-wal"}
sources: {local: {enabled: false}, http: {enabled: false},
          kubernetes: {enabled: true, kubeconfig: "$d/cert-kubeconfig", namespace: shards}}
logLevel: debug
YAML
}
# split_yaml SHARD NAME X Y: a ShardSplit of SHARD into stores X and Y.
split_yaml() {
  cat <<YAML
apiVersion: shale.io/v1alpha1
kind: ShardSplit
metadata: {name: $2}
spec:
  parent: {shard: $1}
  children:
    - {name: cx, store: "file://$3", range: {start: "", end: "key0000000300"}}
    - {name: cy, store: "file://$4", range: {start: "key0000000300", end: ""}}
YAML
}

# Deleting a ShardSplit in the middle of a split: before the WAL wipe it
# aborts, after it the split finishes; either way the finalizer goes last.
del_case() {  # del_case SHARD FAILPOINT WANT_PHASE
  local shard=$1 fp=$2 want=$3 p=$d/$1
  shard_agent "$shard"
  split_yaml "$shard" "$shard-split" "$p-x" "$p-y" > "$p-split.yaml"
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
      || { notok "deleted after the wipe: the split finished"; cat "$p.st1"; echo; cat "$p.log1" "$p.log2" | tail -n 8; }
  else
    grep -q 'Failed' "$p.st1" && notok "the split was accepted before the delete ($(cat "$p.st1"))"
    # The child store holds no object: the pre-flight beside Fence may
    # have claimed it (its directory made), and the abort released the
    # claim (h/preflight; before, nothing reached a child before the wipe).
    # The kill at FullFlush.before may land while a claim is being written:
    # the file store's temporary file (.tmp-*, never linked) is garbage,
    # not an object, and is not counted.
    [ "$("$SHALE" --wal-store "file://$p-wal" scan "file://$p" --count 2>/dev/null)" = 600 ] && \
      [ -z "$(find "$p-y" -type f ! -name '.tmp-*' 2>/dev/null)" ] \
      && ok "deleted before the wipe: aborted, the parent keeps its 600 keys" \
      || notok "deleted before the wipe: aborted, the parent keeps its 600 keys"
  fi
}
del_case del-early FullFlush.before Aborted
del_case del-late Clone.before Complete

# A split refused with Conflict (its shard is mid-split) stays refused when
# the first one ends; deleted and created again under the same name (a new
# uid) it runs.  A finished split's object re-created gets its status.
p=$d/busy
shard_agent busy
split_yaml busy busy-split "$p-x" "$p-y" > "$p-split.yaml"
split_yaml busy busy-other "$p-x2" "$p-y2" > "$p-other.yaml"
K apply -f "$p-split.yaml" >/dev/null
SHALE_FAILPOINTS=FullFlush.before timeout 60 "$AGENT" --config "$p.yaml" 2>"$p.log1"   # dies mid-split
K apply -f "$p-other.yaml" >/dev/null
"$AGENT" --config "$p.yaml" 2>"$p.log2" &
AGENT2_PID=$!
K wait --for=condition=Complete shardsplit/busy-split --timeout=60s >/dev/null 2>&1 \
  && ok "the interrupted split resumes and completes" || notok "the interrupted split resumes and completes"
[ "$(jp busy-other '{.status.reason}')" = Conflict ] && jp busy-other '{.status.message}' | grep -q busy-split \
  && ok "a second split of a busy shard: refused with Conflict naming the first" \
  || { notok "a second split of a busy shard: refused with Conflict naming the first"; jp busy-other '{.status}'; }
K label ss busy-other touched=yes >/dev/null
other_rv=$(jp busy-other '{.metadata.resourceVersion}')
# A barrier: an invalid request applied after the label; once it is
# refused, the worker has long handled busy-other's MODIFIED event.
split_yaml busy busy-bad "$p-x3" "$p-x3" > "$p-bad.yaml"
K apply -f "$p-bad.yaml" >/dev/null
K wait --for=condition=Failed shardsplit/busy-bad --timeout=30s >/dev/null 2>&1
[ "$(jp busy-other '{.metadata.resourceVersion}')" = "$other_rv" ] && [ ! -e "$p-x2" ] \
  && [ "$(jp busy-other '{.status.phase}')" = Failed ] \
  && ok "refused with Conflict: never runs by itself once the shard is free" \
  || notok "refused with Conflict: never runs by itself once the shard is free"
K delete ss busy-other --timeout=30s >/dev/null
K apply -f "$p-other.yaml" >/dev/null
K wait --for=condition=Complete shardsplit/busy-other --timeout=60s >/dev/null 2>&1 \
  && [ "$("$SHALE" scan "file://$p-y2" --count 2>/dev/null)" = 300 ] \
  && ok "re-created under the same name (new uid): it runs" || { notok "re-created under the same name (new uid): it runs"; tail -5 "$p.log2"; }
K delete ss busy-split --timeout=30s >/dev/null
K apply -f "$p-split.yaml" >/dev/null
K wait --for=condition=Complete shardsplit/busy-split --timeout=30s >/dev/null 2>&1 \
  && ok "a finished split's object re-created: it gets the journaled status" \
  || notok "a finished split's object re-created: it gets the journaled status"
kill $AGENT2_PID; wait $AGENT2_PID 2>/dev/null
AGENT2_PID=

read -r it1 _ ix1 < <(counts)
idle2_s=$(( ($(date +%s%N) - idle2_t0) / 1000000000 ))
echo "# budget: main agent idle for $idle2_s s: $((it1 - it0)) requests, $((ix1 - ix0)) of them watch renewals"
[ $(( (it1 - it0) - (ix1 - ix0) )) -eq 0 ] && [ $((ix1 - ix0)) -le $(( idle2_s / 60 + 1 )) ] \
  && ok "budget: idle for $idle2_s s, nothing but $((ix1 - ix0)) watch renewals (server ends watches after 60 s)" \
  || notok "budget: idle for $idle2_s s, nothing but the watch ($((it1 - it0)) requests, $((ix1 - ix0)) watches)"
check "kubectl delete (nothing holds the object)" K delete ss orders-0-split --timeout=30s
K get ss orders-0-split >/dev/null 2>&1 && notok "deleted object gone" || ok "deleted object gone"
curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" \
  "https://127.0.0.1:$PORT$API" | grep -q 401 \
  && ok "wrong token: 401" || notok "wrong token: 401"
! grep -q "$(cat "$d/token")" "$d/agent.log" && ok "token never logged" || notok "token never logged"
! grep -q "$old" "$d/agent.log" && ok "the rotated-out token never logged" || notok "the rotated-out token never logged"
finish
