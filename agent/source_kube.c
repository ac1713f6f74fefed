/* source_kube.c -- see source_kube.h. */
#include "source_kube.h"
#include "journal.h"
#include "log.h"
#include "request.h"
#include "yamljson.h"
#include "util/buf.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define GEN_MAX 256

struct source_kube {
    char *shard;
    char *server;             /* https://host:port */
    char *ns;
    char *selector;           /* label selector or NULL */
    char *token;              /* static token, or */
    char *token_file;         /* re-read before each request */
    shale_buf ca;             /* CA PEM (empty: system CAs) */
    shale_buf cert, key;      /* client certificate and key PEM (optional) */
    bool insecure;
    split_service *svc;
    pthread_t thread;
    bool started;
    bool listed;             /* listed before the watch thread started */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    char rv[64];              /* resourceVersion to watch from */
    shale_buf line;           /* partial watch line */
    bool relist;
    struct { char name[254]; long long gen; bool deleting; char phase[16]; } gens[GEN_MAX];
    int ngens;
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
static bool b64decode(const char *in, shale_buf *out)
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
            if (buf_append_u8(out, (uint8_t)(acc >> bits)))
                return false;
        }
    }
    return true;
}

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

/* ---- credentials --------------------------------------------------------- */

static shale_status load_kubeconfig(source_kube *k, const char *path)
{
    char *text = read_text(path, 1u << 20);
    if (!text)
        return shale_err(SHALE_NOT_FOUND, "kubeconfig %s: cannot read it", path);
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
        rc = shale_err(SHALE_INVALID_ARGUMENT, "kubeconfig %s: no server for the current "
                                               "context '%s'", path, cur ? cur : "");
        json_decref(j);
        return rc;
    }
    k->server = xstrdup(jstr(cl, "server"));
    if (!k->ns && jstr(ctx, "namespace"))
        k->ns = xstrdup(jstr(ctx, "namespace"));
    k->insecure = k->insecure || json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
    if (jstr(cl, "certificate-authority-data")) {
        if (!b64decode(jstr(cl, "certificate-authority-data"), &k->ca))
            rc = shale_err(SHALE_INVALID_ARGUMENT, "kubeconfig %s: bad "
                                                   "certificate-authority-data", path);
    } else if (jstr(cl, "certificate-authority")) {
        char *pem = read_text(jstr(cl, "certificate-authority"), 1u << 20);
        if (!pem)
            rc = shale_err(SHALE_NOT_FOUND, "kubeconfig %s: cannot read %s", path,
                           jstr(cl, "certificate-authority"));
        else
            buf_append(&k->ca, pem, strlen(pem));
        free(pem);
    }
    if (us && jstr(us, "token"))
        k->token = xstrdup(jstr(us, "token"));
    else if (us && jstr(us, "tokenFile"))
        k->token_file = xstrdup(jstr(us, "tokenFile"));
    /* Client certificate authentication (data inline or as files). */
    static const char *const names[2][2] = {{"client-certificate-data", "client-certificate"},
                                            {"client-key-data", "client-key"}};
    for (int i = 0; i < 2 && !rc && us; i++) {
        shale_buf *dst = i ? &k->key : &k->cert;
        if (jstr(us, names[i][0])) {
            if (!b64decode(jstr(us, names[i][0]), dst))
                rc = shale_err(SHALE_INVALID_ARGUMENT, "kubeconfig %s: bad %s", path,
                               names[i][0]);
        } else if (jstr(us, names[i][1])) {
            char *pem = read_text(jstr(us, names[i][1]), 1u << 20);
            if (!pem)
                rc = shale_err(SHALE_NOT_FOUND, "kubeconfig %s: cannot read %s", path,
                               jstr(us, names[i][1]));
            else
                buf_append(dst, pem, strlen(pem));
            free(pem);
        }
    }
    if (!rc && (k->cert.len > 0) != (k->key.len > 0))
        rc = shale_err(SHALE_INVALID_ARGUMENT, "kubeconfig %s: a client certificate needs "
                                               "its key (and the other way round)", path);
    json_decref(j);
    return rc;
}

