/* kube_watch.c -- see kube_watch.h. */
#include "kube_watch.h"
#include "log.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 200u
#define BACKOFF_MAX_MS 30000u
/* Asked of the server; it may end a watch sooner (kube-apiserver picks
 * a random time between its min-request-timeout and twice that). */
#define WATCH_TIMEOUT_S 300

struct kube_watch {
    kube_client *c;
    char *path, *selector;    /* selector URL-escaped, or NULL */
    kube_change_fn fn;
    void *ctx;
    pthread_mutex_t mu;       /* cache, rv, stop */
    pthread_cond_t cv;
    json_t *cache;            /* uid -> object */
    char rv[64];              /* resourceVersion to watch from */
    bool listed, stop, started;
    bool relist;              /* set by the stream: 410 */
    bool stream_error;        /* set by the stream: another ERROR */
    pthread_t thread;
    kube_watch_stats st;
};

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *uid_of(json_t *o)
{
    return jstr(json_object_get(o, "metadata"), "uid");
}

shale_status kube_watch_new(kube_client *c, const char *path, const char *selector,
                            kube_change_fn fn, void *ctx, kube_watch **out)
{
    *out = NULL;
    kube_watch *w = calloc(1, sizeof *w);
    if (!w)
        return AGENT_OOM();
    w->c = c;
    w->fn = fn;
    w->ctx = ctx;
    w->path = agent_strdup(path);
    w->selector = selector && *selector ? kube_escape(selector) : NULL;
    w->cache = json_object();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (!w->path || !w->cache || (selector && *selector && !w->selector)) {
        kube_watch_free(w);
        return AGENT_OOM();
    }
    *out = w;
    return SHALE_OK;
}

void kube_watch_free(kube_watch *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    json_decref(w->cache);
    free(w->path);
    free(w->selector);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

json_t *kube_watch_get(kube_watch *w, const char *uid)
{
    pthread_mutex_lock(&w->mu);
    json_t *o = json_deep_copy(json_object_get(w->cache, uid));
    pthread_mutex_unlock(&w->mu);
    return o;
}

char *kube_watch_uid_of(kube_watch *w, const char *name)
{
    char *uid = NULL;
    const char *k;
    json_t *o;
    pthread_mutex_lock(&w->mu);
    json_object_foreach(w->cache, k, o)
        if (jstr(json_object_get(o, "metadata"), "name") &&
            !strcmp(jstr(json_object_get(o, "metadata"), "name"), name)) {
            uid = agent_strdup(k);
            break;
        }
    pthread_mutex_unlock(&w->mu);
    return uid;
}

/* resourceVersions are opaque to clients, but every server so far uses
 * etcd's revision numbers; compare them when both are numbers. */
static bool older_rv(const char *a, const char *b)
{
    char *ea = NULL, *eb = NULL;
    if (!a || !b)
        return false;
    unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
    return *a && *b && !*ea && !*eb && x < y;
}

void kube_watch_put(kube_watch *w, json_t *obj)
{
    const char *uid = uid_of(obj);
    if (!uid)
        return;
    pthread_mutex_lock(&w->mu);
    json_t *cur = json_object_get(w->cache, uid);
    const char *have = cur ? jstr(json_object_get(cur, "metadata"), "resourceVersion") : NULL;
    const char *got = jstr(json_object_get(obj, "metadata"), "resourceVersion");
    if (!cur || older_rv(have, got))
        json_object_set_new(w->cache, uid, json_deep_copy(obj));
    pthread_mutex_unlock(&w->mu);
}

void kube_watch_get_stats(kube_watch *w, kube_watch_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
}

/* ---- the stream ------------------------------------------------------------ */

/* One watch event line; false ends the stream. */
static bool on_line(void *ctx, const char *line, size_t len)
{
    kube_watch *w = ctx;
    json_error_t err;
    json_t *ev = json_loadb(line, len, 0, &err);
    const char *type = jstr(ev, "type");
    json_t *o = json_object_get(ev, "object");
    if (!type || !json_is_object(o)) {
        LOGW("kubernetes: ignoring a watch line that is not an event (%.80s)",
             ev ? "no type or object" : err.text);
        json_decref(ev);
        return true;
    }
    if (!strcmp(type, "ERROR")) {
        /* A Status object: 410 Expired/Gone means our resourceVersion was
         * compacted away; list again.  Anything else: watch again later. */
        long long code = (long long)json_integer_value(json_object_get(o, "code"));
        LOGW("kubernetes: watch error %lld %s: %s", code, jstr(o, "reason") ?: "",
             jstr(o, "message") ?: "");
        pthread_mutex_lock(&w->mu);
        if (code == 410)
            w->relist = true;
        else
            w->stream_error = true;
        pthread_mutex_unlock(&w->mu);
        json_decref(ev);
        return false;
    }
    const char *rv = jstr(json_object_get(o, "metadata"), "resourceVersion");
    const char *uid = uid_of(o);
    char *changed = NULL;
    pthread_mutex_lock(&w->mu);
    if (rv && strlen(rv) < sizeof w->rv)
        snprintf(w->rv, sizeof w->rv, "%s", rv);
    if (!strcmp(type, "BOOKMARK")) {
        w->st.bookmarks++;
    } else if (uid && (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))) {
        w->st.events++;
        json_object_set(w->cache, uid, o);
        changed = agent_strdup(uid);
    } else if (uid && !strcmp(type, "DELETED")) {
        w->st.events++;
        json_object_del(w->cache, uid);
        changed = agent_strdup(uid);
    }
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    json_decref(ev);
    if (changed)
        w->fn(w->ctx, changed);
    free(changed);
    return !stop;
}

