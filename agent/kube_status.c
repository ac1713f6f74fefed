/* kube_status.c -- see kube_status.h. */
#include "kube_status.h"
#include "log.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MIN_MS 200u
#define RETRY_MAX_MS 30000u
#define API_GROUP_VERSION "shale.io/v1alpha1"

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool streq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static bool terminal(const char *phase)
{
    return phase && (!strcmp(phase, "Complete") || !strcmp(phase, "Failed") ||
                     !strcmp(phase, "Aborted"));
}

static void rfc3339_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- conditions and the status body (pure) ---------------------------------- */

static json_t *cond(json_t *prev, const char *type, bool on, const char *reason,
                    const char *msg, long long gen, const char *now)
{
    const char *status = on ? "True" : "False";
    const char *since = now;
    size_t i;
    json_t *p;
    json_array_foreach(prev, i, p)
        if (streq(jstr(p, "type"), type) && streq(jstr(p, "status"), status) &&
            jstr(p, "lastTransitionTime"))
            since = jstr(p, "lastTransitionTime");   /* unchanged: keep its time */
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status", status,
                     "reason", reason && *reason ? reason : type, "message", msg ? msg : "",
                     "lastTransitionTime", since, "observedGeneration", (json_int_t)gen);
}

json_t *kube_conditions(json_t *doc, long long gen, json_t *prev, const char *now)
{
    const char *phase = jstr(doc, "phase") ? jstr(doc, "phase") : "Pending";
    const char *reason = jstr(doc, "reason"), *msg = jstr(doc, "message");
    bool refused = json_is_true(json_object_get(doc, "refused"));
    bool done = terminal(phase), stalled = !strcmp(phase, "Stalled");
    char smsg[600] = "";
    json_t *st = json_object_get(doc, "stalled");
    if (stalled)
        snprintf(smsg, sizeof smsg, "step %.40s failed %" JSON_INTEGER_FORMAT " times, "
                 "retrying at %.40s: %.400s", jstr(st, "step") ?: "?",
                 json_integer_value(json_object_get(st, "retries")),
                 jstr(st, "nextRetryTime") ?: "?", jstr(st, "error") ?: (msg ? msg : ""));
    json_t *c = json_array();
    json_array_append_new(c, cond(prev, "Accepted", !refused, refused ? reason : "Accepted",
                                  refused ? msg : "", gen, now));
    json_array_append_new(c, cond(prev, "Progressing", !done && !refused, phase,
                                  done || refused ? "" : phase, gen, now));
    json_array_append_new(c, cond(prev, "Stalled", stalled, stalled ? "StepRetrying" : "Stalled",
                                  smsg, gen, now));
    json_array_append_new(c, cond(prev, "Complete", !strcmp(phase, "Complete"),
                                  !strcmp(phase, "Complete") ? reason : "Complete",
                                  !strcmp(phase, "Complete") ? msg : "", gen, now));
    json_array_append_new(c, cond(prev, "Failed", !strcmp(phase, "Failed"),
                                  !strcmp(phase, "Failed") ? reason : "Failed",
                                  !strcmp(phase, "Failed") ? msg : "", gen, now));
    json_array_append_new(c, cond(prev, "Aborted", !strcmp(phase, "Aborted"),
                                  !strcmp(phase, "Aborted") ? reason : "Aborted",
                                  !strcmp(phase, "Aborted") ? msg : "", gen, now));
    return c;
}

json_t *kube_status_body(json_t *doc, long long gen, json_t *prev_status, const char *now)
{
    static const char *const copy[] = {"phase", "reason", "message", "checkpointId",
                                       "startTime", "completionTime", "childCount", "steps",
                                       "children", "plan", "verifyMode", "stalled", "lease",
                                       "rangesComputed", "splitBy"};
    json_t *st = json_object();
    for (size_t i = 0; i < sizeof copy / sizeof *copy; i++) {
        json_t *v = json_object_get(doc, copy[i]);
        if (v && !json_is_null(v))
            json_object_set(st, copy[i], v);
    }
    if (!json_object_get(st, "phase"))
        json_object_set_new(st, "phase", json_string("Pending"));
    json_object_set_new(st, "observedGeneration", json_integer((json_int_t)gen));
    json_object_set_new(st, "conditions",
                        kube_conditions(doc, gen, json_object_get(prev_status, "conditions"),
                                        now));
    return st;
}

