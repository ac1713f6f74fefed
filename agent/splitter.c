/*
 * splitter.c -- the split service (get/list/abort; submit is
 * split_accept.c) and the splitter's lifecycle.  The worker is
 * split_run.c, loading split_load.c; splitter_int.h has the locking rule
 * and splitter.h the contract.
 *
 * Idempotence, step by step (what makes resume safe):
 *   Fence        opening the writer again just fences once more;
 *   FullFlush    a checkpoint recorded in the journal is released and a new
 *                one made;
 *   WipeLocalWAL refuses if any WAL id is above replay_after_wal_id, deletes
 *                what is left, and always keeps the newest WAL object so a
 *                serving writer that has not noticed the fence cannot write
 *                at a freed id (its next id collides with that object);
 *   Clone        shale_clone() resumes or is a no-op for the same spec;
 *   Verify       read-only;
 *   Complete     releasing a checkpoint already released is a no-op.
 */
#include "splitter_int.h"
#include "journal.h"
#include "shale_admin.h"
#include "lease.h"
#include "log.h"
#include "split_status.h"
#include "agent_util.h"

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
    o->retry_base_ms = 1000;
    o->retry_max_ms = 60000;
    o->dry_run_keep = 100;
    o->dry_run_max_age_s = 3600;
    split_policy_init(&o->policy);
}

int64_t splitter_clock_now(const splitter *sp)
{
    return sp->o.clock_ms ? sp->o.clock_ms(sp->o.clock_ctx) : agent_now_ms();
}

/* Drops finished dry runs beyond the count and age bounds (oldest first);
 * never the job the worker is on. */
void expire_dry_runs_locked(splitter *sp)
{
    int64_t now = splitter_clock_now(sp), max_age = (int64_t)sp->o.dry_run_max_age_s * 1000;
    size_t n = 0;
    for (job *j = sp->jobs; j; j = j->next)
        if (j->st->dry_run && split_phase_terminal(j->st->phase))
            n++;
    for (job **pp = &sp->jobs; *pp;) {
        job *j = *pp;
        bool dead = j->st->dry_run && split_phase_terminal(j->st->phase) &&
                    j != sp->current && (n > sp->o.dry_run_keep || now - j->added_ms > max_age);
        if (dead) {
            *pp = j->next;
            job_free(j);
            n--;
        } else {
            pp = &j->next;
        }
    }
}

/* Re-reads a job another agent drives from its journal (mu not held).
 * Remote jobs are never freed (only finished dry runs expire), so j stays
 * valid; its state is swapped under mu. */
void refresh_remote(splitter *sp, job *j)
{
    pthread_mutex_lock(&sp->mu);
    char *name = agent_strdup(j->st->name);
    pthread_mutex_unlock(&sp->mu);
    uint64_t v;
    split_state *st = NULL;
    if (name && !journal_load(sp->store, name, &v, &st)) {
        pthread_mutex_lock(&sp->mu);
        split_state *old = j->st;
        j->st = st;
        st = old;
        pthread_mutex_unlock(&sp->mu);
    }
    split_state_free(st);
    free(name);
}

shale_status status_of(splitter *sp, job *j, char **out)
{
    pthread_mutex_lock(&sp->mu);
    *out = split_status_text(j->st);
    pthread_mutex_unlock(&sp->mu);
    return *out ? SHALE_OK : AGENT_OOM();
}

static shale_status svc_get(split_service *svc, const char *name, char **status_json)
{
    splitter *sp = (splitter *)svc;
    pthread_mutex_lock(&sp->mu);
    job *j = find_locked(sp, name);
    bool remote = j && j->orphaned && j->load == JOB_LOADED;
    pthread_mutex_unlock(&sp->mu);
    if (!j) {
        *status_json = NULL;
        return shale_error_set(SHALE_NOT_FOUND, "no split named %s", name);
    }
    if (remote)   /* jobs are freed only by expiry, and remote ones never */
        refresh_remote(sp, j);
    return status_of(sp, j, status_json);
}

