/* source_kube.c -- see source_kube.h: the reconcile loop. */
#include "source_kube.h"
#include "kube_client.h"
#include "kube_queue.h"
#include "kube_status.h"
#include "kube_watch.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINALIZER "shale.io/split"
#define GROUP_VERSION "shale.io/v1alpha1"
/* Per-object retries: 500 ms doubling to 5 minutes (controller-runtime
 * uses 5 ms to 1000 s; a split is not urgent to the millisecond). */
#define RETRY_BASE_MS 500u
#define RETRY_MAX_MS (5u * 60 * 1000)
/* On shutdown, time left to write the last statuses. */
#define STATUS_GRACE_MS 2000

/* What this controller remembers about an object, beyond the cache: the
 * generations it handled.  Forgotten with the object. */
typedef struct ctl_state {
    struct ctl_state *next;
    char *uid;
    long long handled_gen;    /* submitted (or adopted) at this generation */
    long long refused_gen;    /* refused at this generation */
    long long abort_gen;      /* abort asked at this generation */
} ctl_state;

struct source_kube {
    char *shard;
    char *coll;               /* /apis/shale.io/v1alpha1/namespaces/NS/shardsplits */
    kube_client *c;
    kube_watch *w;
    kube_queue *q;
    kube_status *ks;
    split_service *svc;
    pthread_mutex_t mu;       /* states */
    ctl_state *states;
    pthread_t worker;
    bool started, stopped;
    /* Counters for /metrics (under mu). */
    uint64_t reconciles, retries, finalizer_failures;
    uint64_t refusals[3];     /* InvalidRequest, Conflict, AbortedBeforeStart */
};

static const char *const refusal_reasons[3] = {"InvalidRequest", "Conflict",
                                               "AbortedBeforeStart"};

static void bump(source_kube *k, uint64_t *counter)
{
    pthread_mutex_lock(&k->mu);
    (*counter)++;
    pthread_mutex_unlock(&k->mu);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool terminal(const char *phase)
{
    return phase && (!strcmp(phase, "Complete") || !strcmp(phase, "Failed") ||
                     !strcmp(phase, "Aborted"));
}

/* ---- per-object state ------------------------------------------------------ */

/* Runs fn on uid's state (created if missing) under the lock. */
static ctl_state *state_locked(source_kube *k, const char *uid)
{
    for (ctl_state *s = k->states; s; s = s->next)
        if (!strcmp(s->uid, uid))
            return s;
    ctl_state *s = calloc(1, sizeof *s);
    if (!s || !(s->uid = agent_strdup(uid))) {
        free(s);
        return NULL;
    }
    s->handled_gen = s->refused_gen = s->abort_gen = -1;
    s->next = k->states;
    k->states = s;
    return s;
}

static ctl_state get_state(source_kube *k, const char *uid)
{
    ctl_state copy = {NULL, NULL, -1, -1, -1};
    pthread_mutex_lock(&k->mu);
    ctl_state *s = state_locked(k, uid);
    if (s)
        copy = *s;
    pthread_mutex_unlock(&k->mu);
    return copy;
}

enum { ST_HANDLED, ST_REFUSED, ST_ABORT };
static void set_state(source_kube *k, const char *uid, int which, long long gen)
{
    pthread_mutex_lock(&k->mu);
    ctl_state *s = state_locked(k, uid);
    if (s && which == ST_HANDLED)
        s->handled_gen = gen;
    else if (s && which == ST_REFUSED)
        s->refused_gen = gen;
    else if (s)
        s->abort_gen = gen;
    pthread_mutex_unlock(&k->mu);
}

static void forget_state(source_kube *k, const char *uid)
{
    pthread_mutex_lock(&k->mu);
    for (ctl_state **p = &k->states; *p; p = &(*p)->next)
        if (!strcmp((*p)->uid, uid)) {
            ctl_state *s = *p;
            *p = s->next;
            free(s->uid);
            free(s);
            break;
        }
    pthread_mutex_unlock(&k->mu);
}

/* ---- one object ------------------------------------------------------------- */

typedef struct obj {
    json_t *o, *md, *spec, *status;
    const char *name, *uid, *rv;
    long long gen;
    bool deleting, has_fin, ours;
    kube_target t;
} obj;

static bool has_finalizer(json_t *md)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(md, "finalizers"), i, f)
        if (json_string_value(f) && !strcmp(json_string_value(f), FINALIZER))
            return true;
    return false;
}