/* The part of a status whose change is worth a write. */
static json_t *significant(json_t *s)
{
    json_t *v = json_pack("{s:O?, s:O?, s:O?, s:O?}", "phase", json_object_get(s, "phase"),
                          "reason", json_object_get(s, "reason"), "message",
                          json_object_get(s, "message"), "observedGeneration",
                          json_object_get(s, "observedGeneration"));
    json_t *conds = json_array(), *c;
    size_t i;
    json_array_foreach(json_object_get(s, "conditions"), i, c)
        json_array_append_new(conds, json_pack("{s:O?, s:O?, s:O?, s:O?}", "type",
                                               json_object_get(c, "type"), "status",
                                               json_object_get(c, "status"), "reason",
                                               json_object_get(c, "reason"),
                                               "observedGeneration",
                                               json_object_get(c, "observedGeneration")));
    json_object_set_new(v, "conditions", conds);
    /* "" and absent are the same to a reader. */
    const char *k;
    json_t *x;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, x)
        if (json_is_null(x) || (json_is_string(x) && !*json_string_value(x)))
            json_object_del(v, k);
    return v;
}

bool kube_status_differs(json_t *a, json_t *b)
{
    if (!a || !b)
        return a != b;
    json_t *x = significant(a), *y = significant(b);
    bool d = !json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return d;
}

/* ---- the writer ------------------------------------------------------------- */

typedef struct target_copy {
    char *ns, *name, *uid, *rv;
    long long gen;
} target_copy;

typedef struct slot {
    struct slot *next;
    target_copy t;
    json_t *wanted;           /* newest wanted document, or NULL */
    json_t *cached;           /* the status the cache showed last */
    json_t *written;          /* the last status body written, or NULL */
    char seen[160];           /* phase/reason of the last phase event */
    int64_t last_write_ms;    /* 0: none yet */
    int64_t retry_at_ms;
    uint32_t backoff_ms;
    bool busy;
    bool primed;              /* seen set from the object's status */
} slot;

typedef struct event {
    struct event *next;
    target_copy t;
    bool warning;
    char *reason, *message;
    char when[32];
} event;

struct kube_status {
    kube_client *c;
    char *instance;
    uint32_t interval_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;
    event *events, *events_tail;
    kube_evagg *agg;
    bool stop, busy;
    pthread_t thread;
    kube_status_stats st;
};

static void tc_free(target_copy *t)
{
    free(t->ns);
    free(t->name);
    free(t->uid);
    free(t->rv);
    memset(t, 0, sizeof *t);
}

static void tc_set(target_copy *t, const kube_target *s)
{
    tc_free(t);
    t->ns = agent_strdup(s->ns ? s->ns : "default");
    t->name = agent_strdup(s->name ? s->name : "");
    t->uid = agent_strdup(s->uid ? s->uid : "");
    t->rv = agent_strdup(s->rv ? s->rv : "");
    t->gen = s->generation;
}

static void tc_copy(target_copy *d, const target_copy *s)
{
    kube_target k = {s->ns, s->name, s->uid, s->rv, s->gen, NULL};
    memset(d, 0, sizeof *d);
    tc_set(d, &k);
}

static slot *slot_of(kube_status *ks, const char *uid, bool create)
{
    for (slot *s = ks->slots; s; s = s->next)
        if (!strcmp(s->t.uid, uid))
            return s;
    if (!create)
        return NULL;
    slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->next = ks->slots;
    ks->slots = s;
    return s;
}

static void slot_free(slot *s)
{
    tc_free(&s->t);
    json_decref(s->wanted);
    json_decref(s->cached);
    json_decref(s->written);
    free(s);
}

static void event_free(event *e)
{
    tc_free(&e->t);
    free(e->reason);
    free(e->message);
    free(e);
}

