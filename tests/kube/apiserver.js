// apiserver.js -- a Kubernetes API server for tests that refuses what
// kube-apiserver refuses, faithful enough that real kubectl (apply, get,
// wait, describe, explain, delete, patch) and shale-agent's Kubernetes
// source work against it.  Node + ajv (tests/tools/node_modules); 127.0.0.1.
//
//   node apiserver.js --tls-dir D [--port 0] [--client-ca CA.pem]
//        [--admin-token-file F] [--token-file F]          (F: an admin token)
//        [--sa-token NS:NAME=F]... [--user-token USER=F]...
//        [--rate-limit QPS:BURST] [--ipv6 (listen on ::1)]  -> "LISTENING <port>"
// D holds cert.pem and key.pem (kubectl sends bearer tokens only over TLS).
// Token files are re-read on every request (rotation).  Admin identities are
// in group system:masters; every other identity gets only what the stored
// Roles/RoleBindings/ClusterRoles/ClusterRoleBindings grant (rbac.js).
//
// What it enforces (docs/kubernetes.md "How it is tested" lists where it
// still differs from kube-apiserver):
// - custom resources: the CRD's structural schema -- unknown fields pruned
//   (fieldValidation=Strict: 400 naming them), defaults applied, the object
//   validated by ajv on every create/update/patch incl. status: 422 Invalid
//   with details.causes; CRDs with non-structural schemas are refused;
// - RBAC (403 Forbidden worded as the real one), 401 without identity,
//   rate limits per identity (429 + Retry-After);
// - namespaces must exist for creates (404), names are DNS subdomains;
// - generation bumps on changes outside metadata/status, also when a delete
//   of an object with finalizers sets deletionTimestamp; no new finalizers
//   on an object being deleted; no-op writes change nothing;
// - watches: JSON lines, bookmarks, in-stream ERROR 410 Expired when the
//   resourceVersion is older than the kept history (compaction);
// - core/v1 events and events.k8s.io/v1 events as two views of one store,
//   with field selectors (involvedObject.name/uid/..., as kubectl describe);
// - /openapi/v3 with the CRD's schema (kubectl explain) and fieldValidation.
// Test-only endpoints (no authentication): POST /__test/faults (below),
// GET /__test/dump, GET /debug/requests (counts by identity and verb),
// POST /debug/requests/reset.
'use strict';
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const crypto = require('node:crypto');
const schema = require('./schema.js');
const rbac = require('./rbac.js');

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const opts = n => args.flatMap((a, i) => a === n ? [args[i + 1]] : []);
const HISTORY = 1000;
const admin = { groups: ['system:masters'] };
const auth = { clientCa: opt('--client-ca'), tokens: [] };
for (const f of [...opts('--admin-token-file'), ...opts('--token-file')])
  auth.tokens.push({ file: f, user: 'kubernetes-admin', ...admin });
for (const s of opts('--sa-token')) {
  const [who, file] = s.split('='); const [ns, name] = who.split(':');
  auth.tokens.push({ file, ...rbac.serviceAccount(ns, name) });
}
for (const s of opts('--user-token')) { const [user, file] = s.split('='); auth.tokens.push({ file, user, groups: [] }); }