static shale_status load_in_cluster(source_kube *k)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !port)
        return shale_err(SHALE_INVALID_ARGUMENT, "kubernetes source: no kubeconfig given and "
                                                 "not in a cluster (KUBERNETES_SERVICE_HOST)");
    size_t n = strlen(host) + strlen(port) + 16;
    k->server = malloc(n);
    if (k->server)
        snprintf(k->server, n, "https://%s:%s", host, port);
    k->token_file = xstrdup(SA_DIR "/token");
    char *pem = read_text(SA_DIR "/ca.crt", 1u << 20);
    if (pem)
        buf_append(&k->ca, pem, strlen(pem));
    free(pem);
    if (!k->ns)
        k->ns = read_text(SA_DIR "/namespace", 256);
    return SHALE_OK;
}

/* ---- requests -------------------------------------------------------------- */

typedef struct resp {
    long status;
    shale_buf body;
    source_kube *k;
    bool watch;
} resp;

static void handle_event(source_kube *k, json_t *ev);

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = sz * n;
    if (!r->watch)
        return buf_append(&r->body, p, len) ? 0 : len;
    /* A watch: one JSON event per line. */
    source_kube *k = r->k;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (buf_append_u8(&k->line, (uint8_t)p[i]))
                return 0;
            continue;
        }
        json_error_t err;
        json_t *ev = json_loadb((const char *)k->line.data, k->line.len, 0, &err);
        buf_reset(&k->line);
        if (ev) {
            handle_event(k, ev);
            json_decref(ev);
        }
        if (k->relist)
            return 0;  /* abort the transfer: re-list */
    }
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a; (void)b; (void)c; (void)d;
    source_kube *k = ((resp *)ud)->k;
    pthread_mutex_lock(&k->mu);
    bool stop = k->stop;
    pthread_mutex_unlock(&k->mu);
    return stop;
}

static CURLcode request(source_kube *k, const char *method, const char *path,
                        const char *body, const char *ctype, resp *r, long timeout_s)
{
    CURL *h = curl_easy_init();
    if (!h)
        return CURLE_OUT_OF_MEMORY;
    size_t un = strlen(k->server) + strlen(path) + 1;
    char *url = malloc(un), auth[4200];
    snprintf(url, un, "%s%s", k->server, path);
    struct curl_slist *hd = NULL;
    char *tok = k->token_file ? read_text(k->token_file, 4000) : NULL;
    const char *t = tok ? tok : k->token;
    if (t) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", t);
        hd = curl_slist_append(hd, auth);
    }
    free(tok);
    hd = curl_slist_append(hd, "Accept: application/json");
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hd = curl_slist_append(hd, ct);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (k->ca.len) {
        struct curl_blob blob = {k->ca.data, k->ca.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (k->cert.len) {
        struct curl_blob c = {k->cert.data, k->cert.len, CURL_BLOB_COPY};
        struct curl_blob kb = {k->key.data, k->key.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &c);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (k->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(url);
    return cc;
}

/* ---- objects -> requests ------------------------------------------------- */

#define FINALIZER "shale.io/split"

static void set_gen(source_kube *k, const char *name, long long gen, bool deleting)
{
    pthread_mutex_lock(&k->mu);
    int i = 0;
    while (i < k->ngens && strcmp(k->gens[i].name, name))
        i++;
    if (i == k->ngens && k->ngens < GEN_MAX)
        k->ngens++;
    if (i < GEN_MAX) {
        snprintf(k->gens[i].name, sizeof k->gens[i].name, "%s", name);
        k->gens[i].gen = gen;
        k->gens[i].deleting = deleting;
    }
    pthread_mutex_unlock(&k->mu);
}

static bool is_deleting(source_kube *k, const char *name)
{
    bool d = false;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->ngens; i++)
        if (!strcmp(k->gens[i].name, name))
            d = k->gens[i].deleting;
    pthread_mutex_unlock(&k->mu);
    return d;
}

/* Records the phase last reported; true if it changed (an event is due). */
static bool phase_changed(source_kube *k, const char *name, const char *phase)
{
    bool changed = true;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->ngens; i++)
        if (!strcmp(k->gens[i].name, name)) {
            changed = strcmp(k->gens[i].phase, phase) != 0;
            snprintf(k->gens[i].phase, sizeof k->gens[i].phase, "%s", phase);
        }
    pthread_mutex_unlock(&k->mu);
    return changed;
}

static long long get_gen(source_kube *k, const char *name)
{
    long long g = 0;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->ngens; i++)
        if (!strcmp(k->gens[i].name, name))
            g = k->gens[i].gen;
    pthread_mutex_unlock(&k->mu);
    return g;
}