/* Queues an event.  Locked. */
static void queue_event_locked(kube_status *ks, const target_copy *t, bool warning,
                               const char *reason, const char *message)
{
    event *e = calloc(1, sizeof *e);
    if (!e)
        return;
    tc_copy(&e->t, t);
    e->warning = warning;
    e->reason = agent_strdup(reason);
    e->message = agent_strdup(message ? message : "");
    rfc3339_now(e->when, sizeof e->when);
    if (ks->events_tail)
        ks->events_tail->next = e;
    else
        ks->events = e;
    ks->events_tail = e;
    pthread_cond_broadcast(&ks->cv);
}

static const char *describe_phase(const char *phase)
{
    static const char *const d[][2] = {
        {"Accepted", "the split was accepted and journaled"},
        {"Pending", "dry run: planning"},
        {"Fencing", "fencing the parent's writer"},
        {"Flushing", "flushing the parent's memtable and WAL"},
        {"WipingWAL", "wiping the local WAL (the point of no return)"},
        {"Cloning", "cloning the children"},
        {"Verifying", "verifying the children"},
        {"Complete", "the split is complete"},
        {"Aborted", "the split was aborted"},
        {"Failed", "the split failed"},
        {"Stalled", "a step keeps failing and is retried"}};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        if (!strcmp(d[i][0], phase))
            return d[i][1];
    return phase;
}

/* What a phase event is about: the phase, and for a refusal its reason and
 * generation (every refused generation is worth a Warning). */
static void seen_key(char *buf, size_t n, const char *phase, const char *reason, bool refused,
                     long long gen)
{
    if (refused)
        snprintf(buf, n, "%s/%s/%lld", phase ? phase : "", reason ? reason : "", gen);
    else
        snprintf(buf, n, "%s", phase ? phase : "");
}

void kube_status_want(kube_status *ks, const kube_target *t, const char *doc_text)
{
    json_error_t err;
    json_t *doc = json_loads(doc_text, 0, &err);
    if (!doc || !t->uid)
        return (void)json_decref(doc);
    const char *phase = jstr(doc, "phase") ? jstr(doc, "phase") : "Pending";
    bool refused = json_is_true(json_object_get(doc, "refused"));
    char seen[160];
    seen_key(seen, sizeof seen, phase, jstr(doc, "reason"), refused, t->generation);
    pthread_mutex_lock(&ks->mu);
    slot *s = slot_of(ks, t->uid, true);
    if (!s) {
        pthread_mutex_unlock(&ks->mu);
        json_decref(doc);
        return;
    }
    bool fresh = !s->primed;
    s->primed = true;
    tc_set(&s->t, t);
    json_decref(s->cached);
    s->cached = t->status ? json_deep_copy(t->status) : NULL;
    if (fresh && t->status && jstr(t->status, "phase")) {
        /* What the object already shows was announced by an earlier run. */
        json_t *acc = json_array_get(json_object_get(t->status, "conditions"), 0);
        bool crefused = streq(jstr(acc, "type"), "Accepted") && streq(jstr(acc, "status"), "False");
        seen_key(s->seen, sizeof s->seen, jstr(t->status, "phase"), jstr(t->status, "reason"),
                 crefused, (long long)json_integer_value(json_object_get(t->status,
                                                                         "observedGeneration")));
    }
    if (strcmp(s->seen, seen)) {
        snprintf(s->seen, sizeof s->seen, "%s", seen);
        const char *msg = jstr(doc, "message");
        bool warn = refused || !strcmp(phase, "Failed") || !strcmp(phase, "Stalled");
        const char *reason = (refused || !strcmp(phase, "Failed")) && jstr(doc, "reason") &&
                                     *jstr(doc, "reason") ? jstr(doc, "reason") : phase;
        queue_event_locked(ks, &s->t, warn, reason,
                           msg && *msg ? msg : describe_phase(phase));
    }
    if (s->wanted)
        ks->st.coalesced++;
    json_decref(s->wanted);
    s->wanted = doc;
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
}

