/* kube_client.c -- see kube_client.h. */
#include "kube_client.h"
#include "log.h"
#include "yamljson.h"
#include "shale.h"
#include "agent_util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kube_client {
    char *server;             /* https://host:port */
    char *ns;
    char *token;              /* a static token, or */
    char *token_file;         /* one read before each request */
    agent_buf ca;             /* CA PEM (empty: system CAs) */
    agent_buf cert, key;      /* client certificate and key PEM (optional) */
    bool insecure;
    char ua[200];             /* User-Agent: shale-agent/VERSION (shard S) */
    _Atomic bool cancelled;
    _Atomic uint64_t requests;
};

/* ---- small helpers ----------------------------------------------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 (kubeconfig *-data fields); false if malformed. */
static bool b64decode(const char *in, agent_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = in; *p; p++) {
        if (*p == '=' || *p == '\n' || *p == '\r' || *p == ' ')
            continue;
        int v = b64val((unsigned char)*p);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (agent_buf_append_u8(out, (uint8_t)(acc >> bits)))
                return false;
        }
    }
    return true;
}

/* Reads a small text file, trailing whitespace cut; NULL if unreadable. */
static char *read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(max + 1);
    size_t n = b ? fread(b, 1, max, f) : 0;
    fclose(f);
    if (!b)
        return NULL;
    b[n] = '\0';
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
        b[--n] = '\0';
    return b;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *named(json_t *arr, const char *name, const char *field)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (jstr(v, "name") && !strcmp(jstr(v, "name"), name))
            return json_object_get(v, field);
    return NULL;
}

/* Inline data (base64) or a file, into dst; "" if neither is given. */
static shale_status load_pem(const char *path, json_t *o, const char *data_key,
                             const char *file_key, agent_buf *dst)
{
    if (jstr(o, data_key)) {
        if (!b64decode(jstr(o, data_key), dst))
            return shale_error_set(SHALE_INVALID_ARGUMENT, "kubeconfig %s: %s is not base64", path,
                                   data_key);
    } else if (jstr(o, file_key)) {
        char *pem = read_text(jstr(o, file_key), 1u << 20);
        if (!pem)
            return shale_error_set(SHALE_NOT_FOUND, "kubeconfig %s: %s: cannot read %s", path,
                                   file_key, jstr(o, file_key));
        shale_status rc = agent_buf_append(dst, pem, strlen(pem));
        free(pem);
        return rc;
    }
    return SHALE_OK;
}

/* ---- configuration --------------------------------------------------------- */

static shale_status load_kubeconfig(kube_client *c, const char *path)
{
    char *text = read_text(path, 1u << 20);
    if (!text)
        return shale_error_set(SHALE_NOT_FOUND, "kubeconfig %s: cannot read it", path);
    json_t *j = NULL;
    shale_status rc = yamljson_parse(path, text, strlen(text), &j, NULL);
    free(text);
    if (rc)
        return rc;
    const char *cur = jstr(j, "current-context");
    json_t *ctx = cur ? named(json_object_get(j, "contexts"), cur, "context") : NULL;
    json_t *cl = ctx ? named(json_object_get(j, "clusters"), jstr(ctx, "cluster") ?: "", "cluster")
                     : NULL;
    json_t *us = ctx ? named(json_object_get(j, "users"), jstr(ctx, "user") ?: "", "user") : NULL;
    if (!cl || !jstr(cl, "server")) {
        /* The message first: cur points into j. */
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "kubeconfig %s: no server for the current "
                                                     "context '%s'", path, cur ? cur : "");
        json_decref(j);
        return rc;
    }
    c->server = agent_strdup(jstr(cl, "server"));
    if (!c->ns && jstr(ctx, "namespace") && *jstr(ctx, "namespace"))
        c->ns = agent_strdup(jstr(ctx, "namespace"));
    c->insecure = c->insecure || json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
    rc = load_pem(path, cl, "certificate-authority-data", "certificate-authority", &c->ca);
    if (!rc && us && jstr(us, "token"))
        c->token = agent_strdup(jstr(us, "token"));
    else if (!rc && us && jstr(us, "tokenFile"))
        c->token_file = agent_strdup(jstr(us, "tokenFile"));
    if (!rc && us)
        rc = load_pem(path, us, "client-certificate-data", "client-certificate", &c->cert);
    if (!rc && us)
        rc = load_pem(path, us, "client-key-data", "client-key", &c->key);
    if (!rc && (c->cert.len > 0) != (c->key.len > 0))
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "kubeconfig %s: a client certificate needs "
                                                     "its key (and the other way round)", path);
    json_decref(j);
    return rc;
}