static void obj_view(source_kube *k, json_t *o, obj *v)
{
    memset(v, 0, sizeof *v);
    v->o = o;
    v->md = json_object_get(o, "metadata");
    v->spec = json_object_get(o, "spec");
    v->status = json_object_get(o, "status");
    v->name = jstr(v->md, "name");
    v->uid = jstr(v->md, "uid");
    v->rv = jstr(v->md, "resourceVersion");
    v->gen = (long long)json_integer_value(json_object_get(v->md, "generation"));
    v->deleting = json_object_get(v->md, "deletionTimestamp") &&
                  !json_is_null(json_object_get(v->md, "deletionTimestamp"));
    v->has_fin = has_finalizer(v->md);
    const char *shard = jstr(json_object_get(v->spec, "parent"), "shard");
    v->ours = v->name && v->uid && shard && !strcmp(shard, k->shard);
    v->t = (kube_target){kube_client_namespace(k->c), v->name, v->uid, v->rv, v->gen,
                         v->status};
}

/* Reconcile's verdict: done, or retry after the object's backoff (at
 * least min_ms). */
typedef struct outcome {
    bool retry;
    uint32_t min_ms;
} outcome;

static const outcome DONE = {false, 0};

/* Adds or removes the finalizer with a merge patch carrying the cached
 * resourceVersion (a 409 means the cache is behind: the watch brings the
 * newer object and the retry uses it). */
static outcome set_finalizer(source_kube *k, obj *v, bool add)
{
    json_t *list = json_array(), *f;
    size_t i;
    json_array_foreach(json_object_get(v->md, "finalizers"), i, f)
        if (!json_string_value(f) || strcmp(json_string_value(f), FINALIZER))
            json_array_append(list, f);
    if (add)
        json_array_append_new(list, json_string(FINALIZER));
    json_t *p = json_pack("{s:{s:o, s:s}}", "metadata", "finalizers", list, "resourceVersion",
                          v->rv ? v->rv : "");
    char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    size_t n = strlen(k->coll) + strlen(v->name) + 2;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/%s", k->coll, v->name);
    kube_resp r = KUBE_RESP_INIT;
    shale_status rc = body && path ? kube_request(k->c, "PATCH", path, body,
                                                  "application/merge-patch+json", 30, &r)
                                   : AGENT_OOM();
    free(body);
    free(path);
    outcome out = DONE;
    if (!rc && r.status == 200) {
        json_error_t err;
        json_t *o = json_loadb((const char *)r.body.data, r.body.len, 0, &err);
        if (o)
            kube_watch_put(k->w, o);   /* the next reconcile sees the finalizer */
        json_decref(o);
        kube_status_touch(k->ks, v->uid);
        LOGI("ShardSplit %s/%s: finalizer %s %s", kube_client_namespace(k->c), v->name,
             FINALIZER, add ? "added" : "removed");
    } else if (!rc && r.status == 404) {
        /* Gone: the DELETED event forgets it. */
    } else {
        char why[512];
        if (rc)
            snprintf(why, sizeof why, "%s", shale_errmsg());
        else
            kube_resp_describe(&r, why, sizeof why);
        out.retry = true;
        out.min_ms = r.retry_after_s * 1000u;
        bump(k, &k->finalizer_failures);
        LOGW("ShardSplit %s/%s: cannot %s the finalizer (%s)%s; retrying",
             kube_client_namespace(k->c), v->name, add ? "add" : "remove", why,
             add ? ", the split waits" : "");
    }
    kube_resp_free(&r);
    return out;
}

