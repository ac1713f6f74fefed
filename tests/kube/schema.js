// schema.js -- what kube-apiserver does with a CRD's OpenAPI v3 schema
// (a "structural schema"), for tests/kube/apiserver.js:
//   structuralErrors(schema)  -> why a CRD's schema would be refused ([] if none)
//   compile(schema, gvk)      -> {prune, unknownFields, applyDefaults, validate}
//   openapiV3(...)            -> the /openapi/v3 documents kubectl reads
// Validation is ajv (a real JSON-Schema validator) over the schema with the
// x-kubernetes-* extensions ignored; ajv's errors are mapped to the field
// paths and cause reasons kube-apiserver reports (details.causes).
'use strict';
const path = require('node:path');
const tools = m => require(path.join(__dirname, '../tools/node_modules', m));   // scripts/deps.sh test
const Ajv = tools('ajv');
const addFormats = tools('ajv-formats');

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addFormat('int64', { type: 'number', validate: Number.isInteger });
ajv.addFormat('int32', { type: 'number', validate: n => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });

const preserve = s => s && s['x-kubernetes-preserve-unknown-fields'] === true;

// The structural-schema rules kube-apiserver enforces on a CRD (a subset):
// every node states a type unless it preserves unknown fields or is
// int-or-string, defaults are valid against their node.
function structuralErrors(schema, path = 'spec.versions[0].schema.openAPIV3Schema') {
  const errs = [];
  const walk = (s, p) => {
    if (!s || typeof s !== 'object') return;
    if (!s.type && !preserve(s) && !s['x-kubernetes-int-or-string'])
      errs.push({ field: p + '.type', reason: 'FieldValueRequired', message: 'Required value: must not be empty for specified object fields' });
    if (s.default !== undefined) {
      const v = ajv.compile(stripDefaults(s));
      if (!v(s.default)) errs.push({ field: p + '.default', reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(s.default)}: ${v.errors[0].message}` });
    }
    for (const [k, c] of Object.entries(s.properties || {})) walk(c, `${p}.properties[${k}]`);
    if (s.items) walk(s.items, p + '.items');
    if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, p + '.additionalProperties');
  };
  walk(schema, path);
  return errs;
}
function stripDefaults(s) { const { default: _d, ...rest } = s; return rest; }

// kube-apiserver's field path: spec.children[0].name
function fieldPath(instancePath) {
  return instancePath.split('/').slice(1).map(x => x.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => /^\d+$/.test(seg) ? `${acc}[${seg}]` : (acc ? `${acc}.${seg}` : seg), '');
}
const show = v => typeof v === 'string' ? JSON.stringify(v) : (v && typeof v === 'object' ? (Array.isArray(v) ? v.length : '"object"') : String(v));
const typeName = v => v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;

// One ajv error -> one cause as kube-apiserver words it.
function cause(e, value) {
  const f = fieldPath(e.instancePath);
  const at = f || '<root>';
  switch (e.keyword) {
    case 'required': { const ff = f ? `${f}.${e.params.missingProperty}` : e.params.missingProperty;
      return { reason: 'FieldValueRequired', field: ff, message: 'Required value' }; }
    case 'enum': return { reason: 'FieldValueNotSupported', field: at,
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${e.params.allowedValues.map(x => JSON.stringify(x)).join(', ')}` };
    case 'type': return { reason: 'FieldValueTypeInvalid', field: at,
      message: `Invalid value: "${typeName(value)}": ${at} in body must be of type ${e.params.type}: "${typeName(value)}"` };
    case 'maxLength': return { reason: 'FieldValueTooLong', field: at, message: `Too long: may not be more than ${e.params.limit} bytes` };
    case 'minLength': return { reason: 'FieldValueInvalid', field: at, message: `Invalid value: ${show(value)}: ${at} in body should be at least ${e.params.limit} chars long` };
    case 'minItems': return { reason: 'FieldValueInvalid', field: at, message: `Invalid value: ${show(value)}: ${at} in body should have at least ${e.params.limit} items` };
    case 'maxItems': return { reason: 'FieldValueTooMany', field: at, message: `Too many: ${show(value)}: must have at most ${e.params.limit} items` };
    case 'pattern': return { reason: 'FieldValueInvalid', field: at, message: `Invalid value: ${show(value)}: ${at} in body should match '${e.params.pattern}'` };
    case 'format': return { reason: 'FieldValueInvalid', field: at, message: `Invalid value: ${show(value)}: ${at} in body must be of type ${e.params.format}: ${show(value)}` };
    default: return { reason: 'FieldValueInvalid', field: at, message: `Invalid value: ${show(value)}: ${at} in body ${e.message}` };
  }
}
function valueAt(obj, instancePath) {
  return instancePath.split('/').slice(1).reduce((o, k) => o == null ? o : o[k.replace(/~1/g, '/').replace(/~0/g, '~')], obj);
}

function compile(schema) {
  // metadata is ObjectMeta, checked by the server itself, not the schema.
  const forAjv = JSON.parse(JSON.stringify(schema));
  if (forAjv.properties && forAjv.properties.metadata) forAjv.properties.metadata = { type: 'object' };
  const v = ajv.compile(forAjv);

  // Unknown fields: what pruning drops, as paths (for fieldValidation=Strict).
  function walk(s, o, p, out, drop) {
    if (!s || o === null || typeof o !== 'object') return;
    if (Array.isArray(o)) { if (s.items) o.forEach((x, i) => walk(s.items, x, `${p}[${i}]`, out, drop)); return; }
    if (preserve(s) && !s.properties) return;
    const props = s.properties || {};
    for (const k of Object.keys(o)) {
      const q = p ? `${p}.${k}` : k;
      if (props[k]) walk(props[k], o[k], q, out, drop);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, o[k], q, out, drop);
      else if (!preserve(s) && !s.additionalProperties) { out.push(q); if (drop) delete o[k]; }
    }
  }
  function defaults(s, o) {
    if (!s || o === null || typeof o !== 'object') return;
    if (Array.isArray(o)) { if (s.items) o.forEach(x => defaults(s.items, x)); return; }
    for (const [k, c] of Object.entries(s.properties || {})) {
      if (o[k] === undefined && c.default !== undefined) o[k] = JSON.parse(JSON.stringify(c.default));
      if (o[k] !== undefined) defaults(c, o[k]);
    }
  }
  const top = o => { const { apiVersion, kind, metadata, ...rest } = o; return rest; };
  return {
    unknownFields(obj) { const out = []; walk(schema, top(obj), '', out, false); return out; },
    prune(obj) {
      const body = top(obj);
      walk(schema, body, '', [], true);
      return { apiVersion: obj.apiVersion, kind: obj.kind, metadata: obj.metadata, ...body };
    },
    applyDefaults(obj) { defaults(schema, obj); return obj; },
    // -> [] or causes, each {reason, message, field}
    validate(obj) {
      const causes = [];
      if (!v(obj)) {
        const seen = new Set();
        for (const e of v.errors) {
          const c = cause(e, valueAt(obj, e.instancePath));
          const key = c.field + ' ' + c.reason;
          if (!seen.has(key)) { seen.add(key); causes.push(c); }
        }
      }
      listMapDuplicates(schema, obj, '', causes);
      return causes;
    },
  };
}