void kube_status_event(kube_status *ks, const kube_target *t, bool warning, const char *reason,
                       const char *message)
{
    target_copy tc = {0};
    tc_set(&tc, t);
    pthread_mutex_lock(&ks->mu);
    queue_event_locked(ks, &tc, warning, reason, message);
    pthread_mutex_unlock(&ks->mu);
    tc_free(&tc);
}

void kube_status_touch(kube_status *ks, const char *uid)
{
    pthread_mutex_lock(&ks->mu);
    slot *s = slot_of(ks, uid, true);
    if (s && !s->t.uid) {
        kube_target k = {NULL, NULL, uid, NULL, 0, NULL};
        tc_set(&s->t, &k);
    }
    if (s)
        s->last_write_ms = agent_mono_ms();
    pthread_mutex_unlock(&ks->mu);
}

void kube_status_forget(kube_status *ks, const char *uid)
{
    pthread_mutex_lock(&ks->mu);
    for (slot **p = &ks->slots; *p; p = &(*p)->next)
        if (!strcmp((*p)->t.uid, uid) && !(*p)->busy) {
            slot *s = *p;
            *p = s->next;
            slot_free(s);
            break;
        }
    kube_evagg_forget(ks->agg, uid);
    pthread_mutex_unlock(&ks->mu);
}

bool kube_status_idle(kube_status *ks)
{
    pthread_mutex_lock(&ks->mu);
    bool idle = !ks->busy && !ks->events;
    for (slot *s = ks->slots; idle && s; s = s->next)
        idle = !s->wanted;
    pthread_mutex_unlock(&ks->mu);
    return idle;
}

void kube_status_get_stats(kube_status *ks, kube_status_stats *out)
{
    pthread_mutex_lock(&ks->mu);
    *out = ks->st;
    pthread_mutex_unlock(&ks->mu);
}

/* When the slot's wanted status may be written (INT64_MAX: nothing). */
static int64_t due_of(const kube_status *ks, const slot *s)
{
    if (!s->wanted || s->busy)
        return INT64_MAX;
    int64_t due = 0;
    if (!terminal(jstr(s->wanted, "phase")) && s->last_write_ms)
        due = s->last_write_ms + ks->interval_ms;
    return due > s->retry_at_ms ? due : s->retry_at_ms;
}

static char *ns_path(const char *ns, const char *fmt, const char *name)
{
    size_t n = strlen(ns) + strlen(fmt) + (name ? strlen(name) : 0) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, fmt, ns, name ? name : "");
    return p;
}

/* Writes one status (unlocked).  Returns the body written (new reference)
 * or NULL; *retry_ms > 0 asks for a retry; *gone: 404. */
static json_t *write_status(kube_status *ks, const target_copy *t, json_t *doc, json_t *base,
                            bool *skipped, uint32_t *retry_ms, bool *gone)
{
    char now[32];
    rfc3339_now(now, sizeof now);
    *skipped = false;
    *retry_ms = 0;
    *gone = false;
    json_t *body = kube_status_body(doc, t->gen, base, now);
    if (!kube_status_differs(body, base)) {
        *skipped = true;
        return body;
    }
    json_t *p = json_pack("{s:O}", "status", body);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    char *path = ns_path(t->ns, "/apis/" API_GROUP_VERSION "/namespaces/%s/shardsplits/%s/status",
                         t->name);
    kube_resp r = KUBE_RESP_INIT;
    shale_status rc = text && path ? kube_request(ks->c, "PATCH", path, text,
                                                  "application/merge-patch+json", 30, &r)
                                   : AGENT_OOM();
    free(text);
    free(path);
    char why[512];
    if (!rc && r.status >= 200 && r.status < 300) {
        kube_resp_free(&r);
        return body;
    }
    if (rc)
        snprintf(why, sizeof why, "%s", shale_errmsg());
    else
        kube_resp_describe(&r, why, sizeof why);
    if (!rc && r.status == 404) {
        *gone = true;
        LOGI("kubernetes: ShardSplit %s/%s is gone; its status is not written", t->ns,
             t->name);
    } else {
        *retry_ms = r.retry_after_s * 1000u;
        if (!*retry_ms)
            *retry_ms = 1;   /* the caller's backoff decides */
        LOGW("kubernetes: status of ShardSplit %s/%s not written (%s); retrying", t->ns,
             t->name, why);
    }
    kube_resp_free(&r);
    json_decref(body);
    return NULL;
}

