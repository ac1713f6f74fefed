/*
 * objstore_s3.c -- s3://bucket/prefix through libcurl with its SigV4.
 *
 * Requests are signed by curl (CURLOPT_AWS_SIGV4), and checked against a
 * server that verifies signatures (Ceph RGW in the tests).  What curl 7.88
 * does not do is done here: the x-amz-content-sha256 header (UNSIGNED-
 * PAYLOAD; the body's integrity is carried by Content-MD5, which the
 * server checks, and which buckets with Object Lock require), and a sorted,
 * percent-encoded query string (curl signs the query as given).  No header
 * is ever given as "Name:" with no value: curl signs such a header but does
 * not send it, and the server answers 403 SignatureDoesNotMatch (this is
 * how `Expect:` broke every PUT; curl's own 100-continue is left alone).
 *
 * Where a request goes is s3_url.c's job (bucket rules, the endpoint
 * parsed once, every URL built with curl's URL API and checked against the
 * configured host); who signs it is s3_creds.c's (options, environment,
 * web identity through STS, renewed before expiry): perform() asks for the
 * current credentials on every request.
 *
 * Connections are reused through a pool of easy handles (one per call in
 * flight, returned afterwards).
 *
 * Bounds (docs/object-store.md "Timeouts"): a request that moves no bytes
 * for timeout_ms fails (a low-speed limit, so a slow but moving 64 MB PUT
 * is never cut); no retry starts after deadline_ms from the operation's
 * start, so a store that accepts and never answers fails a call within
 * deadline_ms + timeout_ms.  Throttling (429, 503 SlowDown), other 5xx,
 * 400 RequestTimeout, timeouts and connection failures are retried with
 * full-jitter exponential backoff; other 4xx never are.
 *
 * Conditional create is PUT with If-None-Match: * (412 = someone else's
 * object is there).  A 5xx or a transport failure leaves its outcome
 * unknown (RGW answers 500 to a share of lost races; a timed-out PUT may
 * have landed), so the key is read back: our bytes there = created, other
 * bytes = PRECONDITION_FAILED, nothing = retry.  A 412 after such an
 * unknown attempt is read back the same way.
 *
 * Status mapping: 404 NOT_FOUND (NoSuchBucket is INVALID_ARGUMENT naming
 * the bucket, as is a region redirect naming x-amz-bucket-region), 412
 * PRECONDITION_FAILED, 401/403 UNAUTHORIZED (message carries S3's error
 * Code, e.g. SignatureDoesNotMatch), 429/5xx RETRYABLE once retries run
 * out, curl timeouts TIMEOUT, other transport errors IO.
 *
 * Reader handles read ahead when reads are sequential (s3_readahead.c).
 *
 * Deleting many keys (shale_objstore_delete_many) is one DeleteObjects
 * request per 1,000 keys (POST ?delete, Quiet, with the Content-MD5 S3
 * requires).  Keys it reports as not deleted are deleted again one by one,
 * so each failure is retried and reported as a single DELETE's would be;
 * a server without DeleteObjects (405, 501) gets single DELETEs from then
 * on, and so do keys an XML document cannot carry.
 */
#include "objstore/objstore_int.h"
#include "objstore/s3_creds.h"
#include "objstore/s3_url.h"
#include "objstore/s3_xml.h"
#include "util/buf.h"
#include "util/misc.h"
#include "util/status_int.h"

#include "objstore/objstore_s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_MAX 16

static _Atomic uint64_t g_http_requests;

uint64_t objstore_s3_requests(void)
{
    return atomic_load_explicit(&g_http_requests, memory_order_relaxed);
}

typedef struct s3_store {
    shale_objstore base;
    char *bucket;
    char *prefix;            /* "" or "some/prefix/" */
    char *endpoint;          /* scheme://host[:port] */
    bool path_style;
    char *region;
    s3_url_target url;       /* where requests go (s3_url.h) */
    s3_creds *creds;         /* who signs them (s3_creds.h) */
    char *ca_file;           /* CURLOPT_CAINFO, or NULL for the system's */
    char sigv4[128];
    int max_retries, base_ms, max_ms;
    long stall_ms;           /* no bytes for this long: the request fails */
    long deadline_ms;        /* no retry starts later than this */
    _Atomic bool bucket_ok;  /* the bucket was seen to exist */
    _Atomic bool no_multi_delete;  /* the server refused DeleteObjects */
    pthread_mutex_t mu;
    CURL *pool[POOL_MAX];
    int npool;
} s3_store;

