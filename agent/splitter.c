/*
 * splitter.c -- the split state machine (see splitter.h for the contract).
 *
 *   submit ──> Accept ──> Fence ──> FullFlush ──> WipeLocalWAL ──> Clone ──> Verify ──> Complete
 *                 │          │           │        (point of no return: from here on a failing
 *                 └──────────┴───────────┴──> Aborted / Failed      step is retried, never undone)
 *
 * Locking: sp->mu guards the job list and every job's status document;
 * steps run on the worker thread without it and take it only to update the
 * document.  A step never holds mu across store I/O.
 *
 * Idempotence, step by step (what makes resume safe):
 *   Fence        opening the writer again just fences once more;
 *   FullFlush    a checkpoint recorded in the journal is reused if it still
 *                exists, else a new one is made;
 *   WipeLocalWAL refuses if any WAL id is above replay_after_wal_id, deletes
 *                what is left, and always keeps the newest WAL object so a
 *                serving writer that has not noticed the fence cannot write
 *                at a freed id (its next id collides with that object);
 *   Clone        shale_clone() resumes or is a no-op for the same spec;
 *   Verify       read-only.
 */
#include "splitter_int.h"
#include "failpoint.h"
#include "journal.h"
#include "db/env.h"
#include "db/manifest.h"
#include "table/kv.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void splitter_options_init(splitter_options *o)
{
    memset(o, 0, sizeof *o);
    shale_options_init(&o->db);
    o->step_timeout_s = 600;
    o->verify = SPLIT_VERIFY_FULL;
    split_policy_init(&o->policy);
}

/* ---- status documents --------------------------------------------------- */