bool kube_watch_feed(kube_watch *w, const char *data, size_t len)
{
    pthread_mutex_lock(&w->mu);
    w->relist = w->stream_error = false;
    pthread_mutex_unlock(&w->mu);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t m = nl ? (size_t)(nl - (data + i)) : len - i;
        if (m && !on_line(w, data + i, m))
            return false;
        i += m + 1;
    }
    return true;
}

/* ---- list and watch ------------------------------------------------------- */

static bool wait_or_stop(kube_watch *w, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (!w->stop && ms)
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

/* Lists every page; on success replaces the cache and tells fn about every
 * object listed and every one that vanished.  *retry_ms: the server's
 * Retry-After, if it sent one. */
static bool list_all(kube_watch *w, uint32_t *retry_ms)
{
    json_t *fresh = json_object();
    char *cont = NULL, rv[64] = "";
    bool ok = fresh != NULL;
    *retry_ms = 0;
    while (ok) {
        size_t n = strlen(w->path) + (w->selector ? strlen(w->selector) : 0) +
                   (cont ? strlen(cont) : 0) + 64;
        char *path = malloc(n);
        if (!path) {
            ok = false;
            break;
        }
        snprintf(path, n, "%s?limit=500%s%s%s%s", w->path, w->selector ? "&labelSelector=" : "",
                 w->selector ? w->selector : "", cont ? "&continue=" : "", cont ? cont : "");
        free(cont);
        cont = NULL;
        kube_resp r = KUBE_RESP_INIT;
        shale_status rc = kube_request(w->c, "GET", path, NULL, NULL, 30, &r);
        free(path);
        json_error_t err;
        json_t *l = !rc && r.status == 200
                        ? json_loadb((const char *)r.body.data, r.body.len, 0, &err) : NULL;
        if (!l) {
            char why[512];
            if (rc)
                snprintf(why, sizeof why, "%s", shale_errmsg());
            else
                kube_resp_describe(&r, why, sizeof why);   /* body NUL-terminated */
            if (rc != SHALE_CLOSED)
                LOGW("kubernetes: list %s failed: %s", w->path, why);
            *retry_ms = r.retry_after_s * 1000u;
            kube_resp_free(&r);
            ok = false;
            break;
        }
        kube_resp_free(&r);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(l, "items"), i, o)
            if (uid_of(o))
                json_object_set(fresh, uid_of(o), o);
        json_t *md = json_object_get(l, "metadata");
        if (jstr(md, "resourceVersion"))
            snprintf(rv, sizeof rv, "%s", jstr(md, "resourceVersion"));
        if (jstr(md, "continue") && *jstr(md, "continue"))
            cont = kube_escape(jstr(md, "continue"));
        json_decref(l);
        if (!cont)
            break;
    }
    free(cont);
    if (!ok) {
        json_decref(fresh);
        return false;
    }
    /* Swap in the new cache; collect who changed (everyone listed, and
     * everyone who vanished) to call fn without the lock. */
    json_t *uids = json_array();
    const char *k;
    json_t *o;
    pthread_mutex_lock(&w->mu);
    json_object_foreach(w->cache, k, o)
        if (!json_object_get(fresh, k))
            json_array_append_new(uids, json_string(k));
    json_object_foreach(fresh, k, o)
        json_array_append_new(uids, json_string(k));
    json_decref(w->cache);
    w->cache = fresh;
    snprintf(w->rv, sizeof w->rv, "%s", *rv ? rv : "0");
    w->st.lists++;
    pthread_mutex_unlock(&w->mu);
    size_t i;
    json_t *u;
    json_array_foreach(uids, i, u)
        w->fn(w->ctx, json_string_value(u));
    json_decref(uids);
    return true;
}

