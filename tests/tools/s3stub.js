// s3stub.js -- an S3-protocol server for what a real server (the suite's
// Ceph RGW, tests/tools/rgw.sh) cannot be made to do on demand: throttling
// (503 SlowDown), 500s (also after the write took effect, the unknown
// outcome of a conditional create), 400 RequestTimeout, region redirects,
// requests that are accepted and never answered, and torn connections.
// Everything ordinary (signatures, conditional PUT, ranges, paging, key
// encoding) is tested against RGW; the stub still refuses what RGW refuses
// (bad signatures, a signed header that was not sent, a wrong Content-MD5,
// If-None-Match on an existing key) so a test on it cannot pass by accident.
// Where it differs from RGW: docs/object-store.md ("What the stub covers").
//
//   node s3stub.js [port]   -> prints "LISTENING <port>" when ready
// Credentials: access key STUBKEY, secret STUBSECRET, region us-east-1.
// Fault control (unsigned): POST /__stub/faults with any of
//   {"slowdown": N, "error500": N, "error500AfterWrite": N, "requestTimeout": N,
//    "hang": N, "torn": N, "redirect": "region", "ignoreConditional": bool,
//    "foreignWrite": "bytes", "deleteErrors": N, "noMultiDelete": bool}
// answering the next N requests that way ("redirect" every request until
// cleared with ""; "foreignWrite": the next conditional PUT first stores
// these bytes, as a racing writer would, then gets a 500; "deleteErrors":
// the next DeleteObjects leaves its first N keys in place and reports each
// as an InternalError, as S3 may; "noMultiDelete": DeleteObjects is 501
// NotImplemented, as on servers without it).
// GET /__stub/stats -> {"requests": n} (signed S3 requests seen).
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const ACCESS = 'STUBKEY', SECRET = 'STUBSECRET';
const objects = new Map();   // "bucket/key" -> {body, mtime}
const faults = { slowdown: 0, error500: 0, error500AfterWrite: 0, requestTimeout: 0, hang: 0,
  torn: 0, redirect: '', ignoreConditional: false, foreignWrite: null, deleteErrors: 0,
  noMultiDelete: false };
let requests = 0;
const hung = [];

const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
// Keys are byte strings (latin1: one char per byte), so any byte a key may
// hold survives; S3's encoding: unreserved bytes kept, the rest %XX.
const pctDecode = (s) => Buffer.from(s.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})|([^%])/gs,
  (m, h, c) => h ? String.fromCharCode(parseInt(h, 16)) : Buffer.from(c, 'utf8').toString('latin1')), 'latin1').toString('latin1');
const enc = (s, keepSlash) => [...Buffer.from(s, 'latin1')].map(b => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9_.~-]/.test(c) || (keepSlash && c === '/') ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
}).join('');
// The query as name -> value (decoded byte strings), in order given.
const rawQuery = (url) => url.search.replace(/^\?/, '').split('&').filter(x => x)
  .map(kv => { const i = kv.indexOf('='); return i < 0 ? [pctDecode(kv), ''] : [pctDecode(kv.slice(0, i)), pctDecode(kv.slice(i + 1))]; });
const qget = (url, name) => { const e = rawQuery(url).find(([k]) => k === name); return e ? e[1] : null; };