static char *status_text_locked(const job *j)
{
    json_t *copy = json_deep_copy(j->doc);
    if (!copy)
        return NULL;
    json_object_del(copy, "request");
    char *s = json_dumps(copy, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(copy);
    return s;
}

/* Tells every listener; mu must NOT be held (listeners may call back).
 * notify_mu makes deliveries happen in the order the documents were taken,
 * so a listener never sees an older status after a newer one. */
static void notify(splitter *sp, job *j)
{
    pthread_mutex_lock(&sp->notify_mu);
    pthread_mutex_lock(&sp->mu);
    char *text = status_text_locked(j);
    int n = sp->nlisteners;
    pthread_mutex_unlock(&sp->mu);
    for (int i = 0; text && i < n; i++)
        sp->listeners[i].cb(sp->listeners[i].ctx, j->name, text);
    pthread_mutex_unlock(&sp->notify_mu);
    free(text);
}

json_t *step_obj(job *j, int step)
{
    return json_array_get(json_object_get(j->doc, "steps"), (size_t)step);
}

void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static json_t *new_doc(const split_request *r, const char *req_json, bool dry_run)
{
    json_t *d = json_object();
    char now[40];
    journal_now(now, sizeof now);
    set_str(d, "name", r->name);
    set_str(d, "uid", r->name);
    set_str(d, "shard", r->parent_shard);
    set_str(d, "phase", dry_run ? "Pending" : "Accepted");
    json_object_set_new(d, "dryRun", json_boolean(dry_run));
    set_str(d, "message", "");
    set_str(d, "reason", "");
    set_str(d, "checkpointId", NULL);
    set_str(d, "startTime", now);
    set_str(d, "completionTime", NULL);
    json_t *steps = json_array();
    for (int s = 0; s < STEP_COUNT; s++) {
        json_t *st = json_object();
        set_str(st, "name", journal_step_name(s));
        set_str(st, "state", s == STEP_ACCEPT && !dry_run ? "Done" : "Pending");
        set_str(st, "startTime", s == STEP_ACCEPT ? now : NULL);
        set_str(st, "endTime", s == STEP_ACCEPT ? now : NULL);
        set_str(st, "message", "");
        json_object_set_new(st, "objectsCopied", json_integer(0));
        json_object_set_new(st, "bytesCopied", json_integer(0));
        json_array_append_new(steps, st);
    }
    json_object_set_new(d, "steps", steps);
    json_t *kids = json_array();
    for (size_t i = 0; i < r->child_count; i++) {
        json_t *c = json_object();
        set_str(c, "name", r->children[i].name);
        set_str(c, "store", r->children[i].store);
        json_object_set_new(c, "manifestId", json_integer(0));
        json_object_set_new(c, "keyCount", json_integer(0));
        json_object_set_new(c, "sstsReferenced", json_integer(0));
        json_object_set_new(c, "walSstsCopied", json_integer(0));
        json_array_append_new(kids, c);
    }
    json_object_set_new(d, "children", kids);
    json_object_set_new(d, "childCount", json_integer((json_int_t)r->child_count));
    json_error_t err;
    json_t *rq = json_loads(req_json, 0, &err);
    json_object_set_new(d, "request", rq ? rq : json_null());
    return d;
}

/* Journals the document (not for dry runs) and tells listeners. */
static shale_status save(splitter *sp, job *j)
{
    shale_status rc = SHALE_OK;
    if (!j->dry_run) {
        pthread_mutex_lock(&sp->mu);
        json_t *copy = json_deep_copy(j->doc);
        uint64_t v = j->version;
        pthread_mutex_unlock(&sp->mu);
        rc = copy ? journal_save(sp->store, j->name, &v, copy) : SHALE_OOM();
        json_decref(copy);
        pthread_mutex_lock(&sp->mu);
        if (!rc)
            j->version = v;
        else if (rc == SHALE_CONFLICT)
            j->orphaned = true;
        pthread_mutex_unlock(&sp->mu);
    }
    notify(sp, j);
    return rc;
}

static void step_state(splitter *sp, job *j, int step, const char *state, const char *msg)
{
    char now[40];
    journal_now(now, sizeof now);
    pthread_mutex_lock(&sp->mu);
    json_t *st = step_obj(j, step);
    set_str(st, "state", state);
    if (!strcmp(state, "Running")) {
        set_str(st, "startTime", now);
        set_str(j->doc, "phase", journal_step_phase(step));
    } else {
        set_str(st, "endTime", now);
    }
    if (msg)
        set_str(st, "message", msg);
    pthread_mutex_unlock(&sp->mu);
}

void add_copied(splitter *sp, job *j, int step, uint64_t objects, uint64_t bytes)
{
    pthread_mutex_lock(&sp->mu);
    json_t *st = step_obj(j, step);
    json_int_t o = json_integer_value(json_object_get(st, "objectsCopied"));
    json_int_t b = json_integer_value(json_object_get(st, "bytesCopied"));
    json_object_set_new(st, "objectsCopied", json_integer(o + (json_int_t)objects));
    json_object_set_new(st, "bytesCopied", json_integer(b + (json_int_t)bytes));
    sp->stats.objects_copied += objects;
    sp->stats.bytes_copied += bytes;
    pthread_mutex_unlock(&sp->mu);
}

static void finish(splitter *sp, job *j, const char *phase, const char *reason,
                   const char *message)
{
    char now[40];
    journal_now(now, sizeof now);
    pthread_mutex_lock(&sp->mu);
    set_str(j->doc, "phase", phase);
    set_str(j->doc, "reason", reason ? reason : "");
    set_str(j->doc, "message", message ? message : "");
    set_str(j->doc, "completionTime", now);
    j->terminal = true;
    if (!strcmp(phase, "Complete"))
        sp->stats.completed++;
    else if (!strcmp(phase, "Aborted"))
        sp->stats.aborted++;
    else
        sp->stats.failed++;
    pthread_mutex_unlock(&sp->mu);
}

/* ---- running a job ------------------------------------------------------- */

static int first_unfinished(splitter *sp, job *j)
{
    pthread_mutex_lock(&sp->mu);
    int s = STEP_FENCE;
    for (; s < STEP_COUNT; s++) {
        const char *st = json_string_value(json_object_get(step_obj(j, s), "state"));
        if (!st || strcmp(st, "Done"))
            break;
    }
    pthread_mutex_unlock(&sp->mu);
    return s;
}

/* Marks a step Running, unless an abort was accepted and the step is not
 * past the point of no return: then returns false.  One lock covers both,
 * so an abort accepted while WipeLocalWAL was Pending always wins. */
static bool begin_step(splitter *sp, job *j, int step)
{
    pthread_mutex_lock(&sp->mu);
    bool abort = j->abort_requested && step <= STEP_WIPE_WAL;
    if (!abort) {
        char now[40];
        journal_now(now, sizeof now);
        json_t *st = step_obj(j, step);
        set_str(st, "state", "Running");
        set_str(st, "startTime", now);
        set_str(j->doc, "phase", journal_step_phase(step));
    }
    pthread_mutex_unlock(&sp->mu);
    return !abort;
}

static void do_abort(run *r)
{
    pthread_mutex_lock(&r->sp->mu);
    char cp[37] = "";
    const char *id = doc_str(r, "checkpointId");
    if (id)
        snprintf(cp, sizeof cp, "%s", id);
    pthread_mutex_unlock(&r->sp->mu);
    shale_close(r->db);
    r->db = NULL;
    if (*cp) {
        shale_options o = db_opts(r->sp, parent_wal(r));
        shale_checkpoint_delete(parent_store(r), &o, cp);
    }
    finish(r->sp, r->j, "Aborted", "AbortRequested",
           "aborted before the local WAL wipe; the parent is unchanged (its serving "
           "writer must reopen: it was fenced)");
    save(r->sp, r->j);
}

static shale_status run_step(run *r, int step, char *msg, size_t msglen)
{
    switch (step) {
    case STEP_FENCE: return do_fence(r);
    case STEP_FULL_FLUSH: return do_full_flush(r);
    case STEP_WIPE_WAL: return do_wipe(r, msg, msglen);
    case STEP_CLONE: return do_clone(r);
    case STEP_VERIFY: return do_verify(r, msg, msglen);
    case STEP_COMPLETE: return do_complete(r);
    }
    return SHALE_OK;
}

static void run_dry(run *r)
{
    splitter *sp = r->sp;
    shale_status rc = do_plan(r);
    if (rc)
        finish(sp, r->j, "Failed", "PlanFailed", shale_errmsg());
    else
        finish(sp, r->j, "Complete", "DryRun", "dry run: plan computed, nothing changed");
    save(sp, r->j);
}

static void run_job(splitter *sp, job *j)
{
    run r = {sp, j, NULL, false};
    if (j->dry_run) {
        run_dry(&r);
        return;
    }
    for (int step = first_unfinished(sp, j); step < STEP_COUNT; step++) {
        char name[64];
        snprintf(name, sizeof name, "%s.before", journal_step_name(step));
        failpoint(name);
        if (!begin_step(sp, j, step)) {
            do_abort(&r);
            return;
        }
        if (save(sp, j) == SHALE_CONFLICT)
            goto orphaned;
        int64_t t0 = mono_ms();
        shale_status rc = SHALE_OK;
        char msg[512] = "";
        for (int attempt = 1;; attempt++) {
            rc = run_step(&r, step, msg, sizeof msg);
            if (!rc)
                break;
            bool transient = rc == SHALE_IO || rc == SHALE_RETRYABLE || rc == SHALE_TIMEOUT;
            /* A child that differs from the parent is not a fault that
             * passes: retrying reads the same data.  It fails the split
             * (VerifyFailed) for an operator to look at; the parent and
             * its checkpoint stay as they are. */
            bool mismatch = step == STEP_VERIFY && rc == SHALE_CORRUPT;
            bool forward_only = step >= STEP_WIPE_WAL && !mismatch && !r.refused;
            if (forward_only && !sp->stop) {
                /* Past the point of no return: keep trying, with backoff. */
                step_state(sp, j, step, "Running", shale_errmsg());
                notify(sp, j);
                pthread_mutex_lock(&sp->mu);
                uint32_t wait = 100u << (attempt < 8 ? attempt : 8);
                if (!sp->stop) {
                    struct timespec ts;
                    clock_gettime(CLOCK_REALTIME, &ts);
                    ts.tv_sec += wait / 1000;
                    ts.tv_nsec += (long)(wait % 1000) * 1000000L;
                    if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&sp->cv, &sp->mu, &ts);
                }
                bool stop = sp->stop;
                pthread_mutex_unlock(&sp->mu);
                if (stop)
                    goto stopped;
                continue;
            }
            if (!transient || attempt >= STEP_ATTEMPTS)
                break;
            sleep_ms(200u * (unsigned)attempt);
        }
        double secs = (double)(mono_ms() - t0) / 1000.0;
        if (sp->step_cb)
            sp->step_cb(sp->step_ctx, journal_step_name(step), secs);
        if (rc) {
            char reason[64];
            snprintf(reason, sizeof reason, "%sFailed", journal_step_name(step));
            if (r.refused) {
                /* Refused before the point of no return, nothing deleted:
                 * the parent is left as an abort leaves it. */
                snprintf(reason, sizeof reason, "PreflightRefused");
                release_checkpoint(&r);
            }
            char emsg[1024];
            snprintf(emsg, sizeof emsg, "%s: %s", shale_strerror(rc), shale_errmsg());
            step_state(sp, j, step, "Failed", emsg);
            shale_close(r.db);
            r.db = NULL;
            finish(sp, j, "Failed", reason, emsg);
            save(sp, j);
            return;
        }
        step_state(sp, j, step, "Done", *msg ? msg : NULL);
        if (step == STEP_COMPLETE)
            finish(sp, j, "Complete", "SplitComplete", "every child verified");
        if (save(sp, j) == SHALE_CONFLICT)
            goto orphaned;
        snprintf(name, sizeof name, "%s.after", journal_step_name(step));
        failpoint(name);
    }
    return;
orphaned:
stopped:
    shale_close(r.db);
}