typedef struct req {
    const char *method;
    const char *key;          /* NULL for bucket-level (list) */
    const char *query;        /* sorted, already encoded, or NULL */
    const void *body;
    size_t body_len;
    bool if_none_match;
    const char *range;        /* "bytes=a-b" or NULL */
    bool head;
} req;

#define REQ(m, k) ((req){.method = (m), .key = (k)})

typedef struct resp {
    long status;
    shale_buf body;
    uint64_t content_length;
    int64_t mtime_ms;
    CURLcode cc;
    char curl_err[CURL_ERROR_SIZE];
    char code[64];            /* S3 error Code from the body, "" if none */
    char region[64];          /* x-amz-bucket-region, "" if none */
    int attempts;
    int64_t elapsed_ms;
    bool gave_up;             /* the deadline stopped the retries */
} resp;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *take_handle(s3_store *s)
{
    pthread_mutex_lock(&s->mu);
    CURL *h = s->npool ? s->pool[--s->npool] : NULL;
    pthread_mutex_unlock(&s->mu);
    return h ? h : curl_easy_init();
}

static void give_handle(s3_store *s, CURL *h)
{
    pthread_mutex_lock(&s->mu);
    if (s->npool < POOL_MAX) {
        s->pool[s->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (h)
        curl_easy_cleanup(h);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    return buf_append(&r->body, p, sz * n) ? 0 : sz * n;
}

/* Keeps x-amz-bucket-region (a region redirect names it). */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = sz * n;
    static const char name[] = "x-amz-bucket-region:";
    if (len > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
        const char *v = p + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(r->region, sizeof r->region, "%.*s", (int)vl, v);
    }
    return len;
}

/* Content-MD5: base64 of the body's MD5 (the server checks it). */
static bool content_md5(const void *data, size_t len, char *out, size_t outlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (outlen < 25 || !EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        return false;
    EVP_EncodeBlock((unsigned char *)out, md, 16);
    return true;
}

/* Percent-encodes s by SigV4's rules ('/' kept when keep_slash). */
static char *encode(const char *s, bool keep_slash)
{
    return s3_url_encode(s, keep_slash);
}

/* The request URL, built by s3_url.c on the configured host (NULL on
 * failure: keys were validated by objstore.c, so only memory can fail). */
static char *make_url(s3_store *s, const char *key, const char *query)
{
    char *url = NULL;
    return s3_url_build(&s->url, key, query, &url) == SHALE_OK ? url : NULL;
}

static void perform(s3_store *s, const req *q, resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *h = take_handle(s);
    if (!h) {
        r->cc = CURLE_OUT_OF_MEMORY;
        return;
    }
    char *url = make_url(s, q->key, q->query);
    struct curl_slist *hd = NULL;
    char line[4096];
    /* Current credentials (renewed first when temporary ones near expiry). */
    s3_cred cred;
    bool have_cred = s3_creds_get(s->creds, &cred) == SHALE_OK;
    if (!have_cred)
        snprintf(r->curl_err, sizeof r->curl_err, "%s", shale_errmsg());
    hd = curl_slist_append(hd, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (have_cred && cred.token_header)
        hd = curl_slist_append(hd, cred.token_header);
    if (q->if_none_match)
        hd = curl_slist_append(hd, "If-None-Match: *");
    if (q->range) {
        snprintf(line, sizeof line, "Range: %s", q->range);
        hd = curl_slist_append(hd, line);
    }
    bool put = !strcmp(q->method, "PUT") && q->key;
    bool post = !strcmp(q->method, "POST");
    if (put || post) {
        char md5[32];
        hd = curl_slist_append(hd, put ? "Content-Type: application/octet-stream"
                                       : "Content-Type: application/xml");
        if (content_md5(q->body ? q->body : "", q->body_len, md5, sizeof md5)) {
            snprintf(line, sizeof line, "Content-MD5: %s", md5);
            hd = curl_slist_append(hd, line);
        }
    }
    long stall_s = (s->stall_ms + 999) / 1000;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, have_cred ? cred.userpwd : "");
    if (s->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    /* Stalls are bounded, not sizes: fewer than 16 bytes/s for stall_s
     * fails the request, however long a moving transfer takes. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 16L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->stall_ms < 10000 ? s->stall_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    if (q->head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body || !strcmp(q->method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    }
    atomic_fetch_add_explicit(&g_http_requests, 1, memory_order_relaxed);
    r->cc = !have_cred ? CURLE_LOGIN_DENIED : url ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    if (r->cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_off_t cl = -1, ft = -1;
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ft);
        r->content_length = cl >= 0 ? (uint64_t)cl : 0;
        r->mtime_ms = ft >= 0 ? (int64_t)ft * 1000 : 0;
        if (r->status >= 300) {
            char msg[8];
            s3_xml_parse_error((const char *)r->body.data, r->body.len, r->code,
                               sizeof r->code, msg, sizeof msg);
        }
    }
    curl_slist_free_all(hd);
    s3_cred_clear(&cred);
    free(url);
    give_handle(s, h);
}

static bool retryable(const resp *r)
{
    if (r->cc != CURLE_OK)
        return r->cc == CURLE_OPERATION_TIMEDOUT || r->cc == CURLE_COULDNT_CONNECT ||
               r->cc == CURLE_SEND_ERROR || r->cc == CURLE_RECV_ERROR ||
               r->cc == CURLE_GOT_NOTHING || r->cc == CURLE_PARTIAL_FILE;
    /* 501 Not Implemented is an answer, not a passing state. */
    return r->status == 429 || (r->status >= 500 && r->status != 501) ||
           (r->status == 400 && !strcmp(r->code, "RequestTimeout"));
}

/* After an attempt whose outcome is unknown, what does a conditional
 * create's key hold?  1: our bytes (created), 0: other bytes (lost),
 * -1: nothing or the read failed (undecided). */
static int read_back(s3_store *s, const req *q)
{
    req g = REQ("GET", q->key);
    resp r;
    perform(s, &g, &r);
    int v = -1;
    if (r.cc == CURLE_OK && r.status == 200)
        v = r.body.len == q->body_len && (!q->body_len || !memcmp(r.body.data, q->body,
                                                                  q->body_len));
    buf_free(&r.body);
    return v;
}

/* Runs a request with retries within the deadline.  Returns the final
 * response in *r. */
static void run(s3_store *s, const req *q, resp *r)
{
    int64_t start = mono_ms();
    bool unknown = false;  /* a conditional create may have landed */
    for (int attempt = 0;; attempt++) {
        perform(s, q, r);
        r->attempts = attempt + 1;
        r->elapsed_ms = mono_ms() - start;
        if (q->if_none_match && (retryable(r) || (unknown && r->status == 412))) {
            int v = read_back(s, q);
            if (v >= 0) {
                buf_free(&r->body);
                r->cc = CURLE_OK;
                r->status = v ? 200 : 412;
                snprintf(r->code, sizeof r->code, "%s", v ? "" : "PreconditionFailed");
                return;
            }
            unknown = true;
        }
        if (!retryable(r) || attempt >= s->max_retries)
            return;
        uint64_t cap = (uint64_t)s->base_ms << (attempt < 16 ? attempt : 16);
        if (cap > (uint64_t)s->max_ms)
            cap = (uint64_t)s->max_ms;
        uint32_t rnd;
        random_bytes(&rnd, sizeof rnd);
        uint32_t wait = (uint32_t)(rnd % (cap + 1));
        if (mono_ms() + wait - start >= s->deadline_ms) {
            r->gave_up = true;
            return;
        }
        buf_free(&r->body);
        objstore_count_retry();
        sleep_ms(wait);
    }
}

/* Does the bucket exist?  Asked once a 404 without a body (HEAD) leaves
 * it open; cached when it does. */
static bool bucket_missing(s3_store *s)
{
    if (atomic_load(&s->bucket_ok))
        return false;
    req q = REQ("HEAD", NULL);
    q.head = true;
    resp r;
    run(s, &q, &r);
    buf_free(&r.body);
    if (r.cc == CURLE_OK && r.status == 200)
        atomic_store(&s->bucket_ok, true);
    return r.cc == CURLE_OK && r.status == 404;
}

/* Maps a finished response to a status with a message. */
static shale_status status_of(s3_store *s, const req *q, resp *r)
{
    const char *key = q->key ? q->key : "(bucket)";
    const char *uri = s->base.uri ? s->base.uri : "s3";
    char tries[128] = "";
    if (r->attempts > 1 || r->gave_up)
        snprintf(tries, sizeof tries, " (%d attempts in %.1f s%s)", r->attempts,
                 (double)r->elapsed_ms / 1000.0, r->gave_up ? ", deadline reached" : "");
    if (r->cc != CURLE_OK)
        return shale_err(r->cc == CURLE_OPERATION_TIMEDOUT ? SHALE_TIMEOUT
                         : r->cc == CURLE_LOGIN_DENIED ? SHALE_UNAUTHORIZED : SHALE_IO,
                         "%s: %s %s: %s%s%s", uri, q->method, key,
                         r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->cc),
                         r->cc == CURLE_OPERATION_TIMEDOUT ? " (stalled: no bytes moved)" : "",
                         tries);
    if (r->status >= 200 && r->status < 300) {
        if (r->status == 200)
            atomic_store(&s->bucket_ok, true);
        return SHALE_OK;
    }
    char code[128], msg[512];
    s3_xml_parse_error((const char *)r->body.data, r->body.len, code, sizeof code, msg,
                       sizeof msg);
    if (!strcmp(code, "NoSuchBucket") || (r->status == 404 && !r->body.len && q->key &&
                                           bucket_missing(s)))
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: %s %s: bucket '%s' does not exist at %s "
                                                 "(NoSuchBucket)", uri, q->method, key,
                         s->bucket, s->endpoint);
    if (r->status == 301 || r->status == 307 ||
        (r->status == 400 && (r->region[0] || !strcmp(code, "AuthorizationHeaderMalformed"))))
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: %s %s: HTTP %ld %s: bucket '%s' is in "
                                                 "region '%s' (x-amz-bucket-region), requests "
                                                 "are signed for '%s': set the region "
                                                 "(AWS_REGION, s3.region)%s%s", uri, q->method,
                         key, r->status, code[0] ? code : "redirect", s->bucket,
                         r->region[0] ? r->region : "?", s->region, msg[0] ? ": " : "", msg);
    shale_status rc;
    switch (r->status) {
    case 404: rc = SHALE_NOT_FOUND; break;
    case 412: rc = SHALE_PRECONDITION_FAILED; break;
    case 401: case 403: rc = SHALE_UNAUTHORIZED; break;
    case 416: rc = SHALE_INVALID_ARGUMENT; break;
    case 400:  /* a key S3 refuses (not UTF-8, too long) is bad input */
        rc = !strcmp(code, "InvalidObjectName") || !strcmp(code, "KeyTooLongError")
                 ? SHALE_INVALID_ARGUMENT
                 : retryable(r) ? SHALE_RETRYABLE : SHALE_IO;
        break;
    case 429: rc = SHALE_RETRYABLE; break;
    default: rc = retryable(r) ? SHALE_RETRYABLE : SHALE_IO;
    }
    return shale_err(rc, "%s: %s %s: HTTP %ld %s%s%s%s", uri, q->method, key, r->status,
                     code[0] ? code : "", msg[0] ? ": " : "", msg, tries);
}