// group/version -> resource -> [kind, namespaced, crdVersion, crdNames]
const builtin = {
  'v1': { namespaces: ['Namespace', false], serviceaccounts: ['ServiceAccount', true],
          configmaps: ['ConfigMap', true], secrets: ['Secret', true], services: ['Service', true],
          pods: ['Pod', true], events: ['Event', true] },
  'rbac.authorization.k8s.io/v1': { roles: ['Role', true], rolebindings: ['RoleBinding', true],
          clusterroles: ['ClusterRole', false], clusterrolebindings: ['ClusterRoleBinding', false] },
  'apiextensions.k8s.io/v1': { customresourcedefinitions: ['CustomResourceDefinition', false] },
  'events.k8s.io/v1': { events: ['Event', true] },
  'apps/v1': { statefulsets: ['StatefulSet', true], deployments: ['Deployment', true] },
  'networking.k8s.io/v1': { networkpolicies: ['NetworkPolicy', true] },
};
let api = builtin;
const store = new Map();      // "gv/resource/ns/name" -> object (events stored as core/v1)
let rv = 1;
let history = [];             // {rv, gv, resource, type, object}
let compactedRv = 0;          // watches from below this get ERROR 410 (events after it are kept)
const watchers = new Set();   // {gv, resource, ns, match(obj), out(obj), res}
// Injected API faults (POST /__test/faults, test-only):
// {"dropWatches": true} ends every open watch now; {"gone": N} answers the
// next N watches with an in-stream ERROR 410; {"compact": true} forgets the
// event history (watches from an older resourceVersion get ERROR 410);
// {"status429": N}, {"status500": N} answer the next N API requests so;
// {"delayMs": M} delays every answer; {"rateLimit": {"qps": Q, "burst": B,
// "user": U (optional: only U)}} or {"rateLimit": null}.
const faults = { gone: 0, status429: 0, status500: 0, delayMs: 0 };
let rateLimit = null;
{ const r = opt('--rate-limit'); if (r) { const [q, b] = r.split(':'); rateLimit = { qps: +q, burst: +(b || q) }; } }
const buckets = new Map();    // user -> {tokens, at}
const snapshots = new Map();  // list continue token -> {items, rv, at}
const counts = new Map();     // user -> {total, writes, <verb>: n, byResource: {}}
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
for (const n of ['default', 'kube-system', 'kube-public'])
  store.set(`v1/namespaces//${n}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n,
    uid: crypto.randomUUID(), resourceVersion: '1', creationTimestamp: now() }, status: { phase: 'Active' } });

function statusBody(code, reason, message, details) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code };
}
function send(res, code, obj, headers = {}) {
  res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(obj));
}
const status = (res, code, reason, message, details) => send(res, code, statusBody(code, reason, message, details));
function notFound(res, group, resource, name) {
  return status(res, 404, 'NotFound', `${group ? resource + '.' + group : resource} "${name}" not found`,
    { name, group: group || undefined, kind: resource });
}
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = (target && typeof target === 'object' && !Array.isArray(target)) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]; else out[k] = mergePatch(out[k], v);
  }
  return out;
}
function jsonPatch(doc, ops) {
  const out = JSON.parse(JSON.stringify(doc));
  for (const op of ops) {
    const parts = op.path.split('/').slice(1).map(p => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    let parent = out;
    for (const p of parts) { if (parent[p] === undefined) return new Error(`path ${op.path} not found`); parent = parent[p]; }
    if (op.op === 'test') { if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) return new Error(`test of ${op.path} failed`); continue; }
    if (op.op === 'remove') { if (Array.isArray(parent)) parent.splice(+last, 1); else delete parent[last]; continue; }
    if (op.op === 'add' && Array.isArray(parent)) { parent.splice(last === '-' ? parent.length : +last, 0, op.value); continue; }
    if (op.op === 'add' || op.op === 'replace') { parent[last] = op.value; continue; }
    return new Error(`unsupported op ${op.op}`);
  }
  return out;
}
function labelMatch(sel, obj) {
  if (!sel) return true;
  const labels = (obj.metadata && obj.metadata.labels) || {};
  return sel.split(',').every(term => {
    let m;
    if ((m = /^([^!=]+)!=(.*)$/.exec(term))) return labels[m[1]] !== m[2];
    if ((m = /^([^=]+)==?(.*)$/.exec(term))) return labels[m[1]] === m[2];
    if (term.startsWith('!')) return !(term.slice(1) in labels);
    return term in labels;
  });
}
// Field selectors: the fields kube-apiserver supports for the resource; any
// other is refused (400), as the real one does.
const eventFields = ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name',
  'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion',
  'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'];
function fieldSelector(sel, resource) {
  if (!sel) return { match: () => true };
  const terms = [];
  for (const t of sel.split(',')) {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(t);
    if (!m) return { error: `invalid field selector: '${t}'` };
    const [, k, op, v] = m;
    const ok = k === 'metadata.name' || k === 'metadata.namespace' || (resource === 'events' &&
      (eventFields.includes(k) || /^regarding\./.test(k)));
    if (!ok) return { error: `field label not supported: ${k}` };
    terms.push([k.replace(/^regarding\./, 'involvedObject.'), op, v]);
  }
  const get = (o, k) => k === 'source' ? (o.source && o.source.component) || '' :
    k === 'reportingComponent' ? o.reportingComponent || '' :
    String(k.split('.').reduce((a, p) => a == null ? a : a[p], o) ?? '');
  return { match: o => terms.every(([k, op, v]) => op === '!=' ? get(o, k) !== v : get(o, k) === v) };
}
// The event a watcher with selector `match` sees for a change (prev: the
// object before a MODIFIED): as the watch cache does, an object that starts
// matching arrives as ADDED and one that stops matching as DELETED.
function seen(type, obj, prev, match) {
  if (type !== 'MODIFIED') return match(obj) ? type : null;
  const was = !!prev && match(prev), is = match(obj);
  return was && is ? 'MODIFIED' : is ? 'ADDED' : was ? 'DELETED' : null;
}
function record(type, obj, gv, resource, prev) {
  history.push({ rv: +obj.metadata.resourceVersion, gv, resource, type, object: obj, prev });
  if (history.length > HISTORY) compactedRv = history.shift().rv;   // events after it are kept
  for (const w of watchers) {
    if (w.gv !== gv || w.resource !== resource) continue;
    if (w.ns && obj.metadata.namespace !== w.ns) continue;
    const t = seen(type, obj, prev, w.match);
    if (t) w.res.write(JSON.stringify({ type: t, object: w.out(obj) }) + '\n');
  }
}
// CRDs registered through the API become served resources.
const compiled = new Map();   // crd uid/rv/version -> compiled schema
function crdResources() {
  api = { ...builtin };
  for (const [k, o] of store) {
    if (!k.startsWith('apiextensions.k8s.io/v1/customresourcedefinitions/')) continue;
    for (const v of o.spec.versions || []) {
      if (v.served === false) continue;
      const gv = `${o.spec.group}/${v.name}`;
      api[gv] = { ...(api[gv] || {}) };
      api[gv][o.spec.names.plural] = [o.spec.names.kind, o.spec.scope === 'Namespaced', v, o.spec.names,
        `${o.metadata.uid}/${o.metadata.resourceVersion}/${v.name}`];
    }
  }
}
function crdSchema(def) {
  if (!def[2] || !def[2].schema) return null;
  if (!compiled.has(def[4])) compiled.set(def[4], schema.compile(def[2].schema.openAPIV3Schema));
  return compiled.get(def[4]);
}
function table(items, def, resource) {
  const cols = [{ name: 'Name', type: 'string', format: 'name' }];
  const age = t => { const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000 | 0); return s < 120 ? s + 's' : (s / 60 | 0) + 'm'; };
  if (resource === 'events')   // kubectl get events: what kube-apiserver prints
    return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(rv) },
      columnDefinitions: ['Last Seen', 'Type', 'Reason', 'Object', 'Message'].map(n => ({ name: n, type: 'string', format: '' })),
      rows: items.map(o => { const io = o.involvedObject || {}, t = o.lastTimestamp || o.eventTime || o.metadata.creationTimestamp;
        return { cells: [t ? age(t) : '<unknown>', o.type || '', o.reason || '', `${(io.kind || '').toLowerCase()}/${io.name || ''}`, o.message || ''],
          object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } }; }) };
  const extra = (def && def[2] && def[2].additionalPrinterColumns) || [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }];
  for (const c of extra) cols.push({ name: c.name, type: c.type, format: '' });
  const get = (o, p) => p.split('.').filter(Boolean).reduce((a, x) => a == null ? a : a[x], o);
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(rv) },
    columnDefinitions: cols,
    rows: items.map(o => ({ cells: [o.metadata.name, ...extra.map(c => {
      const v = get(o, c.jsonPath); return c.type === 'date' ? (v ? age(v) : '<unknown>') : (v ?? '');
    })], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })) };
}

// events.k8s.io/v1 <-> core/v1 Event: one store, two views (the field
// mapping of k8s.io/kubernetes/pkg/apis/events/v1 conversion).
const evPairs = [['regarding', 'involvedObject'], ['note', 'message'], ['reportingController', 'reportingComponent'],
  ['deprecatedSource', 'source'], ['deprecatedFirstTimestamp', 'firstTimestamp'],
  ['deprecatedLastTimestamp', 'lastTimestamp'], ['deprecatedCount', 'count']];
function eventToCore(e) {
  const o = { ...e, apiVersion: 'v1' };
  for (const [a, b] of evPairs) { delete o[a]; if (e[a] !== undefined) o[b] = e[a]; }
  return o;
}
function eventFromCore(e) {
  const o = { ...e, apiVersion: 'events.k8s.io/v1' };
  for (const [a, b] of evPairs) { delete o[b]; if (e[b] !== undefined) o[a] = e[b]; }
  return o;
}
// kube-apiserver's ValidateEvent (the parts that refuse real requests).
function eventCauses(e, ns, viaEventsApi) {
  const c = [], io = e.involvedObject || {};
  const need = (f, v, max) => { if (!v) c.push({ reason: 'FieldValueRequired', field: f, message: 'Required value' });
    else if (max && v.length > max) c.push({ reason: 'FieldValueTooLong', field: f, message: `Too long: may not be more than ${max} bytes` }); };
  const f = a => viaEventsApi ? (evPairs.find(p => p[1] === a) || [a])[0] : a;
  // An event lives in its object's namespace (or "default" for a
  // cluster-scoped object).
  if (io.namespace ? io.namespace !== ns : ns !== 'default')
    c.push({ reason: 'FieldValueInvalid', field: `${f('involvedObject')}.namespace`, message: `Invalid value: "${io.namespace || ""}": does not match event.namespace` });
  if (e.type && e.type !== 'Normal' && e.type !== 'Warning')
    c.push({ reason: 'FieldValueNotSupported', field: 'type', message: `Unsupported value: "${e.type}": supported values: "Normal", "Warning"` });
  if (e.eventTime || viaEventsApi) {
    need('eventTime', e.eventTime); need(f('reportingComponent'), e.reportingComponent); need('reportingInstance', e.reportingInstance, 128);
    need('action', e.action, 128); need('reason', e.reason, 128);
    if (!e.type) need('type', e.type);
    if (viaEventsApi && e.message && e.message.length > 1024) c.push({ reason: 'FieldValueTooLong', field: 'note', message: 'Too long: may not be more than 1024 bytes' });
  }
  return c;
}

const metaKeys = new Set(['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields', 'selfLink']);
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
function nameCauses(name) {
  if (!name) return [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }];
  if (name.length > 253 || !dnsSubdomain.test(name))
    return [{ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')` }];
  return [];
}
// Key order does not make two objects differ.
const canon = v => Array.isArray(v) ? v.map(canon) : v && typeof v === 'object'
  ? Object.fromEntries(Object.keys(v).sort().map(k => [k, canon(v[k])])) : v;
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));
const withoutMetaStatus = o => { const { metadata, status: s, ...rest } = o; return rest; };