static job *next_runnable_locked(splitter *sp)
{
    for (job *j = sp->jobs; j; j = j->next)
        if (!j->terminal && !j->orphaned)
            return j;
    return NULL;
}

static void *worker(void *arg)
{
    splitter *sp = arg;
    pthread_mutex_lock(&sp->mu);
    while (!sp->stop) {
        job *j = next_runnable_locked(sp);
        if (!j) {
            sp->busy = false;
            pthread_cond_broadcast(&sp->cv);
            pthread_cond_wait(&sp->cv, &sp->mu);
            continue;
        }
        sp->busy = true;
        pthread_mutex_unlock(&sp->mu);
        run_job(sp, j);
        pthread_mutex_lock(&sp->mu);
        if (!j->terminal && !sp->stop)
            j->orphaned = true;  /* never spin on a job that cannot progress */
    }
    sp->busy = false;
    pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}

/* ---- the service ----------------------------------------------------------- */

static job *find_locked(splitter *sp, const char *name)
{
    for (job *j = sp->jobs; j; j = j->next)
        if (!strcmp(j->name, name))
            return j;
    return NULL;
}

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->name);
    split_request_free(j->req);
    free(j->req_json);
    json_decref(j->doc);
    free(j);
}

static void append_locked(splitter *sp, job *j)
{
    job **pp = &sp->jobs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
}