shale_status kube_in_cluster_url(const char *host, const char *port, char **out)
{
    *out = NULL;
    if (!host || !*host)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "KUBERNETES_SERVICE_HOST is empty");
    char *end = NULL;
    long p = port && *port ? strtol(port, &end, 10) : 0;
    if (!port || !*port || *end || p < 1 || p > 65535)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "KUBERNETES_SERVICE_PORT '%s' is not a port "
                                                       "(1-65535)", port ? port : "");
    /* An IPv6 literal (it has a colon) goes in brackets (RFC 3986); one
     * given with brackets already is kept as it is. */
    bool v6 = strchr(host, ':') && host[0] != '[';
    size_t n = strlen(host) + 32;
    char *u = malloc(n);
    if (!u)
        return AGENT_OOM();
    snprintf(u, n, v6 ? "https://[%s]:%ld" : "https://%s:%ld", host, p);
    *out = u;
    return SHALE_OK;
}

static shale_status load_in_cluster(kube_client *c)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !port)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "kubernetes source: no kubeconfig given and "
                                                       "not in a cluster (KUBERNETES_SERVICE_HOST "
                                                       "and KUBERNETES_SERVICE_PORT are not set)");
    shale_status rc = kube_in_cluster_url(host, port, &c->server);
    if (rc)
        return shale_error_prefix(rc, "in-cluster configuration");
    const char *dir = getenv("SHALE_KUBE_SA_DIR");
    if (dir && *dir)
        LOGW("kubernetes: service account files from %s (SHALE_KUBE_SA_DIR, a test-only "
             "override)", dir);
    else
        dir = KUBE_SA_DIR_DEFAULT;
    char path[1024];
    snprintf(path, sizeof path, "%s/token", dir);
    c->token_file = agent_strdup(path);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return shale_error_set(SHALE_NOT_FOUND, "in-cluster configuration: cannot read the service "
                                                "account token %s", path);
    fclose(probe);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    char *pem = read_text(path, 1u << 20);
    if (!pem)
        return shale_error_set(SHALE_NOT_FOUND, "in-cluster configuration: cannot read the cluster "
                                                "CA %s", path);
    rc = agent_buf_append(&c->ca, pem, strlen(pem));
    free(pem);
    if (!c->ns) {
        snprintf(path, sizeof path, "%s/namespace", dir);
        c->ns = read_text(path, 256);
    }
    return rc;
}

shale_status kube_client_new(const char *kubeconfig, const char *ns, bool insecure,
                             kube_client **out)
{
    *out = NULL;
    kube_client *c = calloc(1, sizeof *c);
    if (!c)
        return AGENT_OOM();
    c->insecure = insecure;
    snprintf(c->ua, sizeof c->ua, "User-Agent: shale-agent/%s", SHALE_VERSION);
    c->ns = ns && *ns ? agent_strdup(ns) : NULL;
    shale_status rc = kubeconfig && *kubeconfig ? load_kubeconfig(c, kubeconfig)
                                                : load_in_cluster(c);
    if (!rc && (!c->ns || !*c->ns)) {
        free(c->ns);
        c->ns = agent_strdup("default");
    }
    if (!rc && (!c->server || !c->ns))
        rc = AGENT_OOM();
    if (rc) {
        kube_client_free(c);
        return rc;
    }
    *out = c;
    return SHALE_OK;
}

void kube_client_free(kube_client *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->ns);
    if (c->token)
        memset(c->token, 0, strlen(c->token));
    free(c->token);
    free(c->token_file);
    agent_buf_free(&c->ca);
    if (c->key.data)
        memset(c->key.data, 0, c->key.len);   /* wipe the key */
    agent_buf_free(&c->key);
    agent_buf_free(&c->cert);
    free(c);
}

const char *kube_client_namespace(const kube_client *c) { return c->ns; }
const char *kube_client_server(const kube_client *c) { return c->server; }
bool kube_client_insecure(const kube_client *c) { return c->insecure; }
uint64_t kube_client_requests(const kube_client *c) { return c->requests; }
void kube_client_cancel(kube_client *c) { c->cancelled = true; }

void kube_client_set_shard(kube_client *c, const char *shard)
{
    snprintf(c->ua, sizeof c->ua, "User-Agent: shale-agent/%s (shard %.100s)", SHALE_VERSION,
             shard);
}

/* ---- answers --------------------------------------------------------------- */

void kube_resp_free(kube_resp *r)
{
    agent_buf_free(&r->body);
    r->status = 0;
    r->retry_after_s = 0;
}

void kube_resp_describe(const kube_resp *r, char *buf, size_t n)
{
    json_error_t err;
    json_t *s = r->body.len ? json_loadb((const char *)r->body.data, r->body.len, 0, &err)
                            : NULL;
    const char *reason = jstr(s, "reason"), *msg = jstr(s, "message");
    if (reason || msg)
        snprintf(buf, n, "HTTP %ld %s: %.300s", r->status, reason ? reason : "",
                 msg ? msg : "");
    else  /* not a Status: a bounded, printable prefix of the body */
        snprintf(buf, n, "HTTP %ld: %.200s", r->status,
                 r->body.data ? (const char *)r->body.data : "");
    json_decref(s);
}

/* Makes body a C string without counting the NUL in its length. */
static void terminate(agent_buf *b)
{
    if (agent_buf_append_u8(b, 0) == SHALE_OK)
        b->len--;
}

/* ---- requests -------------------------------------------------------------- */