static shale_status s3_put(shale_objstore *st, const char *key, const void *data, size_t len,
                           bool if_absent)
{
    s3_store *s = (s3_store *)st;
    req q = REQ("PUT", key);
    q.body = data ? data : "";
    q.body_len = len;
    q.if_none_match = if_absent;
    resp r;
    run(s, &q, &r);
    shale_status rc = status_of(s, &q, &r);
    if (r.status == 409 && if_absent)  /* ConditionalRequestConflict: a racing create */
        rc = SHALE_PRECONDITION_FAILED;
    buf_free(&r.body);
    return rc;
}

static shale_status s3_head(shale_objstore *st, const char *key, uint64_t *size,
                            int64_t *mtime_ms)
{
    s3_store *s = (s3_store *)st;
    req q = REQ("HEAD", key);
    q.head = true;
    resp r;
    run(s, &q, &r);
    shale_status rc = status_of(s, &q, &r);
    if (!rc) {
        *size = r.content_length;
        *mtime_ms = r.mtime_ms;
    }
    buf_free(&r.body);
    return rc;
}

static shale_status s3_get_range(shale_objstore *st, const char *key, uint64_t offset,
                                 uint64_t len, bool whole, void **data, size_t *got)
{
    s3_store *s = (s3_store *)st;
    char range[64];
    if (!whole && len == 0) {
        /* Zero bytes: no request can express it; check existence only. */
        uint64_t size;
        int64_t mt;
        shale_status rc = s3_head(st, key, &size, &mt);
        if (rc)
            return rc;
        if (offset > size)
            return shale_err(SHALE_INVALID_ARGUMENT, "%s: range offset %llu past the end of "
                                                     "%s", st->uri, (unsigned long long)offset,
                             key);
        *data = malloc(1);
        *got = 0;
        return *data ? SHALE_OK : SHALE_OOM();
    }
    if (!whole)
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
                 (unsigned long long)(offset + len - 1));
    req q = REQ("GET", key);
    q.range = whole ? NULL : range;
    resp r;
    run(s, &q, &r);
    shale_status rc = status_of(s, &q, &r);
    if (rc == SHALE_INVALID_ARGUMENT && !whole) {
        /* 416: the range starts at or past the end; at the end is empty. */
        uint64_t size;
        int64_t mt;
        buf_free(&r.body);
        rc = s3_head(st, key, &size, &mt);
        if (!rc && offset == size) {
            *data = malloc(1);
            *got = 0;
            return *data ? SHALE_OK : SHALE_OOM();
        }
        return rc ? rc : shale_err(SHALE_INVALID_ARGUMENT, "%s: range offset %llu past the "
                                                           "end of %s (%llu bytes)", st->uri,
                                   (unsigned long long)offset, key, (unsigned long long)size);
    }
    if (!rc && !whole && r.body.len > len) {
        /* A server that ignored the range (200, or a 206 with the
         * whole object for "bytes=0-0"): cut the answer ourselves. */
        size_t n = r.body.len;
        if (offset > n) {
            buf_free(&r.body);
            return shale_err(SHALE_INVALID_ARGUMENT, "%s: range offset past the end of %s",
                             st->uri, key);
        }
        size_t take = len < n - offset ? (size_t)len : n - (size_t)offset;
        memmove(r.body.data, r.body.data + offset, take);
        r.body.len = take;
    }
    if (rc) {
        buf_free(&r.body);
        return rc;
    }
    *data = buf_detach(&r.body, got);
    return *data ? SHALE_OK : SHALE_OOM();
}

