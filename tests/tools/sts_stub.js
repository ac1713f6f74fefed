// sts_stub.js -- a local AWS STS (AssumeRoleWithWebIdentity only) and a
// small S3 that accepts only the credentials this STS issued (or one static
// triple), for tests of engine/objstore/s3_creds.c.  Node, no dependencies.
//
//   node sts_stub.js [port]   -> prints "LISTENING <port>" when ready
//   With STS_STUB_CERT and STS_STUB_KEY (PEM files) it serves https instead,
//   for tests of a private CA (s3_ca_file / AWS_CA_BUNDLE).
//
// STS (POST / with a form body, or GET /?Action=...): checks, as STS does,
//   Action=AssumeRoleWithWebIdentity, Version=2011-06-15, RoleArn equal to
//   the configured role, RoleSessionName 2-64 of [\w+=,.@-] (and equal to
//   the configured one if set), WebIdentityToken equal to the content of the
//   configured token file (read on every call, trailing newline dropped),
//   Content-Type application/x-www-form-urlencoded for POST.  Refusals are
//   STS's <ErrorResponse> documents: 400 MissingParameter /
//   InvalidParameterValue / ValidationError, 403 AccessDenied (role),
//   400 InvalidIdentityToken (token).  A success returns new credentials
//   (AccessKeyId ASIASTUB<n>) that expire `expiresIn` seconds from now
//   (negative: already expired).
// S3 (any other path, path style): recomputes the SigV4 signature with the
//   secret of the key id used; for an issued key (or STATICKEY, whose token
//   is STATICTOKEN) x-amz-security-token must be the matching token and be
//   among the signed headers; a signed header that was not sent is refused
//   (RGW does the same).  Objects live in memory: PUT, GET, HEAD, DELETE,
//   ListObjectsV2 (one page).
// Control (unsigned, /__stub/...):
//   POST /__stub/config {"roleArn", "tokenFile", "sessionName", "expiresIn",
//        "fail": {"count", "status", "code", "message"}, "malformed": n,
//        "missing": "SessionToken"}  (fail/malformed act on the next n STS calls)
//   GET /__stub/stats -> {"sts": calls, "stsOk": issued, "s3": accepted S3
//        requests, "s3Refused": n, "lastToken": token of the last accepted
//        S3 request, "lastKeyId", "lastSessionName", "lastError"}
'use strict';
const http = require('node:http');
const https = require('node:https');
const crypto = require('node:crypto');
const fs = require('node:fs');

const cfg = { roleArn: '', tokenFile: '', sessionName: '', expiresIn: 3600, fail: null,
              malformed: 0, missing: '' };
const stats = { sts: 0, stsOk: 0, s3: 0, s3Refused: 0, lastToken: '', lastKeyId: '',
                lastSessionName: '', lastError: '' };
const issued = new Map([['STATICKEY', { secret: 'STATICSECRET', token: 'STATICTOKEN', expires: Infinity }]]);
const objects = new Map();
let serial = 0;

const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
// Percent-decoding to bytes (keys may hold any byte, not only UTF-8) and
// SigV4's encoding of bytes: A-Z a-z 0-9 - _ . ~ kept, the rest %XX.
function pctBytes(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.substr(i + 1, 2))) { out.push(parseInt(s.substr(i + 1, 2), 16)); i += 2; }
    else out.push(...Buffer.from(s[i]));
  }
  return Buffer.from(out);
}
const sigEnc = (buf) => [...buf].map(b => /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0')).join('');
const xmlEsc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function stsError(res, status, code, message) {
  stats.lastError = code;
  res.writeHead(status, { 'Content-Type': 'text/xml' });
  res.end(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEsc(message)}</Message></Error><RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`);
}

function s3Error(res, status, code, message) {
  stats.s3Refused++;
  stats.lastError = code;
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xmlEsc(message)}</Message></Error>`);
}