static void patch_failed(source_kube *k, const char *name, const char *reason, const char *msg);
static void post_event(source_kube *k, const char *name, const char *phase, const char *reason,
                       const char *msg, bool warning);
static shale_status patch_status(source_kube *k, const char *name, json_t *status);

static bool has_finalizer(json_t *md)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(md, "finalizers"), i, f)
        if (json_string_value(f) && !strcmp(json_string_value(f), FINALIZER))
            return true;
    return false;
}

/* Adds or removes this agent's finalizer: read, edit the list, patch with
 * the resourceVersion read (a 409 retries on a fresh read). */
static void set_finalizer(source_kube *k, const char *name, bool add)
{
    char path[600];
    snprintf(path, sizeof path, "/apis/shale.io/v1alpha1/namespaces/%s/shardsplits/%s", k->ns,
             name);
    for (int attempt = 0; attempt < 5; attempt++) {
        resp r = {0, SHALE_BUF_INIT, k, false};
        CURLcode cc = request(k, "GET", path, NULL, NULL, &r, 30);
        json_error_t err;
        json_t *o = cc == CURLE_OK && r.status == 200
                        ? json_loadb((const char *)r.body.data, r.body.len, 0, &err)
                        : NULL;
        buf_free(&r.body);
        if (!o)
            return;   /* gone, or unreachable: the next event retries */
        json_t *md = json_object_get(o, "metadata");
        if (has_finalizer(md) == add) {
            json_decref(o);
            return;
        }
        json_t *list = json_array(), *f;
        size_t i;
        json_array_foreach(json_object_get(md, "finalizers"), i, f)
            if (!json_string_value(f) || strcmp(json_string_value(f), FINALIZER))
                json_array_append(list, f);
        if (add)
            json_array_append_new(list, json_string(FINALIZER));
        json_t *p = json_pack("{s:{s:o, s:O}}", "metadata", "finalizers", list, "resourceVersion",
                              json_object_get(md, "resourceVersion"));
        char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
        json_decref(p);
        json_decref(o);
        resp w = {0, SHALE_BUF_INIT, k, false};
        cc = body ? request(k, "PATCH", path, body, "application/merge-patch+json", &w, 30)
                  : CURLE_OUT_OF_MEMORY;
        free(body);
        buf_free(&w.body);
        if (cc == CURLE_OK && w.status != 409)
            return;
    }
}

static bool terminal(const char *phase)
{
    return phase && (!strcmp(phase, "Complete") || !strcmp(phase, "Failed") ||
                     !strcmp(phase, "Aborted"));
}