/* Refuses the request at this generation: status, Warning event, and the
 * finalizer off if it was ours to guard this request (never a loop: the
 * MODIFIED events our writes cause find refused_gen == gen). */
static outcome refuse(source_kube *k, obj *v, const char *phase, const char *reason,
                      const char *msg, bool split_known)
{
    LOGW("ShardSplit %s/%s refused (%s): %s", kube_client_namespace(k->c), v->name, reason,
         msg);
    set_state(k, v->uid, ST_REFUSED, v->gen);
    for (int i = 0; i < 3; i++)
        if (!strcmp(reason, refusal_reasons[i]))
            bump(k, &k->refusals[i]);
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", v->name, "phase", phase,
                          "reason", reason, "message", msg, "refused", 1);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (text)
        kube_status_want(k->ks, &v->t, text);
    free(text);
    if (v->has_fin && !split_known)
        return set_finalizer(k, v, false);
    return DONE;
}

/* A request refused now because the shard is busy: the running split's
 * name, from the service's list; NULL if none. */
static char *busy_with(source_kube *k)
{
    char *text = NULL, *name = NULL;
    if (k->svc->ops->list(k->svc, &text))
        return NULL;
    json_error_t err;
    json_t *a = json_loads(text, 0, &err), *s;
    free(text);
    size_t i;
    json_array_foreach(a, i, s)
        if (!terminal(jstr(s, "phase")) && !json_is_true(json_object_get(s, "dryRun")) &&
            jstr(s, "name")) {
            name = agent_strdup(jstr(s, "name"));
            break;
        }
    json_decref(a);
    return name;
}

/* The checks the splitter would make that need no store: fields, names,
 * URIs, overlaps and gaps between the children (the parent's own range is
 * checked at submit, against its manifest). */
static shale_status local_check(source_kube *k, split_request *r)
{
    split_request *c = split_request_dup(r);
    if (!c)
        return AGENT_OOM();
    const uint8_t *s = NULL, *e = NULL;
    size_t sl = 0, el = 0;
    bool s_unb = false, e_unb = false;
    for (size_t i = 0; i < c->child_count; i++) {
        const split_child *ch = &c->children[i];
        if (!ch->start)
            s_unb = true;
        else if (!s_unb && (!s || shale_key_compare(ch->start, ch->start_len, s, sl) < 0))
            s = ch->start, sl = ch->start_len;
        if (!ch->end)
            e_unb = true;
        else if (!e_unb && (!e || shale_key_compare(ch->end, ch->end_len, e, el) > 0))
            e = ch->end, el = ch->end_len;
    }
    /* A placeholder store: the real default comes from the splitter. */
    shale_status rc = split_request_validate(c, k->shard, c->parent_store ? NULL
                                                                          : "mem://parent",
                                             NULL, s_unb ? NULL : s, s_unb ? 0 : sl,
                                             e_unb ? NULL : e, e_unb ? 0 : el);
    split_request_free(c);
    return rc;
}

static split_request *request_of(obj *v, char *why, size_t n)
{
    json_t *rq = json_pack("{s:s, s:O, s:O}", "name", v->name, "parent",
                           json_object_get(v->spec, "parent"), "children",
                           json_object_get(v->spec, "children") ?: json_null());
    if (rq && json_object_get(v->spec, "dryRun"))
        json_object_set(rq, "dryRun", json_object_get(v->spec, "dryRun"));
    if (rq && json_object_get(v->spec, "verify"))
        json_object_set(rq, "verify", json_object_get(v->spec, "verify"));
    if (rq && json_object_get(v->spec, "splitBy"))   /* children without ranges */
        json_object_set(rq, "splitBy", json_object_get(v->spec, "splitBy"));
    char *text = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
    json_decref(rq);
    char origin[400];
    snprintf(origin, sizeof origin, "ShardSplit %.100s/%.253s", v->t.ns, v->name);
    split_request *r = NULL;
    shale_status rc = text ? split_request_parse(origin, text, strlen(text), &r) : AGENT_OOM();
    free(text);
    if (rc)
        snprintf(why, n, "%s", shale_errmsg());
    return rc ? NULL : r;
}