/* Validates a request, with the parent's own visible range (a parent that
 * is itself a clone can only be split within its range). */
static shale_status validate_against_parent(splitter *sp, split_request *r)
{
    /* The stores first, before any is opened: the parent is the agent's. */
    const char *uri = sp->store_uri;
    shale_objstore *s = NULL;
    manifest *m = NULL;
    shale_status rc = split_request_check_stores(r, &sp->o.policy, sp->store_uri, sp->wal_uri,
                                                 &sp->o.db);
    if (rc)
        return rc;
    rc = shale_objstore_open(uri, &sp->o.db.store, &s);
    if (!rc)
        rc = manifest_store_load_latest(s, 0, &m);
    shale_objstore_close(s);
    if (rc == SHALE_NOT_FOUND)
        return shale_err(SHALE_INVALID_ARGUMENT, "parent store %s holds no database", uri);
    if (rc)
        return rc;
    rc = split_request_validate(r, sp->shard, sp->store_uri, sp->wal_uri, m->range_start,
                                m->range_start_len, m->range_end, m->range_end_len);
    manifest_free(m);
    return rc;
}

static shale_status svc_submit(split_service *svc, const split_request *req, bool *created,
                               char **status_json)
{
    splitter *sp = (splitter *)svc;
    *created = false;
    *status_json = NULL;
    split_request *r = split_request_dup(req);
    if (!r)
        return SHALE_OOM();
    shale_status rc = validate_against_parent(sp, r);
    char *canon = NULL;
    if (!rc)
        rc = split_request_to_json(r, &canon);
    if (!rc) {
        /* A new split needs empty child stores; a known name is answered
         * below (its status, or a conflict) whatever its stores hold now. */
        pthread_mutex_lock(&sp->mu);
        bool known = find_locked(sp, r->name) != NULL;
        pthread_mutex_unlock(&sp->mu);
        if (!known)
            rc = split_request_check_children_empty(r, &sp->o.db);
    }
    if (rc) {
        split_request_free(r);
        free(canon);
        return rc;
    }
    pthread_mutex_lock(&sp->mu);
    job *old = find_locked(sp, r->name);
    if (old) {
        bool same = old->req_json && !strcmp(old->req_json, canon);
        if (same)
            *status_json = status_text_locked(old);
        pthread_mutex_unlock(&sp->mu);
        split_request_free(r);
        free(canon);
        if (!same)
            return shale_err(SHALE_CONFLICT, "split %s exists with a different request",
                             req->name);
        return *status_json ? SHALE_OK : SHALE_OOM();
    }
    if (!r->dry_run)
        for (job *j = sp->jobs; j; j = j->next)
            if (!j->terminal && !j->dry_run) {
                pthread_mutex_unlock(&sp->mu);
                rc = shale_err(SHALE_CONFLICT, "shard %s is mid-split (%s); one split at a "
                                               "time", sp->shard, j->name);
                split_request_free(r);
                free(canon);
                return rc;
            }
    pthread_mutex_unlock(&sp->mu);
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->name = xstrdup(r->name))) {
        free(j);
        split_request_free(r);
        free(canon);
        return SHALE_OOM();
    }
    j->req = r;
    j->req_json = canon;
    j->dry_run = r->dry_run;
    j->doc = new_doc(r, canon, r->dry_run);
    if (!j->dry_run) {
        /* Accept: the journal exists before any side effect. */
        uint64_t v = 0;
        json_t *copy = json_deep_copy(j->doc);
        rc = journal_save(sp->store, j->name, &v, copy);
        json_decref(copy);
        if (rc) {
            job_free(j);
            return rc;
        }
        j->version = v;
    }
    pthread_mutex_lock(&sp->mu);
    if (find_locked(sp, j->name)) {  /* a racing submit of the same name */
        pthread_mutex_unlock(&sp->mu);
        job_free(j);
        return shale_err(SHALE_CONFLICT, "split %s was submitted concurrently", req->name);
    }
    append_locked(sp, j);
    *status_json = status_text_locked(j);
    *created = true;
    pthread_mutex_unlock(&sp->mu);
    /* Listeners hear "Accepted" before the worker is woken for this job. */
    notify(sp, j);
    pthread_mutex_lock(&sp->mu);
    pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    return SHALE_OK;
}