static void handle_object(source_kube *k, json_t *o)
{
    json_t *md = json_object_get(o, "metadata"), *spec = json_object_get(o, "spec");
    const char *name = jstr(md, "name");
    json_t *parent = json_object_get(spec, "parent");
    if (!name || !spec || !jstr(parent, "shard") || strcmp(jstr(parent, "shard"), k->shard))
        return;   /* another shard's request */
    bool deleting = json_object_get(md, "deletionTimestamp") != NULL;
    long long gen = (long long)json_integer_value(json_object_get(md, "generation"));
    bool new_gen = get_gen(k, name) != gen;   /* status writes do not bump it */
    set_gen(k, name, gen, deleting);
    json_t *rq = json_pack("{s:s, s:O, s:O}", "name", name, "parent", parent, "children",
                           json_object_get(spec, "children") ?: json_null());
    if (json_object_get(spec, "dryRun"))
        json_object_set(rq, "dryRun", json_object_get(spec, "dryRun"));
    if (json_object_get(spec, "verify"))
        json_object_set(rq, "verify", json_object_get(spec, "verify"));
    char *text = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
    json_decref(rq);
    char origin[300];
    snprintf(origin, sizeof origin, "ShardSplit %s/%s", k->ns, name);
    split_request *r = NULL;
    shale_status rc = text ? split_request_parse(origin, text, strlen(text), &r) : SHALE_OOM();
    free(text);
    char *st = NULL;
    bool created = false;
    /* The finalizer goes on before the split can start, so that a delete
     * can never outrun it. */
    bool added = false;
    if (!rc && !deleting && !has_finalizer(md)) {
        set_finalizer(k, name, true);
        added = true;
    }
    if (!rc && !deleting)
        rc = k->svc->ops->submit(k->svc, r, &created, &st);
    char why[1024];
    snprintf(why, sizeof why, "%s", rc ? shale_errmsg() : "");
    if (added && (rc == SHALE_INVALID_ARGUMENT || rc == SHALE_CONFLICT)) {
        char *existing = NULL;
        if (k->svc->ops->get(k->svc, name, &existing) != SHALE_OK)
            set_finalizer(k, name, false);   /* refused: nothing to guard */
        free(existing);
        shale_err(rc, "%s", why);            /* the refusal, not the lookup */
    }
    free(st);
    st = NULL;
    if (rc == SHALE_INVALID_ARGUMENT) {
        /* Reported once per generation: our own status write comes back
         * as a MODIFIED event with the same generation. */
        if (new_gen)
            patch_failed(k, name, "InvalidRequest", shale_errmsg());
    } else if (rc == SHALE_CONFLICT) {
        char *existing = NULL;
        if (k->svc->ops->get(k->svc, name, &existing) != SHALE_OK) {
            if (new_gen)
                patch_failed(k, name, "Conflict", shale_errmsg());
        } else if (new_gen) {
            /* An edited spec: the accepted request stands.  Say that the
             * new generation was seen, and why nothing changed. */
            LOGW("%s: %s", origin, shale_errmsg());
            json_t *st = json_pack("{s:I}", "observedGeneration",
                                   (json_int_t)get_gen(k, name));
            if (st)
                patch_status(k, name, st);
            json_decref(st);
            post_event(k, name, "SpecChangeIgnored", "SpecChangeIgnored",
                       "the spec changed after the split was accepted; the accepted request "
                       "stands", true);
        }
        free(existing);
    } else if (!rc && (deleting || json_is_true(json_object_get(spec, "abort")))) {
        /* Deleting mid-split: abort before the WAL wipe, else let it finish;
         * the finalizer goes once the split is over. */
        char *cur = NULL;
        json_t *cs = NULL;
        json_error_t err;
        if (k->svc->ops->get(k->svc, name, &cur) == SHALE_OK)
            cs = json_loads(cur, 0, &err);
        free(cur);
        bool over = cs && terminal(json_string_value(json_object_get(cs, "phase")));
        json_decref(cs);
        if (!over && k->svc->ops->abort(k->svc, name, &st))
            LOGW("%s: abort refused: %s", origin, shale_errmsg());
        free(st);
        if (deleting && (over || !cs))
            set_finalizer(k, name, false);
    } else if (!rc && created) {
        LOGI("accepted split %s from %s", name, origin);
    }
    split_request_free(r);
}

static void handle_event(source_kube *k, json_t *ev)
{
    const char *type = jstr(ev, "type");
    json_t *o = json_object_get(ev, "object");
    const char *orv = jstr(json_object_get(o, "metadata"), "resourceVersion");
    if (!type)
        return;
    if (!strcmp(type, "ERROR")) {
        /* 410 Gone: our resourceVersion is too old; anything else: re-list. */
        LOGW("watch error %lld: %s", (long long)json_integer_value(json_object_get(o, "code")),
             jstr(o, "message") ? jstr(o, "message") : "");
        k->relist = true;
        return;
    }
    if (orv)
        snprintf(k->rv, sizeof k->rv, "%s", orv);
    if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
        handle_object(k, o);
}

