/* s3_creds.c -- see s3_creds.h. */
#include "objstore/s3_creds.h"
#include "objstore/s3_url.h"
#include "util/buf.h"
#include "util/misc.h"
#include "util/status_int.h"
#include "util/warn.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_FILE_MAX (64 * 1024)   /* a projected service-account token is ~1 KiB */
#define STS_BODY_MAX (1u << 20)
#define STS_ATTEMPTS 3

struct s3_creds {
    s3_creds_source source;
    int refs;                     /* guarded by g_reg_mu */
    s3_creds *next;               /* registry of shared web-identity providers */
    char *key;                    /* registry key */
    /* Web identity: fixed after creation. */
    char *where, *role_arn, *token_file, *session_name, *sts_endpoint, *ca_file;
    long timeout_ms;
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
    /* Current credentials (guarded by mu; static ones never change). */
    pthread_mutex_t mu;
    pthread_mutex_t fetch_mu;     /* one STS call at a time */
    char *userpwd, *token_header;
    char access_key[128];
    int64_t expires_ms, next_try_ms;
};

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static s3_creds *g_reg;
static atomic_uint_least64_t g_sts_calls;

uint64_t s3_creds_sts_calls(void)
{
    return atomic_load(&g_sts_calls);
}

static int64_t real_clock(void *ud)
{
    (void)ud;
    return now_ms();
}

static int64_t clock_now(const s3_creds *c)
{
    return c->clock_ms(c->clock_ud);
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Installs a key pair (and token) as c's current credentials. */
static shale_status set_current(s3_creds *c, const char *ak, const char *sk, const char *tok,
                                int64_t expires_ms)
{
    if (strlen(ak) >= sizeof c->access_key || strchr(ak, ':') || !*ak || !*sk)
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: access key id is empty, longer than %zu "
                         "bytes or contains ':'", c->where, sizeof c->access_key - 1);
    char *up = NULL, *th = NULL;
    if (asprintf(&up, "%s:%s", ak, sk) < 0)
        return SHALE_OOM();
    if (tok && *tok && asprintf(&th, "x-amz-security-token: %s", tok) < 0) {
        wipe_free(up);
        return SHALE_OOM();
    }
    wipe_free(c->userpwd);
    wipe_free(c->token_header);
    c->userpwd = up;
    c->token_header = th;
    snprintf(c->access_key, sizeof c->access_key, "%s", ak);
    c->expires_ms = expires_ms;
    return SHALE_OK;
}

static shale_status copy_current(const s3_creds *c, s3_cred *out)
{
    memset(out, 0, sizeof *out);
    out->userpwd = xstrdup(c->userpwd);
    out->token_header = c->token_header ? xstrdup(c->token_header) : NULL;
    snprintf(out->access_key, sizeof out->access_key, "%s", c->access_key);
    out->expires_ms = c->expires_ms;
    if (!out->userpwd || (c->token_header && !out->token_header)) {
        s3_cred_clear(out);
        return SHALE_OOM();
    }
    return SHALE_OK;
}

void s3_cred_clear(s3_cred *c)
{
    if (!c)
        return;
    wipe_free(c->userpwd);
    wipe_free(c->token_header);
    memset(c, 0, sizeof *c);
}

static void creds_free(s3_creds *c)
{
    if (!c)
        return;
    wipe_free(c->userpwd);
    wipe_free(c->token_header);
    free(c->key);
    free(c->where);
    free(c->role_arn);
    free(c->token_file);
    free(c->session_name);
    free(c->sts_endpoint);
    free(c->ca_file);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->fetch_mu);
    free(c);
}

/* ---- STS AssumeRoleWithWebIdentity ------------------------------------ */

/* Reads the token file (re-read on every fetch: the kubelet rotates it).
 * *tok is malloc'd, trailing whitespace removed. */