// Prune, default and validate an object about to be stored: -> {obj} or
// {code, body}.  cur: the stored object on updates.
function admit(obj, cur, ctx) {
  const { def, group, kind, resource, ns, q } = ctx;
  obj.metadata = Object.fromEntries(Object.entries(obj.metadata || {}).filter(([k]) => metaKeys.has(k)));
  const sch = crdSchema(def);
  if (sch) {
    const unknown = sch.unknownFields(obj);
    if (unknown.length && q.get('fieldValidation') === 'Strict')
      return { code: 400, body: statusBody(400, 'BadRequest', `${kind} in version "${def[2].name}" cannot be handled as a ${kind}: strict decoding error: ${unknown.map(u => `unknown field "${u}"`).join(', ')}`) };
    obj = sch.applyDefaults(sch.prune(obj));
  }
  let causes = cur ? [] : nameCauses(obj.metadata.name);
  if (sch) causes = causes.concat(sch.validate(obj));
  if (resource === 'events') causes = causes.concat(eventCauses(obj, ns, ctx.viaEventsApi));
  if (resource === 'customresourcedefinitions' && obj.spec)
    (obj.spec.versions || []).forEach((v, i) => { if (v.schema && v.schema.openAPIV3Schema)
      causes = causes.concat(schema.structuralErrors(v.schema.openAPIV3Schema, `spec.versions[${i}].schema.openAPIV3Schema`)); });
  if (cur && cur.metadata.deletionTimestamp) {
    const added = (obj.metadata.finalizers || []).filter(f => !(cur.metadata.finalizers || []).includes(f));
    if (added.length) causes.push({ reason: 'FieldValueForbidden', field: 'metadata.finalizers',
      message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map(f => JSON.stringify(f)).join(', ')}}` });
  }
  if (causes.length) return { code: 422, body: schema.invalidStatus(group, kind, obj.metadata.name || '', causes) };
  return { obj };
}

function verbOf(method, name, q) {
  if (method === 'GET') return name ? 'get' : (q.get('watch') === '1' || q.get('watch') === 'true') ? 'watch' : 'list';
  return { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' }[method] || method.toLowerCase();
}
function count(user, verb, what) {
  const c = counts.get(user) || { total: 0, writes: 0, byResource: {} };
  c.total++; c[verb] = (c[verb] || 0) + 1;
  if (['create', 'update', 'patch', 'delete', 'deletecollection'].includes(verb)) c.writes++;
  const k = `${verb} ${what}`; c.byResource[k] = (c.byResource[k] || 0) + 1;
  counts.set(user, c);
}
function limited(user) {
  if (!rateLimit || (rateLimit.user && rateLimit.user !== user)) return false;
  const t = Date.now(), b = buckets.get(user) || { tokens: rateLimit.burst, at: t };
  b.tokens = Math.min(rateLimit.burst, b.tokens + (t - b.at) / 1000 * rateLimit.qps); b.at = t;
  buckets.set(user, b);
  if (b.tokens < 1) return true;
  b.tokens -= 1; return false;
}
const rbacView = {
  role: (ns, n) => store.get(`rbac.authorization.k8s.io/v1/roles/${ns}/${n}`),
  clusterRole: n => store.get(`rbac.authorization.k8s.io/v1/clusterroles//${n}`),
  roleBindings: ns => [...store.entries()].filter(([k]) => k.startsWith(`rbac.authorization.k8s.io/v1/rolebindings/${ns}/`)).map(([, o]) => o),
  clusterRoleBindings: () => [...store.entries()].filter(([k]) => k.startsWith('rbac.authorization.k8s.io/v1/clusterrolebindings/')).map(([, o]) => o),
};
function openapiRoot() {
  const paths = {};
  for (const gv of Object.keys(api)) {
    const p = gv.includes('/') ? `apis/${gv}` : `api/${gv}`;
    const hash = crypto.createHash('sha256').update(JSON.stringify(schema.openapiV3Doc(gv, api[gv]))).digest('hex').slice(0, 32);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}

function handle(req, res, body) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname, q = url.searchParams;
  if (p === '/__test/dump') return send(res, 200, [...store.values()]);
  if (p === '/__test/faults' && req.method === 'POST') {
    const f = JSON.parse(body || '{}');
    if (f.dropWatches) for (const w of watchers) w.res.end();
    if (f.compact) { compactedRv = rv; history = []; }   // as etcd compacting at the current revision
    if ('rateLimit' in f) { rateLimit = f.rateLimit; buckets.clear(); }
    for (const k of ['gone', 'status429', 'status500', 'delayMs']) if (k in f) faults[k] = f[k];
    // {"fail": [{"method": "PATCH", "path": "/apis/...", "status": 500, "count": N}, ...]}:
    // requests with exactly that method and path get that status (429 with
    // Retry-After: 1), N times per rule, rules in order; [] clears them.
    if (f.fail) faults.fail = [].concat(f.fail);
    return send(res, 200, { ...faults, rateLimit, compactedRv });
  }
  if (p === '/debug/requests') {
    if (req.method === 'DELETE') counts.clear();
    return send(res, 200, Object.fromEntries(counts));
  }
  if (p === '/debug/requests/reset' && req.method === 'POST') { counts.clear(); return send(res, 200, {}); }

  const who = rbac.authenticate(req, auth);
  if (!who) return status(res, 401, 'Unauthorized', 'Unauthorized');
  crdResources();
  const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(?:\/namespaces\/([^/]+))?(?:\/([^/]+))?(?:\/([^/]+))?(?:\/(status))?$/.exec(p);
  let gv = m && (m[1] || m[2]), ns = m && m[3], resource = m && m[4], name = m && m[5];
  const sub = m && m[6];
  // /api/v1/namespaces/NAME is the namespace object itself
  if (m && gv === 'v1' && ns && resource === undefined) { resource = 'namespaces'; name = ns; ns = undefined; }
  if (m && gv === 'v1' && ns && resource === 'status' && !name) { resource = 'namespaces'; name = ns; ns = undefined; }
  const isResource = !!(m && resource);
  const group = isResource && gv.includes('/') ? gv.split('/')[0] : '';
  const verb = isResource ? verbOf(req.method, name, q) : req.method.toLowerCase();
  count(who.user, verb, isResource ? resource + (sub ? '/' + sub : '') : p);
  const rule = (faults.fail || []).find(f => f.count > 0 && f.method === req.method && f.path === p);
  if (rule) {
    rule.count--;
    if (rule.status === 429) return send(res, 429, statusBody(429, 'TooManyRequests', 'injected for ' + p, { retryAfterSeconds: 1 }), { 'Retry-After': '1' });
    return status(res, rule.status, 'InternalError', 'injected for ' + p);
  }
  if (p.startsWith('/api')) {
    if (faults.status429 > 0) { faults.status429--; return send(res, 429, statusBody(429, 'TooManyRequests', 'injected throttling', { retryAfterSeconds: 1 }), { 'Retry-After': '1' }); }
    if (faults.status500 > 0) { faults.status500--; return status(res, 500, 'InternalError', 'injected failure'); }
  }
  // kubectl create and auth can-i send protobuf bodies.
  if ((req.headers['content-type'] || '').startsWith('application/vnd.kubernetes.protobuf'))
    return status(res, 415, 'UnsupportedMediaType', 'the test API server speaks JSON only (kube-apiserver also accepts protobuf): use kubectl apply, not kubectl create');
  if (limited(who.user))
    return send(res, 429, statusBody(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: 1 }), { 'Retry-After': '1' });
  const attrs = isResource ? { verb, group, resource, subresource: sub, namespace: ns, name }
    : { verb: req.method === 'GET' ? 'get' : req.method.toLowerCase(), path: p };
  if (isResource && api[gv] && api[gv][resource] && !api[gv][resource][1]) attrs.namespace = undefined;
  if (!rbac.authorize(rbacView, who, attrs)) return send(res, 403, rbac.forbidden(who, attrs));

  if (p === '/version') return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.4', platform: 'linux/amd64' });
  if (p === '/healthz' || p === '/readyz' || p === '/livez') { res.writeHead(200); return res.end('ok'); }
  if (p === '/openapi/v2') { res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); return res.end(); }
  if (p === '/openapi/v3') return send(res, 200, openapiRoot());
  if (p.startsWith('/openapi/v3/')) {
    const gvp = p.slice('/openapi/v3/'.length).replace(/^apis?\//, '');
    if (!api[gvp]) return status(res, 404, 'NotFound', `no openapi for ${gvp}`);
    return send(res, 200, schema.openapiV3Doc(gvp, api[gvp]));
  }
  if (p === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
  if (p === '/apis') return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups:
    Object.keys(api).filter(g => g.includes('/')).map(g => { const [gg, v] = g.split('/');
      return { name: gg, versions: [{ groupVersion: g, version: v }], preferredVersion: { groupVersion: g, version: v } }; }) });
  if (!m) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
  if (!api[gv]) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
  if (!resource) return send(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv,
    resources: Object.entries(api[gv]).flatMap(([r, d]) => [
      { name: r, singularName: d[0].toLowerCase(), namespaced: d[1], kind: d[0],
        verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
        shortNames: d[3] && d[3].shortNames ? d[3].shortNames : undefined },
      ...((d[2] && d[2].subresources && d[2].subresources.status) || r === 'namespaces' ?
        [{ name: r + '/status', singularName: '', namespaced: d[1], kind: d[0], verbs: ['get', 'patch', 'update'] }] : [])]) });
  const def = api[gv][resource];
  if (!def) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
  const [kind, namespaced] = def;
  if (!namespaced) ns = undefined;
  const viaEventsApi = gv === 'events.k8s.io/v1';
  const sgv = resource === 'events' ? 'v1' : gv;            // where it is stored
  const out = viaEventsApi ? eventFromCore : (o => o);        // the view answered
  const prefix = `${sgv}/${resource}/${ns || ''}/`;
  const dry = q.get('dryRun') === 'All';   // validate and answer, store nothing
  const isCR = !!def[2];
  const ctx = { def, group, kind, resource, ns, q, viaEventsApi };
  const hasStatus = (def[2] && def[2].subresources && def[2].subresources.status) || resource === 'namespaces';
  if (sub && !hasStatus) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
  if (!name) {
    const fs_ = fieldSelector(q.get('fieldSelector'), resource);
    if (fs_.error) return status(res, 400, 'BadRequest', fs_.error);
    const match = o => labelMatch(q.get('labelSelector'), o) && fs_.match(o);
    const items = [...store.entries()].filter(([k]) => ns ? k.startsWith(prefix) : k.startsWith(`${sgv}/${resource}/`))
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)   // etcd's key order
      .map(([, o]) => o).filter(match);
    if (verb === 'watch') {
      const from = +(q.get('resourceVersion') || 0);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      const gone = faults.gone > 0 ? (faults.gone--, true) : false;
      if (gone || (from && from < compactedRv)) {
        // kube-apiserver answers 200 and the error as the stream's event.
        res.end(JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired',
          `too old resource version: ${from} (${compactedRv})`) }) + '\n');
        return;
      }
      const w = { gv: sgv, resource, ns, res, match, out };
      if (from) {
        for (const h of history) {
          if (h.rv <= from || h.gv !== sgv || h.resource !== resource || (ns && h.object.metadata.namespace !== ns)) continue;
          const t = seen(h.type, h.object, h.prev, match);
          if (t) res.write(JSON.stringify({ type: t, object: out(h.object) }) + '\n');
        }
      } else {
        for (const o of items) res.write(JSON.stringify({ type: 'ADDED', object: out(o) }) + '\n');
      }
      if (q.get('allowWatchBookmarks') === 'true')
        res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind, apiVersion: gv, metadata: { resourceVersion: String(rv) } } }) + '\n');
      watchers.add(w);
      const t = setTimeout(() => res.end(), 1000 * Math.min(+(q.get('timeoutSeconds') || 60), 60));
      // 'close' on the response: the client went away (req's fires as
      // soon as the request body has been read).
      res.on('close', () => { watchers.delete(w); clearTimeout(t); });
      return;
    }
    if (verb === 'list') {
      // Paging (limit/continue) over a snapshot taken by the first page, as
      // etcd serves later pages at the first page's revision.
      let page = items, listRv = rv;
      const meta = {};
      if (q.get('continue')) {
        const snap = snapshots.get(q.get('continue'));
        if (!snap || Date.now() - snap.at > 300000) return status(res, 410, 'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
        page = snap.items; listRv = snap.rv;
      }
      const limit = +(q.get('limit') || 0);
      if (limit > 0 && page.length > limit) {
        const token = crypto.randomBytes(12).toString('base64url');
        snapshots.set(token, { items: page.slice(limit), rv: listRv, at: Date.now() });
        meta.continue = token; meta.remainingItemCount = page.length - limit;
        page = page.slice(0, limit);
      }
      if ((req.headers['accept'] || '').includes('as=Table'))
        return send(res, 200, { ...table(page.map(out), def, resource), metadata: { resourceVersion: String(listRv), ...meta } });
      return send(res, 200, { kind: kind + 'List', apiVersion: gv, metadata: { resourceVersion: String(listRv), ...meta }, items: page.map(out) });
    }
    if (verb === 'create') {
      let obj; try { obj = JSON.parse(body); } catch (e) { return status(res, 400, 'BadRequest', 'bad JSON: ' + e.message); }
      if (!obj || typeof obj !== 'object') return status(res, 400, 'BadRequest', 'the body is not an object');
      obj.metadata = obj.metadata || {};
      if (viaEventsApi) obj = eventToCore(obj);
      if (obj.metadata.namespace && ns && obj.metadata.namespace !== ns)
        return status(res, 400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      if (ns && !store.has(`v1/namespaces//${ns}`)) return notFound(res, '', 'namespaces', ns);
      if (!obj.metadata.name && obj.metadata.generateName)
        obj.metadata.name = obj.metadata.generateName + crypto.randomBytes(3).toString('hex').slice(0, 5);
      const a = admit(obj, null, ctx);
      if (a.body) return send(res, a.code, a.body);
      obj = a.obj;
      const k = prefix + obj.metadata.name;
      if (store.has(k)) return status(res, 409, 'AlreadyExists', `${group ? resource + '.' + group : resource} "${obj.metadata.name}" already exists`,
        { name: obj.metadata.name, group: group || undefined, kind: resource });
      obj.metadata = { ...obj.metadata, namespace: ns, uid: crypto.randomUUID(), resourceVersion: String(rv + 1),
        generation: 1, creationTimestamp: now() };
      delete obj.metadata.deletionTimestamp;
      if (!ns) delete obj.metadata.namespace;
      if (isCR && hasStatus) delete obj.status;
      if (resource === 'namespaces') obj.status = { phase: 'Active' };
      if (dry) return send(res, 201, out(obj));
      rv++;
      store.set(k, obj);
      record('ADDED', obj, sgv, resource);
      return send(res, 201, out(obj));
    }
    return status(res, 405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }
  const key = prefix + name;
  const cur = store.get(key);
  if (!cur) return notFound(res, group, resource, name);
  if (verb === 'get') return send(res, 200, out(cur));
  if (verb === 'delete') {
    if (dry) return send(res, 200, out(cur));
    if ((cur.metadata.finalizers || []).length) {
      if (!cur.metadata.deletionTimestamp) {
        const next = JSON.parse(JSON.stringify(cur));
        next.metadata.deletionTimestamp = now();
        next.metadata.deletionGracePeriodSeconds = 0;
        next.metadata.generation = (cur.metadata.generation || 1) + 1;
        next.metadata.resourceVersion = String(++rv);
        store.set(key, next);
        record('MODIFIED', next, sgv, resource, cur);
        return send(res, 200, out(next));
      }
      return send(res, 200, out(cur));
    }
    store.delete(key);
    const gone = { ...cur, metadata: { ...cur.metadata, resourceVersion: String(++rv) } };
    record('DELETED', gone, sgv, resource);
    if (resource === 'namespaces')   // its contents go with it
      for (const [k, o] of [...store]) if (o.metadata.namespace === name) {
        store.delete(k); record('DELETED', { ...o, metadata: { ...o.metadata, resourceVersion: String(++rv) } }, k.split('/').slice(0, -3).join('/'), k.split('/').slice(-3)[0]);
      }
    if (isCR) return send(res, 200, out(gone));
    return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: group || undefined, kind: resource, uid: cur.metadata.uid } });
  }
  let next;
  const ctype = req.headers['content-type'] || '';
  try {
    const b = JSON.parse(body);
    if (verb === 'update') next = viaEventsApi ? eventToCore(b) : b;
    else if (verb === 'patch' && ctype.startsWith('application/json-patch+json')) {
      next = jsonPatch(out(cur), b);   // RFC 6902: add, replace, remove, test
      if (next instanceof Error) return status(res, 422, 'Invalid', next.message);
      if (viaEventsApi) next = eventToCore(next);
    } else if (verb === 'patch' && (ctype.startsWith('application/merge-patch+json') ||
                                    (!isCR && ctype.startsWith('application/strategic-merge-patch+json')))) {
      if (b.metadata && b.metadata.resourceVersion && b.metadata.resourceVersion !== cur.metadata.resourceVersion)
        return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${group ? resource + '.' + group : resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { name, group: group || undefined, kind: resource });
      next = mergePatch(out(cur), b);
      if (viaEventsApi) next = eventToCore(next);
    } else if (verb === 'patch') {
      return status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    } else return status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  } catch (e) { return status(res, 400, 'BadRequest', 'bad JSON body: ' + e.message); }
  if (!next || typeof next !== 'object') return status(res, 400, 'BadRequest', 'the body is not an object');
  next.metadata = next.metadata || {};
  if (verb === 'update' && isCR && !next.metadata.resourceVersion)
    return send(res, 422, schema.invalidStatus(group, kind, name, [{ reason: 'FieldValueInvalid', field: 'metadata.resourceVersion',
      message: 'Invalid value: 0x0: must be specified for an update' }]));
  if (verb === 'update' && next.metadata.resourceVersion && next.metadata.resourceVersion !== cur.metadata.resourceVersion)
    return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${group ? resource + '.' + group : resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: group || undefined, kind: resource });
  // The status subresource changes only status; the object itself never does.
  if (sub === 'status') next = { ...JSON.parse(JSON.stringify(cur)), status: next.status };
  else if (hasStatus) { if (cur.status === undefined) delete next.status; else next.status = cur.status; }
  next.metadata = { ...(sub === 'status' ? cur.metadata : next.metadata), name, uid: cur.metadata.uid,
    creationTimestamp: cur.metadata.creationTimestamp, resourceVersion: cur.metadata.resourceVersion,
    generation: cur.metadata.generation };
  if (ns) next.metadata.namespace = ns;
  if (cur.metadata.deletionTimestamp) {
    next.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
    next.metadata.deletionGracePeriodSeconds = cur.metadata.deletionGracePeriodSeconds;
  } else { delete next.metadata.deletionTimestamp; delete next.metadata.deletionGracePeriodSeconds; }
  const a = admit(next, cur, ctx);
  if (a.body) return send(res, a.code, a.body);
  next = a.obj;
  if (!same(withoutMetaStatus(next), withoutMetaStatus(cur))) next.metadata.generation = (cur.metadata.generation || 1) + 1;
  // A write that changes nothing stores nothing and sends no event.
  if (same(next, cur)) return send(res, 200, out(cur));
  if (dry) return send(res, 200, out(next));
  next.metadata.resourceVersion = String(++rv);
  if (next.metadata.deletionTimestamp && !(next.metadata.finalizers || []).length) {
    store.delete(key);
    record('DELETED', next, sgv, resource);
    return send(res, 200, out(next));
  }
  store.set(key, next);
  record('MODIFIED', next, sgv, resource, cur);
  return send(res, 200, out(next));
}