/* ---- status ---------------------------------------------------------------- */

static shale_status patch_status(source_kube *k, const char *name, json_t *status)
{
    json_t *p = json_pack("{s:O}", "status", status);
    char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!body)
        return SHALE_OOM();
    char path[600];
    snprintf(path, sizeof path, "/apis/shale.io/v1alpha1/namespaces/%s/shardsplits/%s/status",
             k->ns, name);
    shale_status rc = SHALE_OK;
    for (int attempt = 0; attempt < 5; attempt++) {
        resp r = {0, SHALE_BUF_INIT, k, false};
        CURLcode cc = request(k, "PATCH", path, body, "application/merge-patch+json", &r, 30);
        buf_free(&r.body);
        if (cc == CURLE_OK && r.status < 300) {
            rc = SHALE_OK;
            break;
        }
        rc = shale_err(SHALE_IO, "status patch of %s: %s (HTTP %ld)", name,
                       curl_easy_strerror(cc), r.status);
        if (r.status == 404)
            break;   /* deleted meanwhile */
        sleep_ms(100u << attempt);
    }
    free(body);
    return rc;
}

static json_t *condition(const char *type, bool on, const char *reason, const char *msg,
                         const char *now, long long gen)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status",
                     on ? "True" : "False", "reason", reason && *reason ? reason : type,
                     "message", msg ? msg : "", "lastTransitionTime", now,
                     "observedGeneration", gen);
}

static void patch_failed(source_kube *k, const char *name, const char *reason, const char *msg)
{
    char now[40];
    journal_now(now, sizeof now);
    now[19] = 'Z';
    now[20] = '\0';
    long long gen = get_gen(k, name);
    json_t *st = json_pack("{s:s, s:s, s:s, s:I}", "phase", "Failed", "reason", reason,
                           "message", msg, "observedGeneration", gen);
    json_t *conds = json_array();
    json_array_append_new(conds, condition("Accepted", false, reason, msg, now, gen));
    json_array_append_new(conds, condition("Failed", true, reason, msg, now, gen));
    json_object_set_new(st, "conditions", conds);
    patch_status(k, name, st);
    json_decref(st);
}

/* An events.k8s.io/v1 Event for a phase change of a ShardSplit. */
static void post_event(source_kube *k, const char *name, const char *phase, const char *reason,
                       const char *msg, bool warning)
{
    char now[40], ev_name[400], path[300];
    journal_now(now, sizeof now);
    char stamp[48];
    snprintf(stamp, sizeof stamp, "%.23s000Z", now);   /* MicroTime */
    uint32_t r;
    random_bytes(&r, sizeof r);
    snprintf(ev_name, sizeof ev_name, "%s.%08x", name, r);
    json_t *e = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                          "s:{s:s, s:s, s:s, s:s}}",
                          "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name",
                          ev_name, "namespace", k->ns, "eventTime", stamp,
                          "reportingController", "shale.io/shale-agent", "reportingInstance",
                          k->shard, "action", phase, "reason",
                          reason && *reason ? reason : phase, "note", msg ? msg : "", "type",
                          warning ? "Warning" : "Normal", "regarding", "apiVersion",
                          "shale.io/v1alpha1", "kind", "ShardSplit", "name", name, "namespace",
                          k->ns);
    char *body = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    snprintf(path, sizeof path, "/apis/events.k8s.io/v1/namespaces/%s/events", k->ns);
    resp w = {0, SHALE_BUF_INIT, k, false};
    if (body && (request(k, "POST", path, body, "application/json", &w, 10) != CURLE_OK ||
                 w.status >= 300))
        LOGW("could not post an event for %s (HTTP %ld)", name, w.status);
    buf_free(&w.body);
    free(body);
}