static shale_status read_token(const s3_creds *c, char **tok)
{
    *tok = NULL;
    int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: cannot read the web identity token file "
                         "'%s' (AWS_WEB_IDENTITY_TOKEN_FILE): %s", c->where, c->token_file,
                         strerror(errno));
    char *b = malloc(TOKEN_FILE_MAX + 1);
    size_t n = 0;
    ssize_t r = 0;
    while (b && n < TOKEN_FILE_MAX && (r = read(fd, b + n, TOKEN_FILE_MAX - n)) > 0)
        n += (size_t)r;
    int err = errno;
    close(fd);
    if (!b)
        return SHALE_OOM();
    if (r < 0) {
        free(b);
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: reading the web identity token file "
                         "'%s': %s", c->where, c->token_file, strerror(err));
    }
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' || b[n - 1] == '\t'))
        n--;
    b[n] = '\0';
    if (n == 0 || n >= TOKEN_FILE_MAX || strlen(b) != n) {
        free(b);
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: the web identity token file '%s' is %s",
                         c->where, c->token_file, n == 0 ? "empty" : n >= TOKEN_FILE_MAX
                         ? "larger than 64 KiB" : "not text (it holds a NUL byte)");
    }
    *tok = b;
    return SHALE_OK;
}

static bool is_el(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name);
}

static xmlNode *child(const xmlNode *n, const char *name)
{
    for (xmlNode *k = n ? n->children : NULL; k; k = k->next)
        if (is_el(k, name))
            return k;
    return NULL;
}

/* Text of child `name` of n, malloc'd, or NULL. */
static char *child_text(const xmlNode *n, const char *name)
{
    xmlNode *k = child(n, name);
    if (!k)
        return NULL;
    xmlChar *t = xmlNodeGetContent(k);
    char *s = t ? xstrdup((const char *)t) : NULL;
    if (t) {
        memset(t, 0, strlen((const char *)t));
        xmlFree(t);
    }
    return s;
}

/* "2026-12-01T22:00:00Z", fractions allowed: ms since the epoch, -1 if not
 * that form. */
static int64_t parse_iso8601(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    const char *rest = s + used;
    if (*rest == '.')
        rest += 1 + strspn(rest + 1, "0123456789");
    if (strcmp(rest, "Z") && strcmp(rest, "+00:00"))
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (int64_t)t * 1000;
}