/* The status of an earlier run shows this generation refused (after a
 * restart the controller's memory is empty; the object's is not). */
static bool refused_before(obj *v)
{
    json_t *acc = json_array_get(json_object_get(v->status, "conditions"), 0);
    return jstr(v->status, "phase") && !strcmp(jstr(v->status, "phase"), "Failed") &&
           jstr(acc, "type") && !strcmp(jstr(acc, "type"), "Accepted") && jstr(acc, "status") &&
           !strcmp(jstr(acc, "status"), "False") &&
           json_integer_value(json_object_get(v->status, "observedGeneration")) == v->gen;
}

/* A split the splitter knows under this name, and this object stands for
 * it: keep the finalizer while it runs, drop it after, and once it has
 * ended write its final status here (a running split's statuses come
 * from the listener, in order). */
static outcome adopted(source_kube *k, obj *v, const char *cur_text)
{
    json_error_t err;
    json_t *cur = json_loads(cur_text, 0, &err);
    const char *phase = jstr(cur, "phase");
    bool done = terminal(phase), dry = json_is_true(json_object_get(cur, "dryRun"));
    outcome out = DONE;
    if (done)
        kube_status_want(k->ks, &v->t, cur_text);
    if (!done && !dry && !v->has_fin)
        out = set_finalizer(k, v, true);     /* e.g. removed by hand */
    else if (done && v->has_fin)
        out = set_finalizer(k, v, false);    /* it guards nothing now */
    json_decref(cur);
    return out;
}