void source_kube_on_status(void *ctx, const char *name, const char *status_json)
{
    source_kube *k = ctx;
    json_error_t err;
    json_t *s = json_loads(status_json, 0, &err);
    if (!s)
        return;
    char now[40];
    journal_now(now, sizeof now);
    now[19] = 'Z';   /* RFC 3339 seconds, as Kubernetes writes times */
    now[20] = '\0';
    long long gen = get_gen(k, name);
    const char *phase = jstr(s, "phase") ? jstr(s, "phase") : "Pending";
    const char *reason = jstr(s, "reason"), *msg = jstr(s, "message");
    bool done = !strcmp(phase, "Complete") || !strcmp(phase, "Failed") ||
                !strcmp(phase, "Aborted");
    json_t *st = json_object();
    static const char *copy[] = {"phase", "reason", "message", "checkpointId", "uid",
                                 "startTime", "completionTime", "childCount", "steps",
                                 "children", "plan", "verifyMode"};
    for (size_t i = 0; i < sizeof copy / sizeof *copy; i++) {
        json_t *v = json_object_get(s, copy[i]);
        if (v && !json_is_null(v))
            json_object_set(st, copy[i], v);
    }
    json_object_set_new(st, "observedGeneration", json_integer(gen));
    json_t *conds = json_array();
    json_array_append_new(conds, condition("Accepted", true, "Accepted", "", now, gen));
    json_array_append_new(conds, condition("Progressing", !done, done ? phase : "Running",
                                           done ? "" : phase, now, gen));
    json_array_append_new(conds, condition("Complete", !strcmp(phase, "Complete"), reason, msg,
                                           now, gen));
    json_array_append_new(conds, condition("Failed", !strcmp(phase, "Failed"), reason, msg, now,
                                           gen));
    json_array_append_new(conds, condition("Aborted", !strcmp(phase, "Aborted"), reason, msg,
                                           now, gen));
    json_object_set_new(st, "conditions", conds);
    if (patch_status(k, name, st))
        LOGW("%s", shale_errmsg());
    json_decref(st);
    if (phase_changed(k, name, phase))
        post_event(k, name, phase, reason, msg, !strcmp(phase, "Failed"));
    if (done && is_deleting(k, name))
        set_finalizer(k, name, false);
    json_decref(s);
}

/* ---- the list/watch loop ----------------------------------------------------- */

static bool wait_or_stop(source_kube *k, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&k->mu);
    if (!k->stop)
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    bool stop = k->stop;
    pthread_mutex_unlock(&k->mu);
    return stop;
}

static bool list_all(source_kube *k)
{
    char path[1024], *sel = NULL;
    if (k->selector) {
        CURL *h = curl_easy_init();
        sel = h ? curl_easy_escape(h, k->selector, 0) : NULL;
        curl_easy_cleanup(h);
    }
    snprintf(path, sizeof path, "/apis/shale.io/v1alpha1/namespaces/%s/shardsplits%s%s",
             k->ns, sel ? "?labelSelector=" : "", sel ? sel : "");
    curl_free(sel);
    resp r = {0, SHALE_BUF_INIT, k, false};
    CURLcode cc = request(k, "GET", path, NULL, NULL, &r, 30);
    bool ok = cc == CURLE_OK && r.status == 200;
    json_error_t err;
    json_t *l = ok ? json_loadb((const char *)r.body.data, r.body.len, 0, &err) : NULL;
    if (!l) {
        if (cc != CURLE_OK)
            LOGW("kubernetes: list failed: %s", curl_easy_strerror(cc));
        else
            LOGW("kubernetes: list failed: HTTP %ld: %.200s", r.status,
                 r.body.data ? (const char *)r.body.data : "");
        buf_free(&r.body);
        return false;
    }
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(l, "items"), i, o)
        handle_object(k, o);
    const char *rv = jstr(json_object_get(l, "metadata"), "resourceVersion");
    snprintf(k->rv, sizeof k->rv, "%s", rv ? rv : "0");
    json_decref(l);
    buf_free(&r.body);
    return true;
}