function xmlError(res, status, code, message) {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// Recomputes the SigV4 signature from the request as received.
function verify(req, url) {
  const auth = req.headers['authorization'] || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(auth);
  if (!m) return 'missing or malformed Authorization';
  const [, key, date, region, signed, sig] = m;
  if (key !== ACCESS) return 'InvalidAccessKeyId';
  const amzDate = req.headers['x-amz-date'];
  const payload = req.headers['x-amz-content-sha256'];
  if (!amzDate || !payload) return 'missing x-amz-date or x-amz-content-sha256';
  const names = signed.split(';');
  // A header that is signed but was not sent fails, as on RGW (curl signs
  // an empty "Name:" header it never sends).
  const missing = names.find(n => req.headers[n] === undefined);
  if (missing) return `signed header ${missing} was not sent`;
  const canonHeaders = names.map(n => `${n}:${String(req.headers[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  // Canonical query: sorted by name, each part URI-encoded.
  const q = rawQuery(url).map(([k, v]) => [enc(k), enc(v)]).sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : (a[1] < b[1] ? -1 : 1));
  const canonQuery = q.map(([k, v]) => `${k}=${v}`).join('&');
  const canon = [req.method, url.pathname, canonQuery, canonHeaders, signed, payload].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha(canon)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac('AWS4' + SECRET, date), region), 's3'), 'aws4_request');
  const want = crypto.createHmac('sha256', kSigning).update(toSign).digest('hex');
  return want === sig ? null : 'SignatureDoesNotMatch';
}

function list(res, bucket, url) {
  const prefix = qget(url, 'prefix') || '';
  const max = Math.min(parseInt(qget(url, 'max-keys') || '1000', 10), 1000);
  const token = qget(url, 'continuation-token');
  const after = qget(url, 'start-after');
  const start = token ? Buffer.from(token, 'base64').toString('latin1') : after;
  const keys = [...objects.keys()].filter(k => k.startsWith(bucket + '/'))
    .map(k => k.slice(bucket.length + 1)).filter(k => k.startsWith(prefix) && (start === null || k > start)).sort();
  const page = keys.slice(0, max), truncated = keys.length > max;
  let xml = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>`;
  if (truncated) xml += `<NextContinuationToken>${Buffer.from(page[page.length - 1], 'latin1').toString('base64')}</NextContinuationToken>`;
  for (const k of page) {
    const o = objects.get(bucket + '/' + k);
    const shown = qget(url, 'encoding-type') === 'url' ? enc(k, true) : Buffer.from(k, 'latin1').toString('utf8');
    xml += `<Contents><Key>${shown.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</Key><LastModified>${o.mtime.toISOString()}</LastModified><Size>${o.body.length}</Size></Contents>`;
  }
  res.writeHead(200, { 'Content-Type': 'application/xml' });
  res.end(xml + '</ListBucketResult>');
}

const xmlText = t => t.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (m, e) =>
  e[0] === '#' ? String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : +e.slice(1))
               : { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e]);