static xmlDocPtr parse_xml(const shale_buf *b)
{
    if (!b->len || b->len > STS_BODY_MAX)
        return NULL;
    /* No network, no entities, no DTD: the body is data from a server. */
    return xmlReadMemory((const char *)b->data, (int)b->len, "sts.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* The message for a non-200 answer: STS's Code and Message when the body
 * is an <ErrorResponse>. */
static shale_status sts_error(const s3_creds *c, long status, const shale_buf *body)
{
    xmlDocPtr doc = parse_xml(body);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *err = is_el(root, "ErrorResponse") ? child(root, "Error")
                   : is_el(root, "Error") ? root : NULL;
    char *code = err ? child_text(err, "Code") : NULL;
    char *msg = err ? child_text(err, "Message") : NULL;
    xmlFreeDoc(doc);
    shale_status rc = status >= 500 || status == 429 ? SHALE_RETRYABLE
                      : status == 400 || status == 401 || status == 403 ? SHALE_UNAUTHORIZED
                      : SHALE_IO;
    rc = shale_err(rc, "%s: STS AssumeRoleWithWebIdentity at %s for role %s: HTTP %ld %s%s%s",
                   c->where, c->sts_endpoint, c->role_arn, status,
                   code ? code : "(no STS error document)", msg ? ": " : "", msg ? msg : "");
    free(code);
    free(msg);
    return rc;
}

/* Parses a 200 answer into its credentials. */
static shale_status sts_parse(const s3_creds *c, const shale_buf *body, char **ak, char **sk,
                              char **tok, int64_t *exp)
{
    *ak = *sk = *tok = NULL;
    xmlDocPtr doc = parse_xml(body);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    shale_status rc = SHALE_OK;
    if (!root) {
        rc = shale_err(SHALE_CORRUPT, "%s: STS answer (HTTP 200, %zu bytes) from %s is not XML",
                       c->where, body->len, c->sts_endpoint);
        goto out;
    }
    xmlNode *cr = child(child(root, "AssumeRoleWithWebIdentityResult"), "Credentials");
    if (!is_el(root, "AssumeRoleWithWebIdentityResponse") || !cr) {
        rc = shale_err(SHALE_CORRUPT, "%s: STS answer from %s is a <%s>, not an "
                       "AssumeRoleWithWebIdentityResponse with Result/Credentials", c->where,
                       c->sts_endpoint, (const char *)root->name);
        goto out;
    }
    *ak = child_text(cr, "AccessKeyId");
    *sk = child_text(cr, "SecretAccessKey");
    *tok = child_text(cr, "SessionToken");
    char *e = child_text(cr, "Expiration");
    *exp = e ? parse_iso8601(e) : -1;
    const char *missing = !*ak || !**ak ? "AccessKeyId" : !*sk || !**sk ? "SecretAccessKey"
                          : !*tok || !**tok ? "SessionToken" : !e ? "Expiration" : NULL;
    if (missing)
        rc = shale_err(SHALE_CORRUPT, "%s: STS answer from %s has no %s in its Credentials",
                       c->where, c->sts_endpoint, missing);
    else if (*exp < 0)
        rc = shale_err(SHALE_CORRUPT, "%s: STS answer from %s has an Expiration '%.40s' that "
                       "is not an ISO 8601 UTC time", c->where, c->sts_endpoint, e);
    free(e);
out:
    xmlFreeDoc(doc);
    if (rc) {
        wipe_free(*ak);
        wipe_free(*sk);
        wipe_free(*tok);
        *ak = *sk = *tok = NULL;
    }
    return rc;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    shale_buf *b = ud;
    if (b->len + sz * n > STS_BODY_MAX)
        return 0;
    return buf_append(b, p, sz * n) ? 0 : sz * n;
}

/* One STS exchange: token file -> temporary credentials installed in c
 * (the caller holds fetch_mu, not mu). */
static shale_status sts_fetch(s3_creds *c)
{
    char *tok = NULL, *form = NULL, *e_arn = NULL, *e_name = NULL, *e_tok = NULL;
    char *ak = NULL, *sk = NULL, *st = NULL;
    shale_buf body = {0};
    struct curl_slist *hd = NULL;
    CURL *h = NULL;
    shale_status rc = read_token(c, &tok);
    if (rc)
        return rc;
    e_arn = s3_url_encode(c->role_arn, false);
    e_name = s3_url_encode(c->session_name, false);
    e_tok = s3_url_encode(tok, false);
    if (!e_arn || !e_name || !e_tok ||
        asprintf(&form, "Action=AssumeRoleWithWebIdentity&RoleArn=%s&RoleSessionName=%s"
                 "&Version=2011-06-15&WebIdentityToken=%s", e_arn, e_name, e_tok) < 0) {
        form = NULL;
        rc = SHALE_OOM();
        goto out;
    }
    hd = curl_slist_append(hd, "Content-Type: application/x-www-form-urlencoded");
    hd = curl_slist_append(hd, "Accept: application/xml");
    h = curl_easy_init();
    if (!h || !hd) {
        rc = SHALE_OOM();
        goto out;
    }
    char errbuf[CURL_ERROR_SIZE];
    for (int attempt = 1;; attempt++) {
        buf_free(&body);
        errbuf[0] = '\0';
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, c->sts_endpoint);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        if (c->ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        atomic_fetch_add(&g_sts_calls, 1);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK)
            rc = shale_err(cc == CURLE_OPERATION_TIMEDOUT ? SHALE_TIMEOUT : SHALE_IO,
                           "%s: STS AssumeRoleWithWebIdentity at %s: %s", c->where,
                           c->sts_endpoint, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        else if (status != 200)
            rc = sts_error(c, status, &body);
        else
            rc = SHALE_OK;
        /* Retried: throttling, 5xx, and a network that may come back; a
         * TLS or URL problem will not mend itself. */
        bool transient = rc == SHALE_RETRYABLE ||
                         (cc != CURLE_OK && (cc == CURLE_OPERATION_TIMEDOUT ||
                                             cc == CURLE_COULDNT_CONNECT ||
                                             cc == CURLE_COULDNT_RESOLVE_HOST ||
                                             cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
                                             cc == CURLE_GOT_NOTHING));
        if (!transient || attempt >= STS_ATTEMPTS)
            break;
        sleep_ms(100u << attempt);   /* backoff between attempts, not synchronisation */
    }
    if (rc)
        goto out;
    int64_t exp = 0;
    rc = sts_parse(c, &body, &ak, &sk, &st, &exp);
    if (rc)
        goto out;
    pthread_mutex_lock(&c->mu);
    rc = set_current(c, ak, sk, st, exp);
    if (!rc)
        c->next_try_ms = 0;
    pthread_mutex_unlock(&c->mu);
out:
    wipe_free(tok);
    wipe_free(e_tok);
    wipe_free(form);
    free(e_arn);
    free(e_name);
    wipe_free(ak);
    wipe_free(sk);
    wipe_free(st);
    if (body.data)
        memset(body.data, 0, body.len);
    buf_free(&body);
    curl_slist_free_all(hd);
    if (h)
        curl_easy_cleanup(h);
    return rc;
}

shale_status s3_creds_get(s3_creds *c, s3_cred *out)
{
    memset(out, 0, sizeof *out);
    if (c->source != S3_CREDS_WEB_IDENTITY)
        return copy_current(c, out);   /* static: never changes */
    pthread_mutex_lock(&c->mu);
    int64_t now = clock_now(c);
    bool have = c->userpwd != NULL;
    bool fresh = have && now < c->expires_ms - S3_CREDS_REFRESH_MS;
    bool valid = have && now < c->expires_ms;
    if (fresh || (valid && now < c->next_try_ms)) {
        shale_status rc = copy_current(c, out);
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    pthread_mutex_unlock(&c->mu);
    /* Near expiry and another thread is renewing: the old ones still do. */
    if (valid && pthread_mutex_trylock(&c->fetch_mu) != 0) {
        pthread_mutex_lock(&c->mu);
        shale_status rc = copy_current(c, out);
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    if (!valid)
        pthread_mutex_lock(&c->fetch_mu);
    /* Someone may have renewed them while this thread waited. */
    pthread_mutex_lock(&c->mu);
    now = clock_now(c);
    if (c->userpwd && now < c->expires_ms - S3_CREDS_REFRESH_MS) {
        shale_status rc = copy_current(c, out);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->fetch_mu);
        return rc;
    }
    pthread_mutex_unlock(&c->mu);
    shale_status rc = sts_fetch(c);
    pthread_mutex_lock(&c->mu);
    if (rc && c->userpwd && clock_now(c) < c->expires_ms) {
        /* Still valid: keep using them, say so, try again later. */
        char why[512];
        snprintf(why, sizeof why, "%s", shale_errmsg());
        c->next_try_ms = clock_now(c) + S3_CREDS_RETRY_MS;
        int64_t left = (c->expires_ms - clock_now(c)) / 1000;
        rc = copy_current(c, out);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->fetch_mu);
        shale_warn("renewing web identity credentials failed; the current ones expire in "
                   "%lld s: %s", (long long)left, why);
        return rc;
    }
    if (!rc)
        rc = copy_current(c, out);   /* just fetched: used even if already near expiry */
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->fetch_mu);
    return rc;
}

/* ---- Making providers ------------------------------------------------- */

static bool session_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_+=,.@-", *p)))
            return false;
    return true;
}