static shale_status s3_del(shale_objstore *st, const char *key)
{
    s3_store *s = (s3_store *)st;
    req q = REQ("DELETE", key);
    resp r;
    run(s, &q, &r);
    shale_status rc = status_of(s, &q, &r);
    buf_free(&r.body);
    return rc == SHALE_NOT_FOUND ? SHALE_OK : rc;
}

#define DELETE_BATCH 1000  /* S3's limit for one DeleteObjects */

static shale_status del_each(shale_objstore *st, const char *const *keys, size_t n)
{
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = s3_del(st, keys[i]);
    return rc;
}

/* One DeleteObjects of keys[0..n), n <= DELETE_BATCH. */
static shale_status del_batch(s3_store *s, const char *const *keys, size_t n)
{
    char *body = NULL;
    size_t len = 0;
    shale_status rc = n < 2 || atomic_load(&s->no_multi_delete)
                          ? SHALE_INVALID_ARGUMENT
                          : s3_xml_build_delete(s->prefix, keys, n, &body, &len);
    if (rc == SHALE_INVALID_ARGUMENT)
        return del_each(&s->base, keys, n);
    if (rc)
        return rc;
    req q = REQ("POST", NULL);
    q.query = "delete=";  /* "delete" alone is signed differently by curl and the server */
    q.body = body;
    q.body_len = len;
    resp r;
    run(s, &q, &r);
    free(body);
    if (r.cc == CURLE_OK && (r.status == 405 || r.status == 501)) {
        /* Not every S3-compatible server has DeleteObjects. */
        atomic_store(&s->no_multi_delete, true);
        buf_free(&r.body);
        return del_each(&s->base, keys, n);
    }
    rc = status_of(s, &q, &r);
    s3_delete_failure *f = NULL;
    size_t nf = 0;
    if (!rc)
        rc = s3_xml_parse_delete(s->base.uri, (const char *)r.body.data, r.body.len, s->prefix,
                                 &f, &nf);
    buf_free(&r.body);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
        return shale_err(rc, "%s (DeleteObjects of %zu keys from '%s')", msg, n, keys[0]);
    }
    /* What it did not delete (throttled, refused): once more each, with a
     * single DELETE's retries and message.  A missing key was deleted. */
    for (size_t i = 0; i < nf && !rc; i++)
        if (strcmp(f[i].code, "NoSuchKey"))
            rc = s3_del(&s->base, f[i].key);
    s3_xml_delete_failures_free(f, nf);
    return rc;
}