static outcome reconcile(source_kube *k, const char *uid)
{
    json_t *o = kube_watch_get(k->w, uid);
    if (!o) {   /* deleted: forget everything about it */
        forget_state(k, uid);
        kube_status_forget(k->ks, uid);
        return DONE;
    }
    obj v;
    obj_view(k, o, &v);
    outcome out = DONE;
    char *cur = NULL;
    if (!v.ours || !v.spec)
        goto out;   /* another shard's request */
    bool known = k->svc->ops->get(k->svc, v.name, &cur) == SHALE_OK;
    json_error_t err;
    json_t *cj = known ? json_loads(cur, 0, &err) : NULL;
    bool cur_done = terminal(jstr(cj, "phase"));
    json_decref(cj);
    ctl_state st = get_state(k, uid);

    if (v.deleting) {
        /* Before the WAL wipe the split aborts; after it, it finishes.
         * The finalizer goes once it is over (the listener requeues). */
        if (known && !cur_done) {
            if (st.abort_gen != v.gen) {
                char *s2 = NULL;
                set_state(k, uid, ST_ABORT, v.gen);
                if (k->svc->ops->abort(k->svc, v.name, &s2))
                    LOGW("ShardSplit %s/%s deleted: %s", v.t.ns, v.name, shale_errmsg());
                else
                    LOGI("ShardSplit %s/%s deleted: aborting its split", v.t.ns, v.name);
                free(s2);
            }
        } else if (v.has_fin) {
            out = set_finalizer(k, &v, false);
        }
        goto out;
    }
    if (st.refused_gen == v.gen || (!known && refused_before(&v))) {
        if (v.has_fin && !known)
            out = set_finalizer(k, &v, false);
        goto out;
    }
    if (known && st.handled_gen == v.gen) {
        out = adopted(k, &v, cur);
        goto out;
    }
    if (json_is_true(json_object_get(v.spec, "abort"))) {
        if (known && !cur_done && st.abort_gen != v.gen) {
            char *s2 = NULL;
            set_state(k, uid, ST_ABORT, v.gen);
            if (k->svc->ops->abort(k->svc, v.name, &s2))
                LOGW("ShardSplit %s/%s: abort refused: %s", v.t.ns, v.name, shale_errmsg());
            free(s2);
        } else if (!known) {
            out = refuse(k, &v, "Aborted", "AbortedBeforeStart",
                         "spec.abort is set: the split was not started", false);
        }
        if (known)
            set_state(k, uid, ST_HANDLED, v.gen);
        goto out;
    }
    /* A generation not handled yet. */
    char why[1024] = "";
    split_request *r = request_of(&v, why, sizeof why);
    if (!r) {
        out = refuse(k, &v, "Failed", "InvalidRequest", why, known);
        goto out;
    }
    if (!known) {
        if (local_check(k, r)) {
            snprintf(why, sizeof why, "%s", shale_errmsg());
            split_request_free(r);
            out = refuse(k, &v, "Failed", "InvalidRequest", why, false);
            goto out;
        }
        char *busy = r->dry_run ? NULL : busy_with(k);
        if (busy) {
            snprintf(why, sizeof why, "shard %s is mid-split (%s); one split at a time: "
                                      "edit or re-create this ShardSplit once it is over",
                     k->shard, busy);
            free(busy);
            split_request_free(r);
            out = refuse(k, &v, "Failed", "Conflict", why, false);
            goto out;
        }
        if (!r->dry_run && !v.has_fin) {
            /* Before the split can start: a delete must never outrun it. */
            out = set_finalizer(k, &v, true);
            if (out.retry) {
                split_request_free(r);
                goto out;
            }
            v.has_fin = true;
        }
    }
    bool created = false;
    char *st_text = NULL;
    shale_status rc = k->svc->ops->submit(k->svc, r, &created, &st_text);
    snprintf(why, sizeof why, "%s", rc ? shale_errmsg() : "");
    split_request_free(r);
    if (!rc) {
        set_state(k, uid, ST_HANDLED, v.gen);
        if (created)
            LOGI("ShardSplit %s/%s accepted", v.t.ns, v.name);
        else
            out = adopted(k, &v, st_text);   /* the journal had it: restart or re-create */
    } else if (rc == SHALE_INVALID_ARGUMENT) {
        out = refuse(k, &v, "Failed", "InvalidRequest", why, known);
    } else if (rc == SHALE_CONFLICT && known && v.gen > 1) {
        /* An edited spec: the accepted request stands.  Say that the new
         * generation was seen, and why nothing changed. */
        set_state(k, uid, ST_HANDLED, v.gen);
        if (json_integer_value(json_object_get(v.status, "observedGeneration")) != v.gen)
            kube_status_event(k->ks, &v.t, true, "SpecChangeIgnored",
                              "the spec changed after the split was accepted; the accepted "
                              "request stands");
        if (cur_done)
            kube_status_want(k->ks, &v.t, cur);
        else
            out = adopted(k, &v, cur);
    } else if (rc == SHALE_CONFLICT) {
        out = refuse(k, &v, "Failed", "Conflict", why, known);
    } else {
        LOGW("ShardSplit %s/%s: cannot submit it (%s); retrying", v.t.ns, v.name, why);
        out.retry = true;
    }
    free(st_text);
out:
    free(cur);
    json_decref(o);
    return out;
}

/* ---- wiring ------------------------------------------------------------------ */

static void on_change(void *ctx, const char *uid)
{
    source_kube *k = ctx;
    kube_queue_add(k->q, uid);
}

static void process(source_kube *k, const char *uid)
{
    bump(k, &k->reconciles);
    outcome o = reconcile(k, uid);
    if (o.retry) {
        bump(k, &k->retries);
        uint32_t d = kube_queue_add_rate_limited(k->q, uid, o.min_ms);
        LOGI("kubernetes: object %s retried in %u ms (attempt %u)", uid, d,
             kube_queue_failures(k->q, uid));
    } else {
        kube_queue_forget(k->q, uid);
    }
}

/* Reconciles whatever is ready, on the calling thread. */
static void drain(source_kube *k)
{
    char *uid;
    while (kube_queue_get(k->q, 0, &uid)) {
        process(k, uid);
        kube_queue_done(k->q, uid);
        free(uid);
    }
}

