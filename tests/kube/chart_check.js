// chart_check.js RENDERED.yaml RELEASE_NS NAME RBAC_MANIFEST VALUES.yaml...
// Parses what `helm template` rendered (the yaml npm package, not grep) and
// checks, for the values it was rendered with (the chart's values.yaml, then
// each -f file, merged as Helm merges them), each promise the chart makes
// (docs/kubernetes.md "Helm chart").  Prints "ok - ..." / "not ok - ..."
// lines; exits 1 if any failed.  Writes the agent config to NAME.agent.yaml
// beside RENDERED for `shale-agent --check-config`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const YAML = require(path.join(__dirname, '../tools/node_modules/yaml'));

const [file, releaseNs, name, rbacManifest, ...valueFiles] = process.argv.slice(2);
let fails = 0;
const check = (what, cond, detail) => {
  console.log(`${cond ? 'ok' : 'not ok'} - ${name}: ${what}${!cond && detail ? ' (' + detail + ')' : ''}`);
  if (!cond) fails++;
};
const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
check('every rendered document parses as YAML', docs.every(d => d.errors.length === 0),
  docs.flatMap(d => d.errors.map(String)).join('; '));
const objs = docs.map(d => d.toJS()).filter(Boolean);
const merge = (a, b) => (b && typeof b === 'object' && !Array.isArray(b) && a && typeof a === 'object' && !Array.isArray(a))
  ? Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map(k => [k, k in b ? merge(a[k], b[k]) : a[k]]))
  : b === undefined ? a : b;
// A parent chart's values hold this chart's under "shale-agent".
const v = valueFiles.map(f => YAML.parse(fs.readFileSync(f, 'utf8')) || {})
  .map(x => x['shale-agent'] && !x.shard ? x['shale-agent'] : x).reduce(merge, {});
const find = (kind, pred = () => true) => objs.filter(o => o.kind === kind && pred(o));
const one = kind => find(kind)[0];
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const http = v.sources.http;
const loopback = /^(127\.|::1$|localhost$)/.test(String(http.address));
const exposed = http.enabled && !loopback;
const watchNs = v.sources.kubernetes.namespace || releaseNs;

// The agent config, from the ConfigMap.
const cm = find('ConfigMap', o => o.data && o.data['agent.yaml'])[0];
check('a ConfigMap holds the agent config', !!cm);
if (!cm) process.exit(1);
const agentText = cm.data['agent.yaml'];
fs.writeFileSync(path.join(path.dirname(file), name + '.agent.yaml'), agentText);
const agent = YAML.parse(agentText);
check('the config serves the shard and store of the values', agent.shard === v.shard && agent.store.uri === v.store.uri);
check('no credential in the ConfigMap', !/AWS_SECRET|AWS_SESSION_TOKEN|secret_access|password/i.test(agentText) &&
  !/AKIA[0-9A-Z]{16}/.test(agentText));
check('the agent listens where the values say', agent.sources.http.listen === `${http.address}:${http.port}` &&
  agent.sources.http.enabled === http.enabled);
check('the agent watches the namespace of the values', agent.sources.kubernetes.namespace === watchNs);