static shale_status svc_get(split_service *svc, const char *name, char **status_json)
{
    splitter *sp = (splitter *)svc;
    pthread_mutex_lock(&sp->mu);
    job *j = find_locked(sp, name);
    *status_json = j ? status_text_locked(j) : NULL;
    pthread_mutex_unlock(&sp->mu);
    if (!j)
        return shale_err(SHALE_NOT_FOUND, "no split named %s", name);
    return *status_json ? SHALE_OK : SHALE_OOM();
}

static shale_status svc_list(split_service *svc, char **out)
{
    splitter *sp = (splitter *)svc;
    json_t *arr = json_array();
    pthread_mutex_lock(&sp->mu);
    for (job *j = sp->jobs; j; j = j->next) {
        json_t *c = json_deep_copy(j->doc);
        json_object_del(c, "request");
        json_array_append_new(arr, c);
    }
    pthread_mutex_unlock(&sp->mu);
    *out = json_dumps(arr, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(arr);
    return *out ? SHALE_OK : SHALE_OOM();
}

static shale_status svc_abort(split_service *svc, const char *name, char **status_json)
{
    splitter *sp = (splitter *)svc;
    *status_json = NULL;
    pthread_mutex_lock(&sp->mu);
    job *j = find_locked(sp, name);
    shale_status rc = SHALE_OK;
    if (!j) {
        rc = shale_err(SHALE_NOT_FOUND, "no split named %s", name);
    } else if (j->terminal) {
        const char *ph = json_string_value(json_object_get(j->doc, "phase"));
        if (ph && !strcmp(ph, "Aborted"))
            *status_json = status_text_locked(j);
        else
            rc = shale_err(SHALE_CONFLICT, "split %s already finished (%s)", name,
                           ph ? ph : "?");
    } else {
        int done_wipe = 0;
        const char *st = json_string_value(json_object_get(step_obj(j, STEP_WIPE_WAL), "state"));
        if (st && strcmp(st, "Pending"))
            done_wipe = 1;
        if (done_wipe) {
            rc = shale_err(SHALE_CONFLICT, "split %s passed the point of no return (the local "
                                           "WAL wipe started): it only rolls forward", name);
        } else {
            j->abort_requested = true;
            *status_json = status_text_locked(j);
            pthread_cond_broadcast(&sp->cv);
        }
    }
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

static bool svc_ready(split_service *svc)
{
    splitter *sp = (splitter *)svc;
    shale_objlist l;
    shale_status rc = shale_objstore_list(sp->store, PATH_MANIFEST_DIR, NULL, 1, &l);
    if (rc)
        return false;
    shale_objlist_free(&l);
    return true;
}

static const split_service_ops svc_ops = {svc_submit, svc_get, svc_list, svc_abort, svc_ready};

/* ---- lifecycle ------------------------------------------------------------ */

static void load_one(void *ctx, const char *name, uint64_t version, json_t *doc)
{
    splitter *sp = ctx;
    if (!doc) {
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"cannot load split journal\","
                        "\"split\":\"%s\",\"error\":\"%s\"}\n", name, shale_errmsg());
        return;
    }
    job *j = calloc(1, sizeof *j);
    json_t *rq = json_object_get(doc, "request");
    char *text = rq ? json_dumps(rq, 0) : NULL;
    split_request *r = NULL;
    if (!j || !text || split_request_parse(name, text, strlen(text), &r) ||
        validate_against_parent(sp, r) ||
        split_request_to_json(r, &j->req_json)) {
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"split journal has a bad request\","
                        "\"split\":\"%s\"}\n", name);
        free(text);
        split_request_free(r);
        if (j)
            free(j->req_json);
        free(j);
        json_decref(doc);
        return;
    }
    free(text);
    j->name = xstrdup(name);
    j->req = r;
    j->doc = doc;
    j->version = version;
    const char *ph = json_string_value(json_object_get(doc, "phase"));
    j->terminal = ph && (!strcmp(ph, "Complete") || !strcmp(ph, "Failed") ||
                         !strcmp(ph, "Aborted"));
    pthread_mutex_lock(&sp->mu);
    append_locked(sp, j);
    pthread_mutex_unlock(&sp->mu);
}