shale_status s3_creds_regional_sts(const char *region, char **out)
{
    *out = NULL;
    const char *r = region ? region : "us-east-1";
    shale_status rc = s3_region_check(r);
    if (rc)
        return rc;
    if (asprintf(out, "https://sts.%s.amazonaws.com%s/", r, strncmp(r, "cn-", 3) ? "" : ".cn")
        < 0) {
        *out = NULL;
        return SHALE_OOM();
    }
    return SHALE_OK;
}

/* The STS endpoint (AWS_STS_ENDPOINT checked through curl's URL API, else
 * the regional one); *out malloc'd. */
static shale_status sts_endpoint(const char *where, const char *region, char **out)
{
    *out = NULL;
    const char *ov = env("AWS_STS_ENDPOINT");
    if (!ov) {
        shale_status rc = s3_creds_regional_sts(region, out);
        return rc == SHALE_INVALID_ARGUMENT ? shale_err_prefix(rc, "%s: ", where) : rc;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *host = NULL, *got = NULL;
    shale_status rc = SHALE_OK;
    if (!u)
        return SHALE_OOM();
    if (curl_url_set(u, CURLUPART_URL, ov, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") && strcmp(scheme, "https")) ||
        curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &got, 0) != CURLUE_OK) {
        rc = shale_err(SHALE_INVALID_ARGUMENT, "%s: AWS_STS_ENDPOINT is not an http:// or "
                       "https:// URL without a user name", where);
        goto out;
    }
    if (!strcmp(scheme, "http") && !s3_url_host_is_loopback(host))
        shale_warn("%s: the web identity token goes to STS over plain http to %s, which is not "
                   "a loopback address", where, host);
    *out = xstrdup(got);
    if (!*out)
        rc = SHALE_OOM();
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(host);
    curl_free(got);
    curl_url_cleanup(u);
    return rc;
}

static s3_creds *creds_alloc(const char *where, s3_creds_source src)
{
    s3_creds *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->fetch_mu, NULL);
    c->source = src;
    c->refs = 1;
    c->clock_ms = real_clock;
    c->where = xstrdup(where);
    if (!c->where) {
        creds_free(c);
        return NULL;
    }
    return c;
}