bool kube_watch_list(kube_watch *w)
{
    uint32_t retry;
    w->listed = list_all(w, &retry);
    return w->listed;
}

static void *loop(void *arg)
{
    kube_watch *w = arg;
    uint32_t backoff = BACKOFF_MIN_MS, retry = 0;
    bool need_list = !w->listed;
    while (!wait_or_stop(w, 0)) {
        if (need_list) {
            if (!list_all(w, &retry)) {
                if (wait_or_stop(w, retry > backoff ? retry : backoff))
                    break;
                backoff = backoff < BACKOFF_MAX_MS / 2 ? backoff * 2 : BACKOFF_MAX_MS;
                continue;
            }
            need_list = false;
            backoff = BACKOFF_MIN_MS;   /* a good answer ends the backoff */
        }
        char rv[64];
        pthread_mutex_lock(&w->mu);
        snprintf(rv, sizeof rv, "%s", w->rv);
        w->relist = w->stream_error = false;
        w->st.watches++;
        pthread_mutex_unlock(&w->mu);
        size_t n = strlen(w->path) + (w->selector ? strlen(w->selector) : 0) + 160;
        char *path = malloc(n);
        if (!path) {
            wait_or_stop(w, backoff);
            continue;
        }
        snprintf(path, n, "%s?allowWatchBookmarks=true%s%s&resourceVersion=%s"
                          "&timeoutSeconds=%d&watch=true", w->path,
                 w->selector ? "&labelSelector=" : "", w->selector ? w->selector : "", rv,
                 WATCH_TIMEOUT_S);
        kube_resp r = KUBE_RESP_INIT;
        shale_status rc = kube_stream(w->c, path, WATCH_TIMEOUT_S + 30, on_line, w, &r);
        free(path);
        pthread_mutex_lock(&w->mu);
        bool relist = w->relist || (!rc && r.status == 410), err = w->stream_error;
        if (relist)
            w->st.relists_410++;
        pthread_mutex_unlock(&w->mu);
        if (rc == SHALE_CLOSED) {
            kube_resp_free(&r);
            break;
        }
        if (relist) {
            LOGI("kubernetes: resourceVersion %s expired (410): listing again", rv);
            kube_resp_free(&r);
            need_list = true;
            continue;
        }
        if (!rc && r.status == 200 && !err) {
            backoff = BACKOFF_MIN_MS;   /* the server ended the stream: watch on */
            kube_resp_free(&r);
            continue;
        }
        char why[512];
        if (rc)
            snprintf(why, sizeof why, "%s", shale_errmsg());
        else if (err)
            snprintf(why, sizeof why, "an error event in the stream");
        else
            kube_resp_describe(&r, why, sizeof why);
        retry = r.retry_after_s * 1000u;
        uint32_t delay = retry > backoff ? retry : backoff;
        LOGW("kubernetes: watch failed: %s; watching again in %u ms", why, delay);
        kube_resp_free(&r);
        if (wait_or_stop(w, delay))
            break;
        backoff = backoff < BACKOFF_MAX_MS / 2 ? backoff * 2 : BACKOFF_MAX_MS;
    }
    return NULL;
}

shale_status kube_watch_start(kube_watch *w)
{
    if (pthread_create(&w->thread, NULL, loop, w))
        return shale_error_set(SHALE_IO, "kubernetes watch: cannot start its thread");
    w->started = true;
    return SHALE_OK;
}
