// apiserver.js -- a small Kubernetes API server for tests, faithful enough
// that real kubectl (apply, get, wait, delete, patch) and shale-agent's
// Kubernetes source work against it.  Node built-ins only; 127.0.0.1 only.
//
//   node apiserver.js --token-file F --tls-dir D [--port 0]  -> "LISTENING <port>"
// (D holds cert.pem and key.pem; kubectl sends bearer tokens only over TLS.)
//
// Serves: /version, legacy discovery (/api, /apis, /apis/G/V), an empty
// /openapi/v2 (kubectl apply then skips client-side validation), namespaced
// and cluster CRUD for the kinds below with resourceVersion, generation
// (bumped on spec changes only), uid and creationTimestamp, the status
// subresource, merge patches (strategic merge patches treated as merge),
// label and metadata.name field selectors, finalizers and
// deletionTimestamp, watches (JSON lines, bookmarks, 410 Gone for versions
// older than the kept history), Table answers for `kubectl get`, Status
// errors, and bearer-token auth (401) with the token re-read from its file.
'use strict';
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const crypto = require('node:crypto');

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const tokenFile = opt('--token-file');
const HISTORY = 1000;

// group/version -> resources: name -> {kind, namespaced, status}
const api = {
  'v1': { namespaces: ['Namespace', false], serviceaccounts: ['ServiceAccount', true],
          configmaps: ['ConfigMap', true], secrets: ['Secret', true], events: ['Event', true] },
  'rbac.authorization.k8s.io/v1': { roles: ['Role', true], rolebindings: ['RoleBinding', true] },
  'apiextensions.k8s.io/v1': { customresourcedefinitions: ['CustomResourceDefinition', false] },
  'events.k8s.io/v1': { events: ['Event', true] },
  'apps/v1': { statefulsets: ['StatefulSet', true], deployments: ['Deployment', true] },
};
const store = new Map();      // "gv/resource/ns/name" -> object
let rv = 1;
const history = [];           // {rv, key, type, object}
const watchers = new Set();   // {gv, resource, ns, match(obj), res}
// Injected API faults (POST /__test/faults, unauthenticated, test-only):
// {"dropWatches": true} ends every open watch now; {"gone": N} answers the
// next N watch requests with 410 Gone; {"status429": N}, {"status500": N}
// answer the next N API requests so; {"delayMs": M} delays every answer.
const faults = { gone: 0, status429: 0, status500: 0, delayMs: 0 };

function status(res, code, reason, message) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message, reason, code }));
}
function send(res, code, obj) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(obj));
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
function fieldMatch(sel, obj) {
  if (!sel) return true;
  return sel.split(',').every(t => {
    const [k, v] = t.split('=');
    if (k === 'metadata.name') return obj.metadata.name === v;
    if (k === 'metadata.namespace') return obj.metadata.namespace === v;
    if (k.startsWith('involvedObject.')) return (obj.involvedObject || {})[k.slice(15)] === v;
    return true;
  });
}
function record(type, key, obj, gv, resource) {
  history.push({ rv: +obj.metadata.resourceVersion, key, type, object: obj, gv, resource });
  if (history.length > HISTORY) history.shift();
  for (const w of watchers) {
    if (w.gv !== gv || w.resource !== resource) continue;
    if (w.ns && obj.metadata.namespace !== w.ns) continue;
    if (!w.match(obj)) continue;
    w.res.write(JSON.stringify({ type, object: obj }) + '\n');
  }
}
function crdResources() {
  // CRDs registered through the API become served resources.
  for (const [k, o] of store) {
    if (!k.startsWith('apiextensions.k8s.io/v1/customresourcedefinitions/')) continue;
    for (const v of o.spec.versions || []) {
      const gv = `${o.spec.group}/${v.name}`;
      api[gv] = api[gv] || {};
      api[gv][o.spec.names.plural] = [o.spec.names.kind, o.spec.scope === 'Namespaced', v,
        o.spec.names];
    }
  }
}
function table(items, def, gv, resource) {
  const cols = [{ name: 'Name', type: 'string', format: 'name' }];
  const extra = (def && def[2] && def[2].additionalPrinterColumns) || [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }];
  for (const c of extra) cols.push({ name: c.name, type: c.type, format: '' });
  const get = (o, path) => path.split('.').filter(Boolean).reduce((a, p) => a == null ? a : a[p], o);
  const age = t => { const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000 | 0); return s < 120 ? s + 's' : (s / 60 | 0) + 'm'; };
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(rv) },
    columnDefinitions: cols,
    rows: items.map(o => ({ cells: [o.metadata.name, ...extra.map(c => {
      const v = get(o, c.jsonPath); return c.type === 'date' ? (v ? age(v) : '<unknown>') : (v ?? '');
    })], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })) };
}