// The pod: the example StatefulSet's, or the parent chart's workload.
const workloads = objs.filter(o => ['StatefulSet', 'Deployment'].includes(o.kind));
const pod = workloads.length ? workloads[0].spec.template : null;
if (pod) {
  const c = pod.spec.containers.find(x => x.name === 'shale-agent');
  check('the pod has the shale-agent sidecar', !!c);
  const psc = pod.spec.securityContext || {};
  const all = [...pod.spec.containers, ...(pod.spec.initContainers || [])];
  // Pod Security "restricted" (v1.32): every container non-root, no
  // escalation, drops ALL, RuntimeDefault seccomp (pod or container level).
  const bad = all.filter(x => { const s = x.securityContext || {};
    return !((s.runAsNonRoot ?? psc.runAsNonRoot) === true) || s.allowPrivilegeEscalation !== false ||
      !((s.capabilities || {}).drop || []).includes('ALL') || ((s.capabilities || {}).add || []).some(a => a !== 'NET_BIND_SERVICE') ||
      s.privileged === true || (((s.seccompProfile || psc.seccompProfile) || {}).type || '') !== 'RuntimeDefault' ||
      s.runAsUser === 0; });
  check('Pod Security restricted: non-root, no escalation, drop ALL, seccomp RuntimeDefault', bad.length === 0,
    bad.map(x => x.name).join(','));
  check('no host namespaces or hostPath volumes', !pod.spec.hostNetwork && !pod.spec.hostPID && !pod.spec.hostIPC &&
    !(pod.spec.volumes || []).some(x => x.hostPath));
  check('the sidecar sets seccompProfile RuntimeDefault itself (it lands in pods the chart does not write)',
    c.securityContext.seccompProfile && c.securityContext.seccompProfile.type === 'RuntimeDefault');
  check('read-only root filesystem', c.securityContext.readOnlyRootFilesystem === true);
  const ports = c.ports || [];
  const probes = [c.livenessProbe, c.readinessProbe].filter(Boolean);
  if (exposed) {
    check('liveness and readiness probes, each with a timeout', probes.length === 2 && probes.every(p => p.timeoutSeconds > 0));
    const target = p => { const port = p.httpGet.port; const decl = ports.find(x => x.name === port || x.containerPort === port);
      return decl && decl.containerPort; };
    check('the probes point at the port the API listens on', probes.every(p => target(p) === http.port));
  } else {
    check('no probes: the API is ' + (http.enabled ? 'on loopback, out of kubelet\'s reach' : 'off'), probes.length === 0);
  }
  check('no port declared for a disabled listener', http.enabled || ports.length === 0);
  const sha = crypto.createHash('sha256').update(agentText.replace(/\n$/, '')).digest('hex');
  check('the pod template carries the config checksum', ((pod.metadata || {}).annotations || {})['checksum/shale-agent-config'] === sha);
  const mounts = Object.fromEntries((c.volumeMounts || []).map(m => [m.mountPath, m.name]));
  const vols = Object.fromEntries((pod.spec.volumes || []).map(x => [x.name, x]));
  const volAt = p => { const dir = Object.keys(mounts).find(m => p.startsWith(m + '/')); return dir && vols[mounts[dir]]; };
  check('every mount has a volume (the WAL one aside, which the workload brings)',
    (c.volumeMounts || []).every(m => vols[m.name] || m.name === v.walVolume.name ||
      (workloads[0].spec.volumeClaimTemplates || []).some(t => t.metadata.name === m.name)));
  // Token: needed beyond loopback; the file the agent reads is a Secret's key.
  const tf = agent.sources.http.tokenFile;
  if (exposed) {
    const vol = tf && volAt(tf);
    const secretName = vol && vol.secret && vol.secret.secretName;
    check('beyond loopback the API needs a token from a Secret', !!secretName, `tokenFile ${tf}`);
    if (http.tokenSecret.name) check('the Secret is the one the values name', secretName === http.tokenSecret.name);
    else {
      const s = find('Secret', o => o.metadata.name === secretName)[0];
      check('the chart makes that Secret, with the token under its key', !!(s && s.data && s.data[http.tokenSecret.key] &&
        Buffer.from(s.data[http.tokenSecret.key], 'base64').length >= 32) && tf.endsWith('/' + http.tokenSecret.key));
    }
  }
  // S3 credentials: only from secretKeyRef; the session token too.
  const env = c.env || [];
  const aws = env.filter(e => e.name.startsWith('AWS_'));
  check('AWS_* variables come only from Secrets', aws.every(e => e.valueFrom && e.valueFrom.secretKeyRef && e.value === undefined));
  if (v.s3.credentialsSecret)
    check('the keys come from the credentials Secret', ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].every(n =>
      aws.some(e => e.name === n && e.valueFrom.secretKeyRef.name === v.s3.credentialsSecret)));
  check(v.s3.sessionTokenKey ? 'AWS_SESSION_TOKEN from the Secret\'s key' : 'no AWS_SESSION_TOKEN', v.s3.sessionTokenKey
    ? aws.some(e => e.name === 'AWS_SESSION_TOKEN' && e.valueFrom.secretKeyRef.key === v.s3.sessionTokenKey && e.valueFrom.secretKeyRef.name === v.s3.credentialsSecret)
    : !aws.some(e => e.name === 'AWS_SESSION_TOKEN'));
  const ca = v.s3.caBundle;
  if (ca.configMap || ca.secret) {
    const caf = agent.s3.caFile, vol = caf && volAt(caf);
    check('s3.caFile is the CA bundle\'s key, mounted from the ConfigMap/Secret named', !!vol && caf.endsWith('/' + ca.key) &&
      (ca.configMap ? vol.configMap && vol.configMap.name === ca.configMap : vol.secret && vol.secret.secretName === ca.secret));
  } else check('no s3.caFile without a CA bundle', !agent.s3 || agent.s3.caFile === undefined);
  check('the pod runs as the agent\'s ServiceAccount', pod.spec.serviceAccountName ===
    (v.serviceAccount.name || `${objs.find(o => o.kind === 'ConfigMap' && o === cm).metadata.name}`));
  // NetworkPolicy: only the named peers reach the API port.
  const nps = find('NetworkPolicy');
  if (exposed && http.networkPolicy.enabled) {
    const np = nps[0];
    check('a NetworkPolicy guards the API port', !!np);
    if (np) {
      const sel = np.spec.podSelector.matchLabels || {};
      check('it selects the shard pod', Object.entries(sel).every(([k, x]) => (pod.metadata.labels || {})[k] === x) && Object.keys(sel).length > 0);
      const covers = r => !r.ports || r.ports.some(p => (p.protocol || 'TCP') === 'TCP' &&
        (p.port === http.port || (p.endPort && p.port <= http.port && http.port <= p.endPort)));
      const admitting = np.spec.ingress.filter(covers);
      check('only the peers the values name are admitted to the API port', http.networkPolicy.from.length
        ? admitting.length === 1 && eq(admitting[0].from, http.networkPolicy.from) : admitting.length === 0,
        JSON.stringify(admitting));
      check('every other TCP port stays open', [1, http.port - 1, http.port + 1, 65535].filter(p => p >= 1 && p <= 65535 && p !== http.port)
        .every(p => np.spec.ingress.some(r => !r.from && r.ports.some(x => x.protocol === 'TCP' && x.port <= p && p <= (x.endPort || x.port)))));
    }
  } else check('no NetworkPolicy while the API stays in the pod', nps.length === 0);
}

