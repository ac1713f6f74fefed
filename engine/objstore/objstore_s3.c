/*
 * objstore_s3.c -- s3://bucket/prefix through libcurl with its SigV4.
 *
 * Requests are signed by curl (CURLOPT_AWS_SIGV4).  Two things curl 7.88
 * does not do are done here: the x-amz-content-sha256 header (S3 and
 * S3-protocol servers require it; UNSIGNED-PAYLOAD is sent, which S3 allows
 * over TLS and s3rver accepts), and sorting the query string, which curl
 * signs as given: every query is built in sorted order.
 *
 * Where a request goes is s3_url.c's job (bucket rules, the endpoint
 * parsed once, every URL built with curl's URL API and checked against the
 * configured host); who signs it is s3_creds.c's (options, environment,
 * web identity through STS, renewed before expiry): perform() asks for the
 * current credentials on every request.
 *
 * Connections are reused through a pool of easy handles (one per call in
 * flight, returned afterwards).  Throttling (429, 503 SlowDown), other 5xx,
 * timeouts and connection failures are retried with full-jitter exponential
 * backoff; other 4xx never are.  Conditional create is PUT with
 * If-None-Match: * (412 = someone else's object is there).
 *
 * Status mapping: 404 NOT_FOUND, 412 PRECONDITION_FAILED, 401/403
 * UNAUTHORIZED (message carries S3's error Code, e.g.
 * SignatureDoesNotMatch), 429/5xx RETRYABLE once retries run out, curl
 * timeouts TIMEOUT, other transport errors IO.
 */
#include "objstore/objstore_int.h"
#include "objstore/s3_creds.h"
#include "objstore/s3_url.h"
#include "objstore/s3_xml.h"
#include "util/buf.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_MAX 16

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
    long timeout_ms;
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

typedef struct resp {
    long status;
    shale_buf body;
    uint64_t content_length;
    int64_t mtime_ms;
    CURLcode cc;
    char curl_err[CURL_ERROR_SIZE];
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
    if (q->body) {
        hd = curl_slist_append(hd, "Content-Type: application/octet-stream");
        hd = curl_slist_append(hd, "Expect:");
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, have_cred ? cred.userpwd : "");
    if (s->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms < 10000 ? s->timeout_ms : 10000);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    if (q->head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body || !strcmp(q->method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    }
    r->cc = !have_cred ? CURLE_LOGIN_DENIED : url ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    if (r->cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_off_t cl = -1, ft = -1;
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ft);
        r->content_length = cl >= 0 ? (uint64_t)cl : 0;
        r->mtime_ms = ft >= 0 ? (int64_t)ft * 1000 : 0;
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
    return r->status == 429 || r->status >= 500;
}

/* Runs a request with retries.  Returns the final response in *r. */
static void run(s3_store *s, const req *q, resp *r)
{
    for (int attempt = 0;; attempt++) {
        perform(s, q, r);
        if (!retryable(r) || attempt >= s->max_retries)
            return;
        uint64_t cap = (uint64_t)s->base_ms << (attempt < 16 ? attempt : 16);
        if (cap > (uint64_t)s->max_ms)
            cap = (uint64_t)s->max_ms;
        uint32_t rnd;
        random_bytes(&rnd, sizeof rnd);
        buf_free(&r->body);
        objstore_count_retry();
        sleep_ms((uint32_t)(rnd % (cap + 1)));
    }
}

/* Maps a finished response to a status with a message. */
static shale_status status_of(s3_store *s, const req *q, resp *r)
{
    const char *key = q->key ? q->key : "(bucket)";
    if (r->cc != CURLE_OK)
        return shale_err(r->cc == CURLE_OPERATION_TIMEDOUT ? SHALE_TIMEOUT
                         : r->cc == CURLE_LOGIN_DENIED ? SHALE_UNAUTHORIZED : SHALE_IO,
                         "%s: %s %s: %s", s->base.uri ? s->base.uri : "s3", q->method, key,
                         r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->cc));
    if (r->status >= 200 && r->status < 300)
        return SHALE_OK;
    char code[128], msg[512];
    s3_xml_parse_error((const char *)r->body.data, r->body.len, code, sizeof code, msg,
                       sizeof msg);
    shale_status rc;
    switch (r->status) {
    case 404: rc = SHALE_NOT_FOUND; break;
    case 412: rc = SHALE_PRECONDITION_FAILED; break;
    case 401: case 403: rc = SHALE_UNAUTHORIZED; break;
    case 416: rc = SHALE_INVALID_ARGUMENT; break;
    case 429: rc = SHALE_RETRYABLE; break;
    default: rc = r->status >= 500 ? SHALE_RETRYABLE : SHALE_IO;
    }
    return shale_err(rc, "%s: %s %s: HTTP %ld %s%s%s", s->base.uri ? s->base.uri : "s3",
                     q->method, key, r->status, code[0] ? code : "", msg[0] ? ": " : "", msg);
}

static shale_status s3_put(shale_objstore *st, const char *key, const void *data, size_t len,
                           bool if_absent)
{
    s3_store *s = (s3_store *)st;
    req q = {"PUT", key, NULL, data ? data : "", len, if_absent, NULL, false};
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
    req q = {"HEAD", key, NULL, NULL, 0, false, NULL, true};
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
    req q = {"GET", key, NULL, NULL, 0, false, whole ? NULL : range, false};
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
        /* A server that ignored the range (200, or s3rver's 206 with the
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
    req q = {"DELETE", key, NULL, NULL, 0, false, NULL, false};
    resp r;
    run(s, &q, &r);
    shale_status rc = status_of(s, &q, &r);
    buf_free(&r.body);
    return rc == SHALE_NOT_FOUND ? SHALE_OK : rc;
}

static shale_status s3_list(shale_objstore *st, const char *prefix, const char *cursor,
                            size_t max_keys, shale_objlist *page)
{
    s3_store *s = (s3_store *)st;
    size_t n = strlen(s->prefix) + strlen(prefix) + 1;
    char *full = malloc(n);
    if (!full)
        return SHALE_OOM();
    snprintf(full, n, "%s%s", s->prefix, prefix);
    char *ep = encode(full, false), *ec = cursor ? encode(cursor, false) : NULL;
    free(full);
    size_t qn = (ep ? strlen(ep) : 0) + (ec ? strlen(ec) : 0) + 96;
    char *query = malloc(qn);
    shale_status rc = SHALE_OK;
    if (!ep || (cursor && !ec) || !query) {
        rc = SHALE_OOM();
        goto out;
    }
    /* Sorted parameter names: curl signs the query as given. */
    snprintf(query, qn, "%s%s%slist-type=2&max-keys=%zu&prefix=%s", ec ? "continuation-token=" : "",
             ec ? ec : "", ec ? "&" : "", max_keys, ep);
    req q = {"GET", NULL, query, NULL, 0, false, NULL, false};
    resp r;
    run(s, &q, &r);
    rc = status_of(s, &q, &r);
    if (!rc)
        rc = s3_xml_parse_list(st->uri, (const char *)r.body.data, r.body.len, s->prefix, page);
    buf_free(&r.body);
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
    .del = s3_del, .list = s3_list, .close = s3_close, .self_retrying = true,
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
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    /* Credentials last: web identity calls STS, which is pointless for a
     * store whose URI is wrong. */
    s3_creds_config cc = {
        .access_key = o->s3_access_key, .secret_key = o->s3_secret_key,
        .session_token = o->s3_session_token, .region = s->region, .ca_file = s->ca_file,
        .timeout_ms = s->timeout_ms < 10000 ? s->timeout_ms : 10000,
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