static shale_status new_static(const char *where, s3_creds_source src, const char *ak,
                               const char *sk, const char *tok, s3_creds **out)
{
    s3_creds *c = creds_alloc(where, src);
    if (!c)
        return SHALE_OOM();
    shale_status rc = set_current(c, ak, sk, tok, 0);
    if (rc) {
        creds_free(c);
        return rc;
    }
    *out = c;
    return SHALE_OK;
}

static shale_status new_web_identity(const s3_creds_config *cfg, const char *where,
                                     const char *arn, const char *file, s3_creds **out)
{
    const char *name = env("AWS_ROLE_SESSION_NAME");
    char gen[40];
    if (!name) {
        /* What the SDKs do: a name of their own, unique enough for CloudTrail. */
        snprintf(gen, sizeof gen, "shale-%lld", (long long)now_ms());
        name = gen;
    } else if (!session_name_ok(name)) {
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: AWS_ROLE_SESSION_NAME must be 2 to 64 "
                         "characters of letters, digits and _+=,.@-", where);
    }
    char *sts = NULL;
    shale_status rc = sts_endpoint(where, cfg->region, &sts);
    if (rc)
        return rc;
    char *key = NULL;
    if (asprintf(&key, "%s\n%s\n%s\n%s\n%s\n%p\n%p", arn, file,
                 env("AWS_ROLE_SESSION_NAME") ? name : "", sts,
                 cfg->ca_file ? cfg->ca_file : "", (void *)cfg->clock_ms, cfg->clock_ud) < 0) {
        free(sts);
        return SHALE_OOM();
    }
    /* An existing provider for the same role: share it. */
    pthread_mutex_lock(&g_reg_mu);
    for (s3_creds *p = g_reg; p; p = p->next)
        if (!strcmp(p->key, key)) {
            p->refs++;
            pthread_mutex_unlock(&g_reg_mu);
            free(key);
            free(sts);
            *out = p;
            return SHALE_OK;
        }
    pthread_mutex_unlock(&g_reg_mu);
    s3_creds *c = creds_alloc(where, S3_CREDS_WEB_IDENTITY);
    if (!c) {
        free(key);
        free(sts);
        return SHALE_OOM();
    }
    c->key = key;
    c->sts_endpoint = sts;
    c->role_arn = xstrdup(arn);
    c->token_file = xstrdup(file);
    c->session_name = xstrdup(name);
    c->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    if (cfg->clock_ms) {
        c->clock_ms = cfg->clock_ms;
        c->clock_ud = cfg->clock_ud;
    }
    if (!c->role_arn || !c->token_file || !c->session_name || (cfg->ca_file && !c->ca_file)) {
        creds_free(c);
        return SHALE_OOM();
    }
    pthread_mutex_lock(&c->fetch_mu);
    rc = sts_fetch(c);
    pthread_mutex_unlock(&c->fetch_mu);
    if (rc) {
        creds_free(c);
        return rc;
    }
    pthread_mutex_lock(&g_reg_mu);
    c->next = g_reg;
    g_reg = c;
    pthread_mutex_unlock(&g_reg_mu);
    *out = c;
    return SHALE_OK;
}