const tlsDir = opt('--tls-dir');
const serve = (req, res) => {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const run = () => {
      try { handle(req, res, Buffer.concat(chunks).toString()); }
      catch (e) { if (!res.headersSent) status(res, 500, 'InternalError', String(e && e.stack || e)); else res.end(); }
    };
    if (faults.delayMs && !req.url.startsWith('/__test') && !req.url.startsWith('/debug')) setTimeout(run, faults.delayMs);
    else run();
  });
};
const tlsOpts = tlsDir ? { cert: fs.readFileSync(tlsDir + '/cert.pem'), key: fs.readFileSync(tlsDir + '/key.pem'),
  ...(auth.clientCa ? { ca: fs.readFileSync(auth.clientCa), requestCert: true, rejectUnauthorized: false } : {}) } : null;
const mk = () => tlsDir ? https.createServer(tlsOpts, serve) : http.createServer(serve);
// --ipv6: also listen on [::1], on the same port (the in-cluster IPv6
// service host test); kubectl keeps using 127.0.0.1.
const server = mk();
server.listen(+opt('--port', '0'), '127.0.0.1', () => {
  const port = server.address().port;
  if (!args.includes('--ipv6')) return process.stdout.write(`LISTENING ${port}\n`);
  mk().listen(port, '::1', () => process.stdout.write(`LISTENING ${port}\n`));
});
process.on('SIGTERM', () => process.exit(0));