shale_status splitter_new(const splitter_options *o, splitter **out)
{
    *out = NULL;
    if (!o->shard || !o->store_uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "splitter: shard and store are required");
    splitter *sp = calloc(1, sizeof *sp);
    if (!sp)
        return SHALE_OOM();
    sp->svc.ops = &svc_ops;
    sp->o = *o;
    sp->shard = xstrdup(o->shard);
    sp->store_uri = xstrdup(o->store_uri);
    sp->wal_uri = o->wal_store_uri ? xstrdup(o->wal_store_uri) : NULL;
    sp->o.shard = sp->shard;
    sp->o.store_uri = sp->store_uri;
    sp->o.wal_store_uri = sp->wal_uri;
    sp->o.db.wal_store_uri = NULL;
    /* The worker reads the store options long after this call: keep our
     * own copies of their strings (endpoint, region, keys). */
    bool store_ok = !db_env_store_options_copy(&sp->o.db.store, &o->db.store);
    if (!store_ok)
        memset(&sp->o.db.store, 0, sizeof sp->o.db.store);
    pthread_mutex_init(&sp->mu, NULL);
    pthread_mutex_init(&sp->notify_mu, NULL);
    pthread_cond_init(&sp->cv, NULL);
    shale_status rc = SHALE_OK;
    if (!sp->shard || !sp->store_uri || (o->wal_store_uri && !sp->wal_uri) || !store_ok)
        rc = SHALE_OOM();
    if (!rc)
        rc = shale_objstore_open(sp->store_uri, &sp->o.db.store, &sp->store);
    if (!rc)
        rc = journal_load_all(sp->store, load_one, sp);
    if (rc) {
        splitter_free(sp);
        return rc;
    }
    *out = sp;
    return SHALE_OK;
}