const xmlEsc = t => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// DeleteObjects: refuses what S3 refuses (no Content-MD5 or a wrong one,
// no <Delete> document, more than 1,000 keys); Quiet answers list only
// the keys not deleted.
function deleteObjects(req, res, bucket, body) {
  if (faults.noMultiDelete) return xmlError(res, 501, 'NotImplemented', 'DeleteObjects');
  const md5 = req.headers['content-md5'];
  if (md5 === undefined) return xmlError(res, 400, 'InvalidRequest', 'Missing required header for this request: Content-Md5.');
  if (md5 !== crypto.createHash('md5').update(body).digest('base64'))
    return xmlError(res, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  const doc = body.toString('utf8');
  if (!/<Delete[\s>]/.test(doc)) return xmlError(res, 400, 'MalformedXML', 'not a Delete document');
  const keys = [...doc.matchAll(/<Key>([^<]*)<\/Key>/g)].map(m => xmlText(m[1]));
  if (!keys.length || keys.length > 1000) return xmlError(res, 400, 'MalformedXML', keys.length + ' keys');
  const quiet = /<Quiet>true<\/Quiet>/.test(doc);
  let out = '<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';
  keys.forEach((k, i) => {
    if (i < faults.deleteErrors) {
      out += `<Error><Key>${xmlEsc(k)}</Key><Code>InternalError</Code><Message>injected</Message></Error>`;
      return;
    }
    objects.delete(bucket + '/' + k);
    if (!quiet) out += `<Deleted><Key>${xmlEsc(k)}</Key></Deleted>`;
  });
  faults.deleteErrors = 0;
  res.writeHead(200, { 'Content-Type': 'application/xml' });
  res.end(out + '</DeleteResult>');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://stub');
    if (url.pathname === '/__stub/faults' && req.method === 'POST') {
      Object.assign(faults, JSON.parse(body.toString() || '{}'));
      res.writeHead(200); return res.end('ok');
    }
    if (url.pathname === '/__stub/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ requests }));
    }
    requests++;
    if (faults.hang > 0) { faults.hang--; hung.push(res); return; }   // never answered
    if (faults.torn > 0) { faults.torn--; return req.socket.destroy(); }
    if (faults.redirect) {
      res.writeHead(301, { 'Content-Type': 'application/xml', 'x-amz-bucket-region': faults.redirect });
      return res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>');
    }
    if (faults.requestTimeout > 0) { faults.requestTimeout--; return xmlError(res, 400, 'RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period.'); }
    if (faults.slowdown > 0) { faults.slowdown--; return xmlError(res, 503, 'SlowDown', 'Please reduce your request rate.'); }
    if (faults.error500 > 0) { faults.error500--; return xmlError(res, 500, 'InternalError', 'injected'); }
    const bad = verify(req, url);
    if (bad === 'InvalidAccessKeyId') return xmlError(res, 403, bad, 'The AWS Access Key Id you provided does not exist in our records.');
    if (bad) return xmlError(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided: ' + bad);
    const parts = pctDecode(url.pathname).split('/');
    const bucket = parts[1], key = parts.slice(2).join('/');
    const id = bucket + '/' + key;
    if (!key) {
      if (req.method === 'HEAD') { res.writeHead(200); return res.end(); }
      if (req.method === 'GET' && qget(url, 'list-type') === '2') return list(res, bucket, url);
      if (req.method === 'POST' && url.searchParams.has('delete')) return deleteObjects(req, res, bucket, body);
      return xmlError(res, 400, 'InvalidRequest', 'unsupported bucket operation');
    }
    switch (req.method) {
    case 'PUT': {
      const md5 = req.headers['content-md5'];
      if (md5 !== undefined && md5 !== crypto.createHash('md5').update(body).digest('base64'))
        return xmlError(res, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      const conditional = req.headers['if-none-match'] === '*' && !faults.ignoreConditional;
      if (conditional && faults.foreignWrite !== null && !objects.has(id)) {
        objects.set(id, { body: Buffer.from(faults.foreignWrite), mtime: new Date() });
        faults.foreignWrite = null;
        return xmlError(res, 500, 'InternalError', 'injected after a racing write');
      }
      if (conditional && objects.has(id))
        return xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      objects.set(id, { body, mtime: new Date() });
      if (faults.error500AfterWrite > 0) { faults.error500AfterWrite--; return xmlError(res, 500, 'InternalError', 'injected after the write'); }
      res.writeHead(200, { ETag: '"' + crypto.createHash('md5').update(body).digest('hex') + '"' });
      return res.end();
    }
    case 'GET': case 'HEAD': {
      const o = objects.get(id);
      if (!o) return req.method === 'HEAD' ? (res.writeHead(404), res.end()) : xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      const headers = { 'Last-Modified': o.mtime.toUTCString(), 'Content-Type': 'application/octet-stream' };
      const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers['range'] || '');
      if (r && req.method === 'GET') {
        const a = +r[1], b = r[2] === '' ? o.body.length - 1 : Math.min(+r[2], o.body.length - 1);
        if (a >= o.body.length) return xmlError(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
        res.writeHead(206, { ...headers, 'Content-Range': `bytes ${a}-${b}/${o.body.length}` });
        return res.end(o.body.subarray(a, b + 1));
      }
      res.writeHead(200, { ...headers, 'Content-Length': o.body.length });
      return res.end(req.method === 'HEAD' ? undefined : o.body);
    }
    case 'DELETE':
      objects.delete(id); res.writeHead(204); return res.end();
    default:
      return xmlError(res, 405, 'MethodNotAllowed', req.method);
    }
  });
});
server.listen(parseInt(process.argv[2] || '0', 10), '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => { hung.forEach(r => r.socket && r.socket.destroy()); process.exit(0); });