static shale_status svc_list(split_service *svc, char **out)
{
    splitter *sp = (splitter *)svc;
    json_t *arr = json_array();
    pthread_mutex_lock(&sp->mu);
    expire_dry_runs_locked(sp);
    for (job *j = sp->jobs; j; j = j->next)
        json_array_append_new(arr, split_status_json(j->st));
    pthread_mutex_unlock(&sp->mu);
    *out = json_dumps(arr, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(arr);
    return *out ? SHALE_OK : AGENT_OOM();
}

static shale_status svc_abort(split_service *svc, const char *name, char **status_json)
{
    splitter *sp = (splitter *)svc;
    *status_json = NULL;
    pthread_mutex_lock(&sp->mu);
    job *j = find_locked(sp, name);
    shale_status rc = SHALE_OK;
    if (!j) {
        rc = shale_error_set(SHALE_NOT_FOUND, "no split named %s", name);
    } else if (split_phase_terminal(j->st->phase)) {
        if (j->st->phase == PHASE_ABORTED)
            *status_json = split_status_text(j->st);
        else
            rc = shale_error_set(SHALE_CONFLICT, "split %s already finished (%s)", name,
                                 split_phase_name(j->st->phase));
    } else if (j->orphaned || j->load != JOB_LOADED) {
        rc = shale_error_set(SHALE_CONFLICT, "split %s is not driven by this agent (%s)", name,
                             j->load != JOB_LOADED ? j->load_error : "another agent writes its "
                                                                "journal");
    } else if (j->st->steps[STEP_WIPE_WAL].state != STEP_PENDING) {
        rc = shale_error_set(SHALE_CONFLICT, "split %s passed the point of no return (the local "
                                             "WAL wipe started): it only rolls forward", name);
    } else {
        j->abort_requested = true;
        *status_json = split_status_text(j->st);
        pthread_cond_broadcast(&sp->cv);
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc && rc != SHALE_NOT_FOUND)
        log_fields(LOG_WARN, name, NULL, -1,
                   (log_field[]){LOG_S("result", "Conflict"), LOG_S("error", shale_errmsg())}, 2,
                   "abort refused");
    return rc;
}

static bool svc_ready(split_service *svc)
{
    splitter *sp = (splitter *)svc;
    shale_objlist l;
    shale_status rc = shale_objstore_list(sp->store, SHALE_MANIFEST_DIR, NULL, 1, &l);
    if (rc)
        return false;
    shale_objlist_free(&l);
    return true;
}

static const split_service_ops svc_ops = {splitter_svc_submit, svc_get, svc_list, svc_abort, svc_ready};

/* ---- lifecycle ------------------------------------------------------------ */

shale_status splitter_new(const splitter_options *o, splitter **out)
{
    *out = NULL;
    if (!o->shard || !o->store_uri)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "splitter: shard and store are required");
    splitter *sp = calloc(1, sizeof *sp);
    if (!sp)
        return AGENT_OOM();
    sp->svc.ops = &svc_ops;
    sp->o = *o;
    sp->shard = agent_strdup(o->shard);
    sp->store_uri = agent_strdup(o->store_uri);
    sp->wal_uri = o->wal_store_uri ? agent_strdup(o->wal_store_uri) : NULL;
    sp->o.shard = sp->shard;
    sp->o.store_uri = sp->store_uri;
    sp->o.wal_store_uri = sp->wal_uri;
    sp->o.db.wal_store_uri = NULL;
    /* The worker reads the store options long after this call: keep our
     * own copies of their strings (endpoint, region, keys). */
    bool store_ok = !shale_objstore_options_copy(&sp->o.db.store, &o->db.store);
    if (!store_ok)
        memset(&sp->o.db.store, 0, sizeof sp->o.db.store);
    pthread_mutex_init(&sp->mu, NULL);
    pthread_mutex_init(&sp->submit_mu, NULL);
    pthread_mutex_init(&sp->notify_mu, NULL);
    pthread_cond_init(&sp->cv, NULL);
    shale_status rc = SHALE_OK;
    if (!sp->shard || !sp->store_uri || (o->wal_store_uri && !sp->wal_uri) || !store_ok)
        rc = AGENT_OOM();
    if (!rc)
        rc = shale_objstore_open(sp->store_uri, &sp->o.db.store, &sp->store);
    if (rc) {
        splitter_free(sp);
        return rc;
    }
    /* A first read now, so sources see the known splits before the worker
     * starts; what cannot be read is retried by the worker. */
    splitter_load_journals(sp);
    *out = sp;
    return SHALE_OK;
}