static void post_event(kube_status *ks, event *e)
{
    char name[320];
    int count = 1;
    const char *type = e->warning ? "Warning" : "Normal";
    pthread_mutex_lock(&ks->mu);
    kube_ev_action act = kube_evagg_decide(ks->agg, e->t.uid, e->t.name, type, e->reason,
                                           e->message, agent_mono_ms(), name, sizeof name, &count);
    if (act == KUBE_EV_DROP)
        ks->st.events_dropped++;
    pthread_mutex_unlock(&ks->mu);
    if (act == KUBE_EV_DROP) {
        LOGW("kubernetes: event %s for ShardSplit %s/%s dropped (rate limit): %s", e->reason,
             e->t.ns, e->t.name, e->message);
        return;
    }
    kube_resp r = KUBE_RESP_INIT;
    shale_status rc = SHALE_OK;
    if (act == KUBE_EV_PATCH) {
        json_t *p = json_pack("{s:i, s:s}", "count", count, "lastTimestamp", e->when);
        char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
        json_decref(p);
        char *path = ns_path(e->t.ns, "/api/v1/namespaces/%s/events/%s", name);
        rc = text && path ? kube_request(ks->c, "PATCH", path, text,
                                         "application/merge-patch+json", 10, &r)
                          : AGENT_OOM();
        free(text);
        free(path);
        if (!rc && r.status < 300) {
            pthread_mutex_lock(&ks->mu);
            ks->st.events_aggregated++;
            pthread_mutex_unlock(&ks->mu);
            kube_resp_free(&r);
            return;
        }
        /* The first one is gone (or was never stored): post it anew. */
        kube_resp_free(&r);
    }
    json_t *ev = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:s,"
        " s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:i}",
        "apiVersion", "v1", "kind", "Event", "metadata", "name", name, "namespace", e->t.ns,
        "involvedObject", "apiVersion", API_GROUP_VERSION, "kind", "ShardSplit", "name",
        e->t.name, "namespace", e->t.ns, "uid", e->t.uid, "resourceVersion", e->t.rv,
        "reason", e->reason, "message", e->message, "type", type, "action", e->reason,
        "source", "component", "shale-agent", "host", ks->instance, "reportingComponent",
        "shale.io/shale-agent", "reportingInstance", ks->instance, "firstTimestamp", e->when,
        "lastTimestamp", e->when, "count", count);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    char *path = ns_path(e->t.ns, "/api/v1/namespaces/%s/events", NULL);
    rc = text && path ? kube_request(ks->c, "POST", path, text, "application/json", 10, &r)
                      : AGENT_OOM();
    free(text);
    free(path);
    char why[512] = "";
    bool ok = !rc && r.status < 300;
    if (!ok) {
        if (rc)
            snprintf(why, sizeof why, "%s", shale_errmsg());
        else
            kube_resp_describe(&r, why, sizeof why);
        LOGW("kubernetes: could not post event %s for ShardSplit %s/%s: %s", e->reason,
             e->t.ns, e->t.name, why);
    }
    pthread_mutex_lock(&ks->mu);
    if (ok)
        ks->st.events_posted++;
    else
        ks->st.event_failures++;
    pthread_mutex_unlock(&ks->mu);
    kube_resp_free(&r);
}