static void *work(void *arg)
{
    source_kube *k = arg;
    char *uid;
    while (kube_queue_get(k->q, -1, &uid)) {
        process(k, uid);
        kube_queue_done(k->q, uid);
        free(uid);
    }
    return NULL;
}

void source_kube_on_status(void *ctx, const char *name, const char *status_json)
{
    source_kube *k = ctx;
    char *uid = kube_watch_uid_of(k->w, name);
    json_t *o = uid ? kube_watch_get(k->w, uid) : NULL;
    if (o) {
        obj v;
        obj_view(k, o, &v);
        if (v.ours) {
            kube_status_want(k->ks, &v.t, status_json);
            json_error_t err;
            json_t *s = json_loads(status_json, 0, &err);
            if (terminal(jstr(s, "phase")))
                kube_queue_add(k->q, uid);   /* its finalizer guards nothing now */
            json_decref(s);
        }
    }
    json_decref(o);
    free(uid);
}

shale_status source_kube_new(const agent_config *cfg, split_service *svc, source_kube **out)
{
    *out = NULL;
    source_kube *k = calloc(1, sizeof *k);
    if (!k)
        return AGENT_OOM();
    pthread_mutex_init(&k->mu, NULL);
    k->svc = svc;
    k->shard = agent_strdup(cfg->shard);
    shale_status rc = kube_client_new(cfg->kubeconfig, cfg->kube_namespace, cfg->kube_insecure,
                                      &k->c);
    if (!rc) {
        kube_client_set_shard(k->c, cfg->shard);
        const char *ns = kube_client_namespace(k->c);
        size_t n = strlen(ns) + 64;
        k->coll = malloc(n);
        if (k->coll)
            snprintf(k->coll, n, "/apis/" GROUP_VERSION "/namespaces/%s/shardsplits", ns);
        rc = k->coll && k->shard ? SHALE_OK : AGENT_OOM();
    }
    if (!rc)
        rc = kube_queue_new(RETRY_BASE_MS, RETRY_MAX_MS, &k->q);
    if (!rc)
        rc = kube_watch_new(k->c, k->coll, cfg->kube_selector, on_change, k, &k->w);
    if (!rc)
        rc = kube_status_new(k->c, cfg->shard, cfg->kube_status_interval_ms, &k->ks);
    if (rc) {
        source_kube_free(k);
        return rc;
    }
    if (kube_client_insecure(k->c))
        LOGW("kubernetes: TLS verification is OFF (insecure-skip-tls-verify)");
    LOGI("kubernetes: watching ShardSplits in %s on %s", kube_client_namespace(k->c),
         kube_client_server(k->c));
    *out = k;
    return SHALE_OK;
}

bool source_kube_list_once(source_kube *k)
{
    bool ok = kube_watch_list(k->w);
    drain(k);
    return ok;
}

