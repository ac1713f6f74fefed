// rbac.js -- authentication and RBAC authorization as kube-apiserver does
// them, for tests/kube/apiserver.js.
//   authenticate(req, cfg) -> {user, groups} | null (401)
//   authorize(store, who, attrs) -> true | false  (attrs: verb, group,
//       resource, subresource, namespace, name, path for non-resource URLs)
//   forbidden(who, attrs) -> the 403 Status body, worded like the real one
// Identities: bearer tokens read from files on every request (so a test can
// rotate them) mapped to a user or a service account, and client
// certificates (CN = user, O = groups) signed by the client CA.
'use strict';
const fs = require('node:fs');

function readToken(file) {
  try { return fs.readFileSync(file, 'utf8').trim(); } catch (e) { return null; }
}
// cfg.tokens: [{file, user, groups}]
function authenticate(req, cfg) {
  const h = req.headers['authorization'] || '';
  if (h.startsWith('Bearer ')) {
    const t = h.slice(7).trim();
    for (const e of cfg.tokens) {
      const want = readToken(e.file);
      if (want && want === t) return { user: e.user, groups: [...e.groups, 'system:authenticated'] };
    }
    return null;   // a wrong bearer token is 401 even with a good certificate
  }
  if (cfg.clientCa && req.socket.authorized === true) {
    const c = req.socket.getPeerCertificate();
    const o = c.subject && c.subject.O;
    return { user: c.subject.CN, groups: [...(o ? [].concat(o) : []), 'system:authenticated'] };
  }
  return null;
}
// "system:serviceaccount:NS:NAME" -> its groups
function serviceAccount(ns, name) {
  return { user: `system:serviceaccount:${ns}:${name}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`] };
}

function subjectMatches(s, who, bindingNs) {
  if (s.kind === 'User') return s.name === who.user;
  if (s.kind === 'Group') return who.groups.includes(s.name);
  if (s.kind === 'ServiceAccount')
    return who.user === `system:serviceaccount:${s.namespace || bindingNs}:${s.name}`;
  return false;
}
const has = (list, x) => Array.isArray(list) && (list.includes('*') || list.includes(x));
function ruleAllows(r, a) {
  if (a.path) {   // non-resource URL
    return has(r.verbs, a.verb) && Array.isArray(r.nonResourceURLs) && r.nonResourceURLs.some(u =>
      u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
  }
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (!has(r.verbs, a.verb) || !has(r.apiGroups, a.group)) return false;
  if (!(has(r.resources, res) || (a.subresource && (r.resources || []).includes(`*/${a.subresource}`)))) return false;
  if (r.resourceNames && r.resourceNames.length) return !!a.name && r.resourceNames.includes(a.name);
  return true;
}
// store: iterate(kindPath) -> objects.  Roles are looked up in the
// binding's namespace; ClusterRoles anywhere.
function authorize(objects, who, a) {
  if (who.groups.includes('system:masters')) return true;
  // What every authenticated user may read (system:discovery,
  // system:public-info-viewer): discovery, version, OpenAPI, health.
  if (a.path && a.verb === 'get' && /^\/(api|apis|version|openapi|healthz|readyz|livez)(\/|$)/.test(a.path)) return true;
  const roleRules = (kind, ns, name) => {
    const o = kind === 'ClusterRole' ? objects.clusterRole(name) : objects.role(ns, name);
    return o ? (o.rules || []) : [];
  };
  for (const b of objects.clusterRoleBindings())
    if ((b.subjects || []).some(s => subjectMatches(s, who, '')) &&
        roleRules('ClusterRole', '', b.roleRef.name).some(r => ruleAllows(r, a))) return true;
  if (a.namespace && !a.path)
    for (const b of objects.roleBindings(a.namespace))
      if ((b.subjects || []).some(s => subjectMatches(s, who, a.namespace)) &&
          roleRules(b.roleRef.kind, a.namespace, b.roleRef.name).some(r => ruleAllows(r, a))) return true;
  return false;
}

function forbidden(who, a) {
  let message;
  if (a.path) {
    message = `forbidden: User "${who.user}" cannot ${a.verb} path "${a.path}"`;
  } else {
    const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    const what = (a.group ? `${a.resource}.${a.group}` : a.resource) + (a.name ? ` "${a.name}"` : '');
    const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
    message = `${what} is forbidden: User "${who.user}" cannot ${a.verb} resource "${res}" in API group "${a.group}" ${where}`;
  }
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden',
    details: a.path ? {} : { name: a.name, group: a.group || undefined, kind: a.resource }, code: 403 };
}

module.exports = { authenticate, authorize, forbidden, serviceAccount };