shale_status s3_creds_new(const s3_creds_config *cfg, const char *where, s3_creds **out)
{
    *out = NULL;
    const char *ak = cfg->access_key && *cfg->access_key ? cfg->access_key : NULL;
    const char *sk = cfg->secret_key && *cfg->secret_key ? cfg->secret_key : NULL;
    const char *tok = cfg->session_token && *cfg->session_token ? cfg->session_token : NULL;
    if (ak || sk || tok) {
        if (!ak || !sk)
            return shale_err(SHALE_UNAUTHORIZED, "%s: the store options set %s but not %s",
                             where, ak ? "s3_access_key" : sk ? "s3_secret_key"
                             : "s3_session_token", ak ? "s3_secret_key" : "s3_access_key");
        return new_static(where, S3_CREDS_OPTIONS, ak, sk, tok, out);
    }
    ak = env("AWS_ACCESS_KEY_ID");
    sk = env("AWS_SECRET_ACCESS_KEY");
    if (ak || sk) {
        if (!ak || !sk)
            return shale_err(SHALE_UNAUTHORIZED, "%s: %s is set but %s is not", where,
                             ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                             ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return new_static(where, S3_CREDS_ENV, ak, sk, env("AWS_SESSION_TOKEN"), out);
    }
    const char *arn = env("AWS_ROLE_ARN"), *file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (arn || file) {
        if (!arn || !file)
            return shale_err(SHALE_UNAUTHORIZED, "%s: %s is set but %s is not (web identity "
                             "needs both)", where,
                             arn ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE",
                             arn ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN");
        return new_web_identity(cfg, where, arn, file, out);
    }
    return shale_err(SHALE_UNAUTHORIZED, "%s: no credentials: set AWS_ACCESS_KEY_ID and "
                     "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), or "
                     "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (web identity), or the "
                     "store options", where);
}

void s3_creds_release(s3_creds *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g_reg_mu);
    bool last = --c->refs == 0;
    if (last && c->source == S3_CREDS_WEB_IDENTITY)
        for (s3_creds **pp = &g_reg; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
    pthread_mutex_unlock(&g_reg_mu);
    if (last)
        creds_free(c);
}

s3_creds_source s3_creds_source_of(const s3_creds *c)
{
    return c->source;
}

const char *s3_creds_sts_endpoint(const s3_creds *c)
{
    return c->sts_endpoint ? c->sts_endpoint : "";
}