// x-kubernetes-list-type: map -> the map keys are unique in the list.
function listMapDuplicates(s, o, p, causes) {
  if (!s || o === null || typeof o !== 'object') return;
  if (Array.isArray(o)) {
    if (s['x-kubernetes-list-type'] === 'map') {
      const keys = s['x-kubernetes-list-map-keys'] || [];
      const seen = new Set();
      o.forEach((x, i) => {
        const k = JSON.stringify(keys.map(n => x && x[n]));
        if (seen.has(k)) causes.push({ reason: 'FieldValueDuplicate', field: `${p}[${i}]`,
          message: `Duplicate value: map[string]interface {}{${keys.map(n => `"${n}":${JSON.stringify(x[n])}`).join(', ')}}` });
        seen.add(k);
      });
    }
    if (s.items) o.forEach((x, i) => listMapDuplicates(s.items, x, `${p}[${i}]`, causes));
    return;
  }
  for (const [k, c] of Object.entries(s.properties || {}))
    if (o[k] !== undefined) listMapDuplicates(c, o[k], p ? `${p}.${k}` : k, causes);
}

// The 422 Invalid Status kube-apiserver answers.
function invalidStatus(group, kind, name, causes) {
  const list = causes.map(c => `${c.field}: ${c.message}`);
  const what = group ? `${kind}.${group}` : kind;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message: `${what} "${name}" is invalid: ${list.length === 1 ? list[0] : '[' + list.join(', ') + ']'}`,
    reason: 'Invalid', details: { name, group: group || undefined, kind, causes }, code: 422 };
}

// /openapi/v3: a root listing every group-version, and per group-version a
// document with, for each resource, a path whose patch operation names its
// GVK and takes fieldValidation (how kubectl learns that the server
// validates fields), and component schemas with x-kubernetes-group-version-kind
// (how `kubectl explain` finds a kind).  CRD kinds carry their schema;
// built-in kinds an open object (the test server does not validate them).
function openapiV3Doc(gv, resources) {
  const [group, version] = gv.includes('/') ? gv.split('/') : ['', gv];
  const paths = {}, schemas = {};
  const rev = group ? group.split('.').reverse().join('.') : 'io.k8s.api.core';
  for (const [res, def] of Object.entries(resources)) {
    const [kind, namespaced, v] = def;
    const ref = `${rev}.${version}.${kind}`;
    const gvk = [{ group, kind, version }];
    const base = (group ? `/apis/${gv}` : '/api/v1') + (namespaced ? '/namespaces/{namespace}' : '') + `/${res}/{name}`;
    const op = { 'x-kubernetes-group-version-kind': gvk[0], parameters: [
      { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } }],
      requestBody: { content: { 'application/merge-patch+json': { schema: { type: 'object' } } } },
      responses: { 200: { content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } } } };
    paths[base] = { get: { ...op }, patch: op, put: op };
    const schema = v && v.schema && v.schema.openAPIV3Schema
      ? JSON.parse(JSON.stringify(v.schema.openAPIV3Schema))
      : { type: 'object', description: `${kind} (not described by the test server)`, 'x-kubernetes-preserve-unknown-fields': true };
    schema['x-kubernetes-group-version-kind'] = gvk;
    schemas[ref] = schema;
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.4' }, paths, components: { schemas } };
}

module.exports = { compile, structuralErrors, invalidStatus, openapiV3Doc, fieldPath };