/* The source's metrics (metrics.h), in the exposition format. */
static char *render_metrics(void *ctx)
{
    source_kube *k = ctx;
    kube_watch_stats ws;
    kube_status_stats ss;
    kube_watch_get_stats(k->w, &ws);
    kube_status_get_stats(k->ks, &ss);
    pthread_mutex_lock(&k->mu);
    uint64_t rec = k->reconciles, ret = k->retries, ff = k->finalizer_failures;
    uint64_t ref[3] = {k->refusals[0], k->refusals[1], k->refusals[2]};
    pthread_mutex_unlock(&k->mu);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    if (!f)
        return NULL;
    fprintf(f, "# HELP shale_kube_requests_total Kubernetes API requests sent.\n"
               "# TYPE shale_kube_requests_total counter\n"
               "shale_kube_requests_total %llu\n",
            (unsigned long long)kube_client_requests(k->c));
    fprintf(f, "# HELP shale_kube_watch_total Lists and watches of ShardSplits; relists "
               "after 410 Gone.\n# TYPE shale_kube_watch_total counter\n"
               "shale_kube_watch_total{kind=\"list\"} %llu\n"
               "shale_kube_watch_total{kind=\"watch\"} %llu\n"
               "shale_kube_watch_total{kind=\"relist_410\"} %llu\n",
            (unsigned long long)ws.lists, (unsigned long long)ws.watches,
            (unsigned long long)ws.relists_410);
    fprintf(f, "# HELP shale_kube_reconciles_total ShardSplits reconciled, and retried "
               "with backoff.\n# TYPE shale_kube_reconciles_total counter\n"
               "shale_kube_reconciles_total %llu\nshale_kube_retries_total %llu\n"
               "shale_kube_finalizer_failures_total %llu\n",
            (unsigned long long)rec, (unsigned long long)ret, (unsigned long long)ff);
    fprintf(f, "# HELP shale_kube_refusals_total Requests refused, by reason.\n"
               "# TYPE shale_kube_refusals_total counter\n");
    for (int i = 0; i < 3; i++)
        fprintf(f, "shale_kube_refusals_total{reason=\"%s\"} %llu\n", refusal_reasons[i],
                (unsigned long long)ref[i]);
    fprintf(f, "# HELP shale_kube_status_writes_total Status patches by result; wanted "
               "statuses dropped unwritten for a newer one.\n"
               "# TYPE shale_kube_status_writes_total counter\n"
               "shale_kube_status_writes_total{result=\"ok\"} %llu\n"
               "shale_kube_status_writes_total{result=\"error\"} %llu\n"
               "shale_kube_status_coalesced_total %llu\n",
            (unsigned long long)ss.status_writes, (unsigned long long)ss.status_failures,
            (unsigned long long)ss.coalesced);
    fprintf(f, "# HELP shale_kube_events_total Events by outcome.\n"
               "# TYPE shale_kube_events_total counter\n"
               "shale_kube_events_total{result=\"posted\"} %llu\n"
               "shale_kube_events_total{result=\"aggregated\"} %llu\n"
               "shale_kube_events_total{result=\"dropped\"} %llu\n"
               "shale_kube_events_total{result=\"error\"} %llu\n",
            (unsigned long long)ss.events_posted, (unsigned long long)ss.events_aggregated,
            (unsigned long long)ss.events_dropped, (unsigned long long)ss.event_failures);
    fclose(f);
    return out;
}

shale_status source_kube_start(source_kube *k)
{
    metrics_set_extra(render_metrics, k);
    if (pthread_create(&k->worker, NULL, work, k))
        return shale_error_set(SHALE_IO, "kubernetes source: cannot start its worker");
    k->started = true;
    shale_status rc = kube_watch_start(k->w);
    return rc;
}

void source_kube_feed(source_kube *k, const char *data, size_t len)
{
    kube_watch_feed(k->w, data, len);
    drain(k);
}

uint64_t source_kube_requests(source_kube *k)
{
    return kube_client_requests(k->c);
}

void source_kube_stop(source_kube *k)
{
    if (!k)
        return;
    if (k->q)
        kube_queue_shutdown(k->q);
    if (k->started && !k->stopped)
        pthread_join(k->worker, NULL);
    k->stopped = true;
}

void source_kube_free(source_kube *k)
{
    if (!k)
        return;
    if (k->started)
        metrics_set_extra(NULL, NULL);
    source_kube_stop(k);
    /* The last statuses first (bounded), then end every request. */
    if (k->ks && k->started) {
        int64_t end = agent_mono_ms() + STATUS_GRACE_MS;
        while (!kube_status_idle(k->ks) && agent_mono_ms() < end)
            agent_sleep_ms(20);
    }
    if (k->c)
        kube_client_cancel(k->c);
    kube_watch_free(k->w);
    kube_status_free(k->ks, 0);
    kube_queue_free(k->q);
    kube_client_free(k->c);
    while (k->states) {
        ctl_state *s = k->states;
        k->states = s->next;
        free(s->uid);
        free(s);
    }
    free(k->coll);
    free(k->shard);
    pthread_mutex_destroy(&k->mu);
    free(k);
}