shale_status splitter_start(splitter *sp)
{
    if (sp->started)
        return SHALE_OK;
    if (pthread_create(&sp->worker, NULL, splitter_worker, sp))
        return shale_error_set(SHALE_IO, "splitter: cannot start the worker thread");
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
    for (size_t i = 0; i < sp->nuncertain; i++)
        free(sp->uncertain[i]);
    shale_objstore_close(sp->store);
    pthread_mutex_destroy(&sp->mu);
    pthread_mutex_destroy(&sp->submit_mu);
    pthread_mutex_destroy(&sp->notify_mu);
    pthread_cond_destroy(&sp->cv);
    free(sp->shard);
    shale_objstore_options_free(&sp->o.db.store);
    free(sp->store_uri);
    free(sp->wal_uri);
    free(sp->prange.s);
    free(sp->prange.e);
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
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "splitter: too many status listeners");
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
    int64_t deadline = agent_mono_ms() + timeout_ms;
    pthread_mutex_lock(&sp->mu);
    for (;;) {
        bool unreadable = !sp->loaded;
        for (job *j = sp->jobs; j; j = j->next)
            unreadable = unreadable || j->load == JOB_UNREADABLE ||
                         (split_phase_terminal(j->st->phase) && split_settle_due(j));
        /* The worker's first look at the lease counts as its start. */
        bool starting = sp->started && !sp->adopt_tried;
        if (!sp->busy && !next_runnable_locked(sp) && !(unreadable && sp->started) && !starting)
            break;
        int64_t left = deadline - agent_mono_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&sp->mu);
            return shale_error_set(SHALE_TIMEOUT, "splitter: still busy after %lld ms",
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
    for (job *j = sp->jobs; j; j = j->next) {
        out->stalled += j->st->stalled.on && !split_phase_terminal(j->st->phase) && !j->orphaned;
        out->journals_unreadable += j->load == JOB_UNREADABLE;
        out->journals_corrupt += j->load == JOB_CORRUPT;
    }
    if (!sp->loaded)
        out->journals_unreadable++;
    pthread_mutex_unlock(&sp->mu);
}

shale_status splitter_clear_journal(const splitter_options *o, const char *name)
{
    shale_objstore *st = NULL;
    shale_status rc = shale_objstore_open(o->store_uri, &o->db.store, &st);
    if (rc)
        return rc;
    rc = journal_clear(st, name, agent_now_ms());
    bool no_journal = rc == SHALE_NOT_FOUND;
    if (!rc || no_journal) {
        lease_view v;
        shale_status lr = lease_read(st, &v);
        bool held = !lr && v.held && !strcmp(v.holder, name);
        lease_view_free(&v);
        uint64_t seq = 0;
        if (held)
            lr = lease_release(st, name, &seq);
        if (lr)
            rc = lr;
        else if (no_journal && held)
            rc = SHALE_OK;   /* a lease whose journal was never written */
        if (!rc)
            log_fields(LOG_WARN, name, NULL, -1, (log_field[]){LOG_N("leaseSeq", seq)}, 1,
                       "split journal cleared by an operator%s",
                       held ? "; the split lease released" : "");
    }
    shale_objstore_close(st);
    return rc;
}