shale_status splitter_start(splitter *sp)
{
    if (sp->started)
        return SHALE_OK;
    if (pthread_create(&sp->worker, NULL, worker, sp))
        return shale_err(SHALE_IO, "splitter: cannot start the worker thread");
    sp->started = true;
    return SHALE_OK;
}

void splitter_free(splitter *sp)
{
    if (!sp)
        return;
    if (sp->started) {
        pthread_mutex_lock(&sp->mu);
        sp->stop = true;
        pthread_cond_broadcast(&sp->cv);
        pthread_mutex_unlock(&sp->mu);
        pthread_join(sp->worker, NULL);
    }
    while (sp->jobs) {
        job *j = sp->jobs;
        sp->jobs = j->next;
        job_free(j);
    }
    shale_objstore_close(sp->store);
    pthread_mutex_destroy(&sp->mu);
    pthread_mutex_destroy(&sp->notify_mu);
    pthread_cond_destroy(&sp->cv);
    free(sp->shard);
    db_env_store_options_free(&sp->o.db.store);
    free(sp->store_uri);
    free(sp->wal_uri);
    free(sp);
}

split_service *splitter_service(splitter *sp)
{
    return &sp->svc;
}

shale_status splitter_add_listener(splitter *sp, split_status_cb cb, void *ctx)
{
    pthread_mutex_lock(&sp->mu);
    shale_status rc = SHALE_OK;
    if (sp->nlisteners == MAX_LISTENERS)
        rc = shale_err(SHALE_INVALID_ARGUMENT, "splitter: too many status listeners");
    else
        sp->listeners[sp->nlisteners++] = (listener){cb, ctx};
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

void splitter_on_step(splitter *sp, splitter_step_cb cb, void *ctx)
{
    pthread_mutex_lock(&sp->mu);
    sp->step_cb = cb;
    sp->step_ctx = ctx;
    pthread_mutex_unlock(&sp->mu);
}

shale_status splitter_wait_idle(splitter *sp, int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    pthread_mutex_lock(&sp->mu);
    while (sp->busy || next_runnable_locked(sp)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&sp->mu);
            return shale_err(SHALE_TIMEOUT, "splitter: still busy after %lld ms",
                             (long long)timeout_ms);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sp->cv, &sp->mu, &ts);
    }
    pthread_mutex_unlock(&sp->mu);
    return SHALE_OK;
}

void splitter_get_stats(splitter *sp, splitter_stats *out)
{
    pthread_mutex_lock(&sp->mu);
    *out = sp->stats;
    pthread_mutex_unlock(&sp->mu);
}