// RBAC in the watched namespace, bound to the ServiceAccount in the release's.
const role = one('Role'), rb = one('RoleBinding');
if (v.sources.kubernetes.enabled && v.rbac.create) {
  check('Role and RoleBinding in the watched namespace', role && rb && role.metadata.namespace === watchNs && rb.metadata.namespace === watchNs,
    role && `${role.metadata.namespace} vs ${watchNs}`);
  const sa = rb && rb.subjects[0];
  check('the RoleBinding names the ServiceAccount in the release namespace', sa && sa.kind === 'ServiceAccount' && sa.namespace === releaseNs &&
    (!pod || sa.name === pod.spec.serviceAccountName));
  if (rbacManifest) {
    const m = YAML.parseAllDocuments(fs.readFileSync(rbacManifest, 'utf8')).map(d => d.toJS()).find(o => o && o.kind === 'Role');
    check('the chart\'s Role grants exactly what manifests/rbac.yaml grants', role && eq(role.rules, m.rules));
  }
} else check('no Role without the Kubernetes source', !role && !rb);
const sa = one('ServiceAccount');
if (v.serviceAccount.create) {
  const ann = (sa && sa.metadata.annotations) || {};
  check(v.s3.roleArn ? 'IRSA: the ServiceAccount carries eks.amazonaws.com/role-arn' : 'no IRSA annotation',
    v.s3.roleArn ? ann['eks.amazonaws.com/role-arn'] === v.s3.roleArn : !('eks.amazonaws.com/role-arn' in ann));
}
process.exit(fails ? 1 : 0);