typedef struct xfer {
    kube_client *c;
    kube_resp *r;
    long status;              /* known once the headers arrived */
    kube_line_fn fn;          /* a stream, or NULL */
    void *ctx;
    agent_buf line;           /* partial stream line */
    bool stopped;             /* fn asked to stop */
    bool oom;
} xfer;

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    if (len > 5 && !strncmp(p, "HTTP/", 5)) {
        /* A new status line (also after a 100 Continue). */
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->r->retry_after_s = 0;
    } else if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        char v[32];
        size_t m = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, m);
        v[m] = '\0';
        char *end = NULL;
        long s = strtol(v, &end, 10);
        /* Seconds; an HTTP date is taken as one second. */
        x->r->retry_after_s = end != v && s >= 0 ? (uint32_t)(s < 3600 ? s : 3600) : 1;
    }
    return len;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    if (!x->fn || x->status != 200) {
        if (agent_buf_append(&x->r->body, p, len)) {
            x->oom = true;
            return 0;
        }
        return len;
    }
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t m = nl ? (size_t)(nl - (p + i)) : len - i;
        if (agent_buf_append(&x->line, p + i, m)) {
            x->oom = true;
            return 0;
        }
        i += m;
        if (!nl)
            break;
        i++;   /* the newline */
        bool go = x->line.len == 0 || x->fn(x->ctx, (const char *)x->line.data, x->line.len);
        agent_buf_reset(&x->line);
        if (!go) {
            x->stopped = true;
            return 0;   /* ends the transfer */
        }
    }
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a; (void)b; (void)c; (void)d;
    return ((xfer *)ud)->c->cancelled;
}

static shale_status perform(kube_client *c, const char *method, const char *path,
                            const char *body, const char *ctype, long timeout_s, kube_line_fn fn,
                            void *ctx, kube_resp *r)
{
    kube_resp_free(r);
    if (c->cancelled)
        return shale_error_set(SHALE_CLOSED, "kubernetes client: shutting down");
    CURL *h = curl_easy_init();
    if (!h)
        return AGENT_OOM();
    c->requests++;
    size_t un = strlen(c->server) + strlen(path) + 1;
    char *url = malloc(un);
    if (!url) {
        curl_easy_cleanup(h);
        return AGENT_OOM();
    }
    snprintf(url, un, "%s%s", c->server, path);
    struct curl_slist *hd = NULL;
    /* The token is read fresh every time: projected tokens rotate. */
    char *tok = c->token_file ? read_text(c->token_file, 16384) : NULL;
    const char *t = tok ? tok : c->token;
    if (t && *t) {
        size_t an = strlen(t) + 32;
        char *auth = malloc(an);
        if (auth) {
            snprintf(auth, an, "Authorization: Bearer %s", t);
            hd = curl_slist_append(hd, auth);
            memset(auth, 0, an);
            free(auth);
        }
    } else if (c->token_file && !c->cert.len) {
        LOGW("kubernetes: cannot read the token file %s; sending no credentials",
             c->token_file);
    }
    if (tok)
        memset(tok, 0, strlen(tok));
    free(tok);
    hd = curl_slist_append(hd, "Accept: application/json");
    hd = curl_slist_append(hd, c->ua);
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hd = curl_slist_append(hd, ct);
    }
    xfer x = {c, r, 0, fn, ctx, AGENT_BUF_INIT, false, false};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (c->ca.len) {
        struct curl_blob blob = {c->ca.data, c->ca.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (c->cert.len) {
        struct curl_blob cb = {c->cert.data, c->cert.len, CURL_BLOB_COPY};
        struct curl_blob kb = {c->key.data, c->key.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    r->status = code ? code : x.status;
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    agent_buf_free(&x.line);
    terminate(&r->body);
    shale_status rc = SHALE_OK;
    if (x.oom)
        rc = AGENT_OOM();
    else if (c->cancelled && cc != CURLE_OK)
        rc = shale_error_set(SHALE_CLOSED, "kubernetes client: shutting down");
    else if (cc != CURLE_OK && !(x.stopped && cc == CURLE_WRITE_ERROR) &&
             !(fn && r->status == 200 && cc == CURLE_OPERATION_TIMEDOUT))
        rc = shale_error_set(SHALE_IO, "%s %s: %s", method, path, curl_easy_strerror(cc));
    else if (r->status == 0)
        rc = shale_error_set(SHALE_IO, "%s %s: no HTTP answer", method, path);
    free(url);
    return rc;
}

shale_status kube_request(kube_client *c, const char *method, const char *path,
                          const char *body, const char *content_type, long timeout_s,
                          kube_resp *r)
{
    return perform(c, method, path, body, content_type, timeout_s, NULL, NULL, r);
}

shale_status kube_stream(kube_client *c, const char *path, long timeout_s, kube_line_fn fn,
                         void *ctx, kube_resp *r)
{
    return perform(c, "GET", path, NULL, NULL, timeout_s, fn, ctx, r);
}

char *kube_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? agent_strdup(e) : NULL;
    curl_free(e);
    return out;
}
