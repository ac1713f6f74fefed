// s3stub.js -- a small S3-protocol server for what s3rver does not do:
// it verifies SigV4 signatures for real (403 SignatureDoesNotMatch),
// honours If-None-Match: * (412 PreconditionFailed), pages ListObjectsV2
// with continuation tokens, and injects throttling on request.
//
//   node s3stub.js [port]   -> prints "LISTENING <port>" when ready
// Credentials: access key STUBKEY, secret STUBSECRET, region us-east-1.
// Fault control (unsigned): POST /__stub/faults {"slowdown": N, "error500": N}
// answers the next N requests with 503 SlowDown / 500 InternalError.
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const ACCESS = 'STUBKEY', SECRET = 'STUBSECRET';
const objects = new Map();   // "bucket/key" -> {body, mtime}
const faults = { slowdown: 0, error500: 0 };

const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());

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
  const canonHeaders = names.map(n => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  // Canonical query: sorted by name, each part URI-encoded.
  const q = [...url.searchParams.entries()].map(([k, v]) => [enc(k), enc(v)]).sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : (a[1] < b[1] ? -1 : 1));
  const canonQuery = q.map(([k, v]) => `${k}=${v}`).join('&');
  const canon = [req.method, url.pathname, canonQuery, canonHeaders, signed, payload].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha(canon)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac('AWS4' + SECRET, date), region), 's3'), 'aws4_request');
  const want = crypto.createHmac('sha256', kSigning).update(toSign).digest('hex');
  return want === sig ? null : 'SignatureDoesNotMatch';
}

function list(res, bucket, url) {
  const prefix = url.searchParams.get('prefix') || '';
  const max = Math.min(parseInt(url.searchParams.get('max-keys') || '1000', 10), 1000);
  const token = url.searchParams.get('continuation-token');
  const start = token ? Buffer.from(token, 'base64').toString() : null;
  const keys = [...objects.keys()].filter(k => k.startsWith(bucket + '/'))
    .map(k => k.slice(bucket.length + 1)).filter(k => k.startsWith(prefix) && (start === null || k > start)).sort();
  const page = keys.slice(0, max), truncated = keys.length > max;
  let xml = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>`;
  if (truncated) xml += `<NextContinuationToken>${Buffer.from(page[page.length - 1]).toString('base64')}</NextContinuationToken>`;
  for (const k of page) {
    const o = objects.get(bucket + '/' + k);
    xml += `<Contents><Key>${k.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</Key><LastModified>${o.mtime.toISOString()}</LastModified><Size>${o.body.length}</Size></Contents>`;
  }
  res.writeHead(200, { 'Content-Type': 'application/xml' });
  res.end(xml + '</ListBucketResult>');
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
    if (faults.slowdown > 0) { faults.slowdown--; return xmlError(res, 503, 'SlowDown', 'Please reduce your request rate.'); }
    if (faults.error500 > 0) { faults.error500--; return xmlError(res, 500, 'InternalError', 'injected'); }
    const bad = verify(req, url);
    if (bad === 'InvalidAccessKeyId') return xmlError(res, 403, bad, 'The AWS Access Key Id you provided does not exist in our records.');
    if (bad) return xmlError(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided: ' + bad);
    const parts = decodeURIComponent(url.pathname).split('/');
    const bucket = parts[1], key = parts.slice(2).join('/');
    const id = bucket + '/' + key;
    if (!key) {
      if (req.method === 'GET' && url.searchParams.get('list-type') === '2') return list(res, bucket, url);
      return xmlError(res, 400, 'InvalidRequest', 'unsupported bucket operation');
    }
    switch (req.method) {
    case 'PUT':
      if (req.headers['if-none-match'] === '*' && objects.has(id))
        return xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      objects.set(id, { body, mtime: new Date() });
      res.writeHead(200, { ETag: '"' + crypto.createHash('md5').update(body).digest('hex') + '"' });
      return res.end();
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
process.on('SIGTERM', () => process.exit(0));