function sts(req, res, params) {
  stats.sts++;
  if (cfg.fail && cfg.fail.count > 0) {
    cfg.fail.count--;
    return stsError(res, cfg.fail.status || 500, cfg.fail.code || 'ServiceUnavailable', cfg.fail.message || 'injected');
  }
  if (cfg.malformed > 0) {
    cfg.malformed--;
    res.writeHead(200, { 'Content-Type': 'text/xml' });
    return res.end('<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>');
  }
  if (req.method === 'POST' && !/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] || ''))
    return stsError(res, 400, 'InvalidParameterValue', 'Content-Type must be application/x-www-form-urlencoded');
  for (const p of ['Action', 'Version', 'RoleArn', 'RoleSessionName', 'WebIdentityToken'])
    if (!params.get(p)) return stsError(res, 400, 'MissingParameter', `The request must contain the parameter ${p}`);
  if (params.get('Action') !== 'AssumeRoleWithWebIdentity')
    return stsError(res, 400, 'InvalidAction', `Could not find operation ${params.get('Action')}`);
  if (params.get('Version') !== '2011-06-15')
    return stsError(res, 400, 'InvalidParameterValue', `Unsupported Version ${params.get('Version')}`);
  const name = params.get('RoleSessionName');
  stats.lastSessionName = name;
  if (!/^[\w+=,.@-]{2,64}$/.test(name) || (cfg.sessionName && name !== cfg.sessionName))
    return stsError(res, 400, 'ValidationError', `1 validation error detected: Value '${name}' at 'roleSessionName' failed to satisfy constraint`);
  if (params.get('RoleArn') !== cfg.roleArn)
    return stsError(res, 403, 'AccessDenied', `Not authorized to perform sts:AssumeRoleWithWebIdentity on ${params.get('RoleArn')}`);
  let want = null;
  try { want = fs.readFileSync(cfg.tokenFile, 'utf8').replace(/\s+$/, ''); } catch (e) { want = null; }
  if (want === null || params.get('WebIdentityToken') !== want)
    return stsError(res, 400, 'InvalidIdentityToken', 'The web identity token that was passed could not be validated by AWS.');
  serial++;
  const keyId = 'ASIASTUB' + String(serial).padStart(8, '0');
  const secret = crypto.randomBytes(20).toString('base64');
  const token = crypto.randomBytes(48).toString('base64');  // has '+', '/', '='
  const expires = Date.now() + cfg.expiresIn * 1000;
  issued.set(keyId, { secret, token, expires });
  stats.stsOk++;
  const exp = new Date(expires).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const cred = {
    SessionToken: token, SecretAccessKey: secret, Expiration: exp, AccessKeyId: keyId,
  };
  let creds = '';
  for (const [k, v] of Object.entries(cred)) if (k !== cfg.missing) creds += `<${k}>${xmlEsc(v)}</${k}>`;
  res.writeHead(200, { 'Content-Type': 'text/xml' });
  res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:default:shale</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience><AssumedRoleUser><Arn>${xmlEsc(cfg.roleArn)}/${xmlEsc(name)}</Arn><AssumedRoleId>AROASTUB:${xmlEsc(name)}</AssumedRoleId></AssumedRoleUser><Credentials>${creds}</Credentials><Provider>stub</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`);
}

// SigV4 as S3 checks it; returns null or [status, code, message].
function verify(req, url) {
  const auth = req.headers['authorization'] || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(auth);
  if (!m) return [403, 'AccessDenied', 'missing or malformed Authorization'];
  const [, keyId, date, region, signed, sig] = m;
  const c = issued.get(keyId);
  if (!c) return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  if (Date.now() >= c.expires) return [400, 'ExpiredToken', 'The provided token has expired.'];
  const names = signed.split(';');
  if (req.headers['x-amz-security-token'] !== c.token)
    return [403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.'];
  if (!names.includes('x-amz-security-token'))
    return [403, 'AccessDenied', 'x-amz-security-token is not among the signed headers'];
  for (const n of names)
    if (req.headers[n] === undefined && n !== 'host')
      return [403, 'SignatureDoesNotMatch', `signed header '${n}' was not sent`];
  const amzDate = req.headers['x-amz-date'], payload = req.headers['x-amz-content-sha256'];
  if (!amzDate || !payload) return [400, 'InvalidRequest', 'missing x-amz-date or x-amz-content-sha256'];
  const canonHeaders = names.map(n => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const q = [...url.searchParams.entries()].map(([k, v]) => [enc(k), enc(v)]).sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : (a[1] < b[1] ? -1 : 1));
  const canonQuery = q.map(([k, v]) => `${k}=${v}`).join('&');
  // The path as S3 re-encodes it: decoded, then SigV4-encoded per segment.
  const canonPath = url.pathname.split('/').map(seg => sigEnc(pctBytes(seg))).join('/');
  const canon = [req.method, canonPath, canonQuery, canonHeaders, signed, payload].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha(canon)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac('AWS4' + c.secret, date), region), 's3'), 'aws4_request');
  const want = crypto.createHmac('sha256', kSigning).update(toSign).digest('hex');
  if (want !== sig) return [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'];
  stats.lastToken = c.token;
  stats.lastKeyId = keyId;
  return null;
}

function s3(req, res, url, body) {
  const bad = verify(req, url);
  if (bad) return s3Error(res, ...bad);
  stats.s3++;
  const parts = url.pathname.split('/').map(seg => pctBytes(seg).toString('latin1'));
  const bucket = parts[1], key = parts.slice(2).join('/');
  const id = bucket + '/' + key;
  if (!key) {
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
      const prefix = url.searchParams.get('prefix') || '';
      let xml = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${xmlEsc(prefix)}</Prefix><IsTruncated>false</IsTruncated>`;
      for (const [k, o] of [...objects.entries()].sort())
        if (k.startsWith(bucket + '/' + prefix))
          xml += `<Contents><Key>${xmlEsc(k.slice(bucket.length + 1))}</Key><LastModified>${o.mtime.toISOString()}</LastModified><Size>${o.body.length}</Size></Contents>`;
      res.writeHead(200, { 'Content-Type': 'application/xml' });
      return res.end(xml + '</ListBucketResult>');
    }
    return s3Error(res, 400, 'InvalidRequest', 'unsupported bucket operation');
  }
  switch (req.method) {
  case 'PUT':
    if (req.headers['if-none-match'] === '*' && objects.has(id))
      return s3Error(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    objects.set(id, { body, mtime: new Date() });
    res.writeHead(200);
    return res.end();
  case 'GET': case 'HEAD': {
    const o = objects.get(id);
    if (!o) {
      if (req.method === 'HEAD') { res.writeHead(404); return res.end(); }
      return s3Error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    }
    res.writeHead(200, { 'Content-Length': o.body.length, 'Last-Modified': o.mtime.toUTCString() });
    return res.end(req.method === 'HEAD' ? undefined : o.body);
  }
  case 'DELETE':
    objects.delete(id);
    res.writeHead(204);
    return res.end();
  default:
    return s3Error(res, 405, 'MethodNotAllowed', req.method);
  }
}

function handle(req, res) {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://stub');
    if (url.pathname === '/__stub/config' && req.method === 'POST') {
      Object.assign(cfg, JSON.parse(body.toString() || '{}'));
      res.writeHead(200); return res.end('ok');
    }
    if (url.pathname === '/__stub/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify(stats));
    }
    if (url.pathname === '/' && req.method === 'POST' && !req.headers['authorization'])
      return sts(req, res, new URLSearchParams(body.toString()));
    if (url.pathname === '/' && req.method === 'GET' && url.searchParams.get('Action'))
      return sts(req, res, url.searchParams);
    return s3(req, res, url, body);
  });
}

const server = process.env.STS_STUB_CERT
  ? https.createServer({ cert: fs.readFileSync(process.env.STS_STUB_CERT), key: fs.readFileSync(process.env.STS_STUB_KEY) }, handle)
  : http.createServer(handle);
server.listen(parseInt(process.argv[2] || '0', 10), '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