static shale_status s3_del_many(shale_objstore *st, const char *const *keys, size_t n)
{
    shale_status rc = SHALE_OK;
    for (size_t at = 0; at < n && !rc; at += DELETE_BATCH)
        rc = del_batch((s3_store *)st, keys + at, n - at < DELETE_BATCH ? n - at : DELETE_BATCH);
    return rc;
}

/* Pages with start-after, not continuation tokens: the cursor is a key
 * (the page's last, as on every backend), so a caller can also list the
 * keys after one it knows (the manifest after the current version) in one
 * request. */
static shale_status s3_list(shale_objstore *st, const char *prefix, const char *cursor,
                            size_t max_keys, shale_objlist *page)
{
    s3_store *s = (s3_store *)st;
    if (cursor && !*cursor)
        cursor = NULL;
    size_t n = strlen(s->prefix) + strlen(prefix) + (cursor ? strlen(cursor) : 0) + 1;
    char *full = malloc(n), *ep = NULL, *ec = NULL, *query = NULL;
    shale_status rc = SHALE_OK;
    if (!full)
        return SHALE_OOM();
    snprintf(full, n, "%s%s", s->prefix, prefix);
    ep = encode(full, false);
    if (cursor) {
        snprintf(full, n, "%s%s", s->prefix, cursor);
        ec = encode(full, false);
    }
    free(full);
    size_t qn = (ep ? strlen(ep) : 0) + (ec ? strlen(ec) : 0) + 96;
    if (!ep || (cursor && !ec) || !(query = malloc(qn))) {
        rc = SHALE_OOM();
        goto out;
    }
    /* Sorted parameter names: curl signs the query as given.  Keys come
     * back percent-encoded (encoding-type=url): any byte a key may hold
     * survives the XML. */
    snprintf(query, qn, "encoding-type=url&list-type=2&max-keys=%zu&prefix=%s%s%s",
             max_keys ? max_keys : 1000, ep, ec ? "&start-after=" : "", ec ? ec : "");
    req q = REQ("GET", NULL);
    q.query = query;
    resp r;
    run(s, &q, &r);
    rc = status_of(s, &q, &r);
    if (!rc)
        rc = s3_xml_parse_list(st->uri, (const char *)r.body.data, r.body.len, s->prefix, true,
                               page);
    buf_free(&r.body);
    if (!rc && page->next_cursor) {
        free(page->next_cursor);
        page->next_cursor = page->count ? xstrdup(page->items[page->count - 1].key) : NULL;
        if (!page->next_cursor) {
            shale_objlist_free(page);
            rc = shale_err(SHALE_CORRUPT, "%s: a truncated list page without keys", st->uri);
        }
    }
out:
    free(ep);
    free(ec);
    free(query);
    return rc;
}