static void *loop(void *arg)
{
    source_kube *k = arg;
    uint32_t backoff = 200;
    bool need_list = !k->listed;   /* source_kube_list_once() may have listed */
    while (!wait_or_stop(k, 0)) {
        if (need_list) {
            if (!list_all(k)) {
                if (wait_or_stop(k, backoff))
                    break;
                backoff = backoff < 30000 ? backoff * 2 : 30000;
                continue;
            }
            need_list = false;
            backoff = 200;   /* a good answer ends the backoff */
        }
        char path[1024], *sel = NULL;
        if (k->selector) {
            CURL *h = curl_easy_init();
            sel = h ? curl_easy_escape(h, k->selector, 0) : NULL;
            curl_easy_cleanup(h);
        }
        snprintf(path, sizeof path,
                 "/apis/shale.io/v1alpha1/namespaces/%s/shardsplits?allowWatchBookmarks=true"
                 "%s%s&resourceVersion=%s&timeoutSeconds=300&watch=true",
                 k->ns, sel ? "&labelSelector=" : "", sel ? sel : "", k->rv);
        curl_free(sel);
        k->relist = false;
        buf_reset(&k->line);
        resp r = {0, SHALE_BUF_INIT, k, true};
        CURLcode cc = request(k, "GET", path, NULL, NULL, &r, 330);
        buf_free(&r.body);
        if (k->relist || r.status == 410) {
            need_list = true;
            continue;
        }
        if (cc == CURLE_OK && r.status == 200) {
            backoff = 200;   /* the server closed the stream: watch again */
            continue;
        }
        if (cc != CURLE_ABORTED_BY_CALLBACK)
            LOGW("kubernetes: watch failed: %s; retrying in %u ms",
                 cc != CURLE_OK ? curl_easy_strerror(cc) : "unexpected HTTP status", backoff);
        if (wait_or_stop(k, backoff))
            break;
        backoff = backoff < 30000 ? backoff * 2 : 30000;
        need_list = true;
    }
    return NULL;
}

void source_kube_feed(source_kube *k, const char *data, size_t len)
{
    resp r = {0, SHALE_BUF_INIT, k, true};
    k->relist = false;
    on_data((char *)data, 1, len, &r);
}

shale_status source_kube_new(const agent_config *cfg, split_service *svc, source_kube **out)
{
    *out = NULL;
    source_kube *k = calloc(1, sizeof *k);
    if (!k)
        return SHALE_OOM();
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->svc = svc;
    k->shard = xstrdup(cfg->shard);
    k->ns = cfg->kube_namespace ? xstrdup(cfg->kube_namespace) : NULL;
    k->selector = cfg->kube_selector ? xstrdup(cfg->kube_selector) : NULL;
    k->insecure = cfg->kube_insecure;
    shale_status rc = cfg->kubeconfig ? load_kubeconfig(k, cfg->kubeconfig) : load_in_cluster(k);
    if (!rc && !k->ns)
        k->ns = xstrdup("default");
    if (!rc && (!k->server || !k->ns || !k->shard))
        rc = SHALE_OOM();
    if (rc) {
        source_kube_free(k);
        return rc;
    }
    if (k->insecure)
        LOGW("kubernetes: TLS verification is OFF (insecure-skip-tls-verify)");
    *out = k;
    return SHALE_OK;
}

bool source_kube_list_once(source_kube *k)
{
    k->listed = list_all(k);
    return k->listed;
}

shale_status source_kube_start(source_kube *k)
{
    if (pthread_create(&k->thread, NULL, loop, k))
        return shale_err(SHALE_IO, "kubernetes source: cannot start its thread");
    k->started = true;
    return SHALE_OK;
}

void source_kube_free(source_kube *k)
{
    if (!k)
        return;
    if (k->started) {
        pthread_mutex_lock(&k->mu);
        k->stop = true;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
    }
    free(k->shard);
    free(k->server);
    free(k->ns);
    free(k->selector);
    free(k->token);
    free(k->token_file);
    buf_free(&k->ca);
    memset(k->key.data ? k->key.data : (uint8_t *)"", 0, k->key.len);   /* wipe the key */
    buf_free(&k->key);
    buf_free(&k->cert);
    buf_free(&k->line);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
}