static void *writer(void *arg)
{
    kube_status *ks = arg;
    pthread_mutex_lock(&ks->mu);
    for (;;) {
        int64_t now = agent_mono_ms(), next = INT64_MAX;
        slot *pick = NULL;
        for (slot *s = ks->slots; s; s = s->next) {
            int64_t d = due_of(ks, s);
            if (d <= now && !pick)
                pick = s;
            else if (d < next)
                next = d;
        }
        if (pick) {
            json_t *doc = pick->wanted, *base = json_incref(pick->written ? pick->written
                                                                          : pick->cached);
            pick->wanted = NULL;
            pick->busy = ks->busy = true;
            target_copy t;
            tc_copy(&t, &pick->t);
            pthread_mutex_unlock(&ks->mu);
            bool skipped, gone;
            uint32_t retry;
            json_t *body = write_status(ks, &t, doc, base, &skipped, &retry, &gone);
            json_decref(base);
            tc_free(&t);
            pthread_mutex_lock(&ks->mu);
            pick->busy = ks->busy = false;
            if (body && !skipped) {
                ks->st.status_writes++;
                pick->last_write_ms = agent_mono_ms();
                pick->backoff_ms = 0;
                pick->retry_at_ms = 0;
            }
            if (body) {
                json_decref(pick->written);
                pick->written = body;
                json_decref(doc);
            } else if (gone) {
                json_decref(doc);
            } else {
                ks->st.status_failures++;
                pick->backoff_ms = pick->backoff_ms ? pick->backoff_ms * 2 : RETRY_MIN_MS;
                if (pick->backoff_ms > RETRY_MAX_MS)
                    pick->backoff_ms = RETRY_MAX_MS;
                uint32_t d = retry > pick->backoff_ms ? retry : pick->backoff_ms;
                pick->retry_at_ms = agent_mono_ms() + d;
                if (!pick->wanted)
                    pick->wanted = doc;   /* nothing newer arrived: retry this */
                else
                    json_decref(doc);
            }
            continue;
        }
        if (ks->events) {
            event *e = ks->events;
            ks->events = e->next;
            if (!ks->events)
                ks->events_tail = NULL;
            ks->busy = true;
            pthread_mutex_unlock(&ks->mu);
            post_event(ks, e);
            event_free(e);
            pthread_mutex_lock(&ks->mu);
            ks->busy = false;
            continue;
        }
        if (ks->stop)
            break;
        if (next == INT64_MAX) {
            pthread_cond_wait(&ks->cv, &ks->mu);
        } else {
            struct timespec ts = {next / 1000, (long)(next % 1000) * 1000000L};
            pthread_cond_timedwait(&ks->cv, &ks->mu, &ts);
        }
    }
    pthread_mutex_unlock(&ks->mu);
    return NULL;
}

shale_status kube_status_new(kube_client *c, const char *instance, uint32_t interval_ms,
                             kube_status **out)
{
    *out = NULL;
    kube_status *ks = calloc(1, sizeof *ks);
    if (!ks)
        return AGENT_OOM();
    ks->c = c;
    ks->instance = agent_strdup(instance ? instance : "shale-agent");
    ks->interval_ms = interval_ms;
    ks->agg = kube_evagg_new();
    pthread_mutex_init(&ks->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ks->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!ks->instance || !ks->agg || pthread_create(&ks->thread, NULL, writer, ks)) {
        free(ks->instance);
        kube_evagg_free(ks->agg);
        pthread_mutex_destroy(&ks->mu);
        pthread_cond_destroy(&ks->cv);
        free(ks);
        return shale_error_set(SHALE_IO, "kubernetes status writer: cannot start its thread");
    }
    *out = ks;
    return SHALE_OK;
}

void kube_status_free(kube_status *ks, int64_t wait_ms)
{
    if (!ks)
        return;
    /* A short grace period: the last status (often the final one) is
     * worth writing before the agent exits. */
    int64_t end = agent_mono_ms() + wait_ms;
    while (!kube_status_idle(ks) && agent_mono_ms() < end)
        agent_sleep_ms(20);
    pthread_mutex_lock(&ks->mu);
    ks->stop = true;
    for (slot *s = ks->slots; s; s = s->next) {   /* drop what is left */
        json_decref(s->wanted);
        s->wanted = NULL;
    }
    while (ks->events) {
        event *e = ks->events;
        ks->events = e->next;
        event_free(e);
    }
    ks->events_tail = NULL;
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
    pthread_join(ks->thread, NULL);
    while (ks->slots) {
        slot *s = ks->slots;
        ks->slots = s->next;
        slot_free(s);
    }
    kube_evagg_free(ks->agg);
    free(ks->instance);
    pthread_mutex_destroy(&ks->mu);
    pthread_cond_destroy(&ks->cv);
    free(ks);
}