static void s3_close(shale_objstore *st)
{
    s3_store *s = (s3_store *)st;
    for (int i = 0; i < s->npool; i++)
        curl_easy_cleanup(s->pool[i]);
    pthread_mutex_destroy(&s->mu);
    free(s->bucket);
    free(s->prefix);
    free(s->endpoint);
    free(s->region);
    s3_url_target_free(&s->url);
    s3_creds_release(s->creds);   /* wipes the secrets it holds */
    free(s->ca_file);
    free(s);
}

static const objstore_ops s3_ops = {
    .scheme = "s3", .put = s3_put, .get_range = s3_get_range, .head = s3_head,
    .del = s3_del, .del_many = s3_del_many, .list = s3_list, .close = s3_close,
    .self_retrying = true,
    .reader_open = objstore_s3_reader_open, .reader_read = objstore_s3_reader_read,
    .reader_close = objstore_s3_reader_close,
};

static const char *pick(const char *opt, const char *env)
{
    if (opt && *opt)
        return opt;
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

shale_status objstore_s3_open(const char *rest, const shale_objstore_options *o,
                              shale_objstore **out)
{
    pthread_once(&g_curl_once, curl_init_once);
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *region = pick(o->s3_region, "AWS_REGION");
    const char *endpoint = pick(o->s3_endpoint, "AWS_ENDPOINT_URL");
    const char *ca = pick(o->s3_ca_file, "AWS_CA_BUNDLE");
    char *bucket = strndup(rest, blen), *where = NULL;
    s3_store *s = calloc(1, sizeof *s);
    if (!bucket || !s || asprintf(&where, "s3://%s", rest) < 0) {
        free(bucket);
        free(s);
        return SHALE_OOM();
    }
    pthread_mutex_init(&s->mu, NULL);
    s->base.ops = &s3_ops;
    shale_status rc = SHALE_OK;
    s->region = xstrdup(region ? region : "us-east-1");
    if (!s->region) {
        rc = SHALE_OOM();
        goto out;
    }
    /* The region becomes part of a host name and of the signing scope. */
    if ((rc = s3_region_check(s->region)))
        goto out;
    if (endpoint)
        s->endpoint = xstrdup(endpoint);
    else if (asprintf(&s->endpoint, "https://s3.%s.amazonaws.com", s->region) < 0)
        s->endpoint = NULL;
    if (!s->endpoint) {
        rc = SHALE_OOM();
        goto out;
    }
    s->path_style = o->s3_path_style == 1 || (o->s3_path_style == -1 && endpoint);
    /* Bucket, prefix and endpoint are checked once here; every URL is then
     * built from the checked parts (s3_url.h). */
    if ((rc = s3_url_target_init(&s->url, s->endpoint, bucket, slash ? slash + 1 : "",
                                 s->path_style)))
        goto out;
    s->bucket = xstrdup(s->url.bucket);
    s->prefix = xstrdup(s->url.prefix);
    s->ca_file = ca ? xstrdup(ca) : NULL;
    if (!s->bucket || !s->prefix || (ca && !s->ca_file)) {
        rc = SHALE_OOM();
        goto out;
    }
    if (ca && access(ca, R_OK) != 0) {
        rc = shale_err(SHALE_INVALID_ARGUMENT, "%s: cannot read the CA bundle '%s' (%s): %s",
                       where, ca, o->s3_ca_file && *o->s3_ca_file
                       ? "s3_ca_file: agent s3.caFile, shale --ca-file" : "AWS_CA_BUNDLE",
                       strerror(errno));
        goto out;
    }
    snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", s->region);
    s->max_retries = o->max_retries < 0 ? 0 : o->max_retries;
    s->base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : 50;
    s->max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : 2000;
    s->stall_ms = o->timeout_ms > 0 ? o->timeout_ms : 20000;
    s->deadline_ms = o->deadline_ms > 0 ? o->deadline_ms : 60000;
    /* Credentials last: web identity calls STS, which is pointless for a
     * store whose URI is wrong. */
    s3_creds_config cc = {
        .access_key = o->s3_access_key, .secret_key = o->s3_secret_key,
        .session_token = o->s3_session_token, .region = s->region, .ca_file = s->ca_file,
        .timeout_ms = s->stall_ms < 10000 ? s->stall_ms : 10000,
    };
    if ((rc = s3_creds_new(&cc, where, &s->creds)))
        goto out;
    s3_url_warn_plain_http(&s->url);
out:
    free(bucket);
    free(where);
    if (rc) {
        s3_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return SHALE_OK;
}