// Requests per client, for API budgets: GET /debug/requests ->
// {"shale-agent": {"total": n, "writes": n, "watch": n, "GET": n, ...},
//  "ua:<whole User-Agent>": {...}, ...} (the first key: the User-Agent up to
// its first '/'); ?log=1 adds the last 2000 requests (test-only, no auth).
const counts = {}; const reqLog = [];
function countRequest(req, res, p) {
  if (p.startsWith('/__test') || p.startsWith('/debug/')) return;
  const who = (req.headers['user-agent'] || 'unknown').split('/')[0].split(' ')[0];
  for (const k of [who, 'ua:' + (req.headers['user-agent'] || '')]) {
    const c = counts[k] = counts[k] || { total: 0, writes: 0, watch: 0 };
    c.total++; c[req.method] = (c[req.method] || 0) + 1;
    if (!['GET', 'HEAD'].includes(req.method)) c.writes++;
    if (/[?&]watch=(1|true)/.test(req.url)) c.watch++;
  }
  const e = { who, ua: req.headers['user-agent'] || '', method: req.method, url: req.url, code: 0, t: Date.now() };
  reqLog.push(e); if (reqLog.length > 2000) reqLog.shift();
  res.on('finish', () => { e.code = res.statusCode; });
}
function handle(req, res, body) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  countRequest(req, res, p);
  if (p === '/debug/requests') return send(res, 200, url.searchParams.get('log') ? { counts, log: reqLog } : counts);
  if (p === '/version') return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.4', platform: 'linux/amd64' });
  if (p === '/healthz' || p === '/readyz') { res.writeHead(200); return res.end('ok'); }
  if (p === '/__test/dump') return send(res, 200, [...store.values()]);
  if (p === '/__test/faults' && req.method === 'POST') {
    const f = JSON.parse(body || '{}');
    if (f.dropWatches) for (const w of watchers) w.res.end();
    for (const k of ['gone', 'status429', 'status500', 'delayMs']) if (k in f) faults[k] = f[k];
    // {"fail": [{"method": "PATCH", "path": "/apis/...", "status": 500, "count": N}, ...]}:
    // requests with exactly that method and path get that status (429 with
    // Retry-After: 1), N times per rule, rules in order; [] clears them.
    if (f.fail) faults.fail = [].concat(f.fail);
    return send(res, 200, faults);
  }
  const rule = (faults.fail || []).find(f => f.count > 0 && f.method === req.method && f.path === p);
  if (rule) {
    const f = rule; f.count--;
    if (f.status === 429) res.setHeader('Retry-After', '1');
    return status(res, f.status, f.status === 429 ? 'TooManyRequests' : 'InternalError', 'injected for ' + f.path);
  }
  if (p.startsWith('/apis/') || p.startsWith('/api/')) {
    if (faults.status429 > 0) { faults.status429--; res.setHeader('Retry-After', '1'); return status(res, 429, 'TooManyRequests', 'injected throttling'); }
    if (faults.status500 > 0) { faults.status500--; return status(res, 500, 'InternalError', 'injected failure'); }
  }
  const token = tokenFile ? fs.readFileSync(tokenFile, 'utf8').trim() : null;
  const certOk = clientCa && req.socket.authorized === true;
  if (token && !certOk && req.headers['authorization'] !== `Bearer ${token}`)
    return status(res, 401, 'Unauthorized', 'Unauthorized');
  if (p === '/openapi/v2') { res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); return res.end(); }
  if (p === '/openapi/v3') return status(res, 404, 'NotFound', 'no openapi v3');
  crdResources();
  if (p === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
  if (p === '/apis') return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups:
    Object.keys(api).filter(gv => gv.includes('/')).map(gv => { const [g, v] = gv.split('/');
      return { name: g, versions: [{ groupVersion: gv, version: v }], preferredVersion: { groupVersion: gv, version: v } }; }) });
  let m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(?:\/namespaces\/([^/]+))?(?:\/([^/]+))?(?:\/([^/]+))?(?:\/(status))?$/.exec(p);
  if (!m) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
  const gv = m[1] || m[2];
  let ns = m[3], resource = m[4], name = m[5], sub = m[6];
  if (!api[gv]) return status(res, 404, 'NotFound', `no group version ${gv}`);
  if (!resource) return send(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv,
    resources: Object.entries(api[gv]).flatMap(([r, d]) => [
      { name: r, singularName: d[0].toLowerCase(), namespaced: d[1], kind: d[0],
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        shortNames: d[3] && d[3].shortNames ? d[3].shortNames : undefined },
      ...(d[2] && d[2].subresources && d[2].subresources.status ?
        [{ name: r + '/status', singularName: '', namespaced: d[1], kind: d[0], verbs: ['get', 'patch', 'update'] }] : [])]) });
  // /api/v1/namespaces/NAME is the namespace object itself
  if (gv === 'v1' && !api[gv][resource] && ns && resource === undefined) { resource = 'namespaces'; name = ns; ns = undefined; }
  const def = api[gv][resource];
  if (!def) return status(res, 404, 'NotFound', `the server doesn't have a resource type "${resource}"`);
  const [kind, namespaced] = def;
  if (!namespaced) ns = undefined;
  const prefix = `${gv}/${resource}/${ns || ''}/`;
  const key = prefix + (name || '');
  const q = url.searchParams;
  const dry = q.get('dryRun') === 'All';   // validate and answer, store nothing
  if (!name) {
    const items = [...store.entries()].filter(([k]) => ns ? k.startsWith(prefix) : k.startsWith(`${gv}/${resource}/`))
      .map(([, o]) => o).filter(o => labelMatch(q.get('labelSelector'), o) && fieldMatch(q.get('fieldSelector'), o));
    if (req.method === 'GET' && (q.get('watch') === '1' || q.get('watch') === 'true')) {
      const from = +(q.get('resourceVersion') || 0);
      if (faults.gone > 0) { faults.gone--; return status(res, 410, 'Expired', 'injected: too old resource version'); }
      if (from && history.length && from < history[0].rv - 1 && from < rv)
        return status(res, 410, 'Expired', `too old resource version: ${from}`);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      const w = { gv, resource, ns, res, match: o => labelMatch(q.get('labelSelector'), o) && fieldMatch(q.get('fieldSelector'), o) };
      if (from) {
        for (const h of history)
          if (h.rv > from && h.gv === gv && h.resource === resource && (!ns || h.object.metadata.namespace === ns) && w.match(h.object))
            res.write(JSON.stringify({ type: h.type, object: h.object }) + '\n');
      } else {
        for (const o of items) res.write(JSON.stringify({ type: 'ADDED', object: o }) + '\n');
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
    if (req.method === 'GET') {
      if ((req.headers['accept'] || '').includes('as=Table')) return send(res, 200, table(items, def, gv, resource));
      return send(res, 200, { kind: kind + 'List', apiVersion: gv, metadata: { resourceVersion: String(rv) }, items });
    }
    if (req.method === 'POST') {
      let obj; try { obj = JSON.parse(body); } catch (e) { return status(res, 400, 'BadRequest', 'bad JSON'); }
      const k = prefix + obj.metadata.name;
      if (store.has(k)) return status(res, 409, 'AlreadyExists', `${resource} "${obj.metadata.name}" already exists`);
      obj.metadata = { ...obj.metadata, namespace: ns, uid: crypto.randomUUID(), resourceVersion: String(++rv),
        generation: 1, creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
      if (!ns) delete obj.metadata.namespace;
      if (def[2] && def[2].subresources && def[2].subresources.status) delete obj.status;
      if (dry) { rv--; return send(res, 201, obj); }
      store.set(k, obj);
      record('ADDED', k, obj, gv, resource);
      return send(res, 201, obj);
    }
    return status(res, 405, 'MethodNotAllowed', req.method);
  }
  const cur = store.get(key);
  if (req.method === 'GET') return cur ? send(res, 200, cur) : status(res, 404, 'NotFound', `${resource} "${name}" not found`);
  if (!cur) return status(res, 404, 'NotFound', `${resource} "${name}" not found`);
  if (req.method === 'DELETE') {
    if (dry) return send(res, 200, cur);
    if ((cur.metadata.finalizers || []).length) {
      if (!cur.metadata.deletionTimestamp) {
        cur.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        cur.metadata.resourceVersion = String(++rv);
        record('MODIFIED', key, cur, gv, resource);
      }
      return send(res, 200, cur);
    }
    store.delete(key);
    cur.metadata.resourceVersion = String(++rv);
    record('DELETED', key, cur, gv, resource);
    return send(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name, kind } });
  }
  let next;
  try {
    const b = JSON.parse(body);
    if (req.method === 'PUT') next = b;
    else if (req.method === 'PATCH' && (req.headers['content-type'] || '').startsWith('application/json-patch+json')) {
      next = jsonPatch(cur, b);   // RFC 6902: add, replace, remove, test
      if (next instanceof Error) return status(res, 422, 'Invalid', next.message);
    } else if (req.method === 'PATCH') {
      if (b.metadata && b.metadata.resourceVersion && b.metadata.resourceVersion !== cur.metadata.resourceVersion)
        return status(res, 409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
      next = mergePatch(cur, b);
    } else return status(res, 405, 'MethodNotAllowed', req.method);
  } catch (e) { return status(res, 400, 'BadRequest', 'bad JSON body: ' + e.message); }
  if (req.method === 'PUT' && next.metadata.resourceVersion && next.metadata.resourceVersion !== cur.metadata.resourceVersion)
    return status(res, 409, 'Conflict', 'the object has been modified');
  const hasStatus = def[2] && def[2].subresources && def[2].subresources.status;
  if (sub === 'status') next = { ...cur, status: next.status };
  else if (hasStatus) next.status = cur.status;
  next.metadata = { ...cur.metadata, ...next.metadata, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp };
  if (JSON.stringify(next.spec) !== JSON.stringify(cur.spec)) next.metadata.generation = (cur.metadata.generation || 1) + 1;
  else next.metadata.generation = cur.metadata.generation;
  if (dry) return send(res, 200, next);
  next.metadata.resourceVersion = String(++rv);
  if (next.metadata.deletionTimestamp && !(next.metadata.finalizers || []).length) {
    store.delete(key);
    record('DELETED', key, next, gv, resource);
    return send(res, 200, next);
  }
  store.set(key, next);
  record('MODIFIED', key, next, gv, resource);
  return send(res, 200, next);
}

const tlsDir = opt('--tls-dir');
const clientCa = opt('--client-ca');   // also accept client certificates signed by it
const serve = (req, res) => {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    try {
      const b = Buffer.concat(chunks).toString();
      if (faults.delayMs && !req.url.startsWith('/__test')) setTimeout(() => handle(req, res, b), faults.delayMs);
      else handle(req, res, b);
    }
    catch (e) { status(res, 500, 'InternalError', String(e && e.stack || e)); }
  });
};
const tlsOpts = tlsDir ? { cert: fs.readFileSync(tlsDir + '/cert.pem'), key: fs.readFileSync(tlsDir + '/key.pem'),
  ...(clientCa ? { ca: fs.readFileSync(clientCa), requestCert: true, rejectUnauthorized: false } : {}) } : null;
const mk = () => tlsDir ? https.createServer(tlsOpts, serve) : http.createServer(serve);
const server = mk();
// --ipv6: also listen on [::1] at the same port (in-cluster tests with an
// IPv6 KUBERNETES_SERVICE_HOST); still loopback only.
server.listen(+opt('--port', '0'), '127.0.0.1', () => {
  const port = server.address().port;
  if (!args.includes('--ipv6')) return process.stdout.write(`LISTENING ${port}\n`);
  mk().listen(port, '::1', () => process.stdout.write(`LISTENING ${port}\n`));
});
process.on('SIGTERM', () => process.exit(0));
