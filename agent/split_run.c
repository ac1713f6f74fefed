/*
 * split_run.c -- the splitter's worker: runs a split's steps in order,
 * applies their typed results under sp->mu, retries, stalls, finishes and
 * releases the lease (see splitter_int.h for the locking rule).
 *
 *   Accept ──> Fence ──> FullFlush ──> WipeLocalWAL ──> Clone ──> Verify ──> Complete
 *                 │           │        (point of no return: from here on a failing
 *                 └───────────┴──> Aborted / Failed      step is retried, never undone)
 *
 * Journal writes of one split, in order (docs/agent.md "Journal"): v1 at
 * Accept, with Fence and FullFlush "Running" (FullFlush journalled ahead:
 * it opens the writer itself); then one write per step that records its
 * "Done" and the next step's "Running" -- Fence's "Done" goes out with
 * FullFlush's, Verify's with Complete's "Done" and the terminal phase
 * (complete_split); the first failed attempt past the point of no return
 * (Stalled); then the released checkpoint and lease (split_settle.c).
 * A kill after any of them resumes: the first step not Done runs again,
 * or, once Complete is journalled, the releases still owed are made.
 *
 * Retries: before the wipe a transient failure is tried STEP_ATTEMPTS
 * times, then the split fails (and releases the lease).  From the wipe on a
 * failure is retried with capped exponential backoff, shown as phase
 * Stalled; the wait is a timed wait on sp->cv, so status, abort, submits
 * and shutdown are answered meanwhile.  Only a Verify mismatch ends a split
 * past the point of no return (Failed, lease kept for an operator).
 */
#include "splitter_int.h"
#include "split_preopen.h"
#include "verify_warm.h"
#include "shale_admin.h"
#include "failpoint.h"
#include "journal.h"
#include "lease.h"
#include "log.h"
#include "split_status.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- status and journal --------------------------------------------------- */

void splitter_notify(splitter *sp, job *j)
{
    pthread_mutex_lock(&sp->notify_mu);
    pthread_mutex_lock(&sp->mu);
    char *text = split_status_text(j->st);
    int n = sp->nlisteners;
    pthread_mutex_unlock(&sp->mu);
    for (int i = 0; text && i < n; i++)
        sp->listeners[i].cb(sp->listeners[i].ctx, j->st->name, text);
    pthread_mutex_unlock(&sp->notify_mu);
    free(text);
}

shale_status splitter_save(splitter *sp, job *j)
{
    shale_status rc = SHALE_OK;
    if (!j->st->dry_run) {
        pthread_mutex_lock(&sp->mu);
        split_state *copy = split_state_dup(j->st);
        pthread_mutex_unlock(&sp->mu);
        rc = copy ? journal_save(sp->store, copy) : AGENT_OOM();
        pthread_mutex_lock(&sp->mu);
        if (!rc)
            j->st->journal_version = copy->journal_version;
        else if (rc == SHALE_CONFLICT)
            j->orphaned = true;
        j->unsaved = rc != SHALE_OK;
        pthread_mutex_unlock(&sp->mu);
        split_state_free(copy);
        if (rc)
            log_fields(LOG_ERROR, j->st->name, NULL, -1, (log_field[]){LOG_S("error",
                                                                             shale_errmsg())},
                       1, "journal write failed");
    }
    splitter_notify(sp, j);
    return rc;
}

/* A journal write on its own thread, for a step that reads before it
 * acts (Verify only reads): the step's reads overlap the write of its
 * "Running", which is joined before the step's result is applied or
 * anything else is journalled (step_loop), so "Running" is still durable
 * before the step's "Done", and a step with side effects never starts
 * them before the join.  The state written is copied here, before the
 * step runs. */
struct async_save {
    splitter *sp;
    job *j;
    split_state *copy;
    shale_status rc;
    char msg[512];
    pthread_t th;
    bool threaded;
    char after_fp[64];           /* the previous step's ".after" failpoint */
};

static void *async_save_main(void *arg)
{
    async_save *a = arg;
    a->rc = a->copy ? journal_save(a->sp->store, a->copy) : AGENT_OOM();
    if (a->rc)
        snprintf(a->msg, sizeof a->msg, "%s", shale_errmsg());
    return NULL;
}

static void async_save_begin(splitter *sp, job *j, async_save *a, const char *after_fp)
{
    memset(a, 0, sizeof *a);
    a->sp = sp;
    a->j = j;
    snprintf(a->after_fp, sizeof a->after_fp, "%s", after_fp);
    pthread_mutex_lock(&sp->mu);
    a->copy = split_state_dup(j->st);
    pthread_mutex_unlock(&sp->mu);
    a->threaded = !pthread_create(&a->th, NULL, async_save_main, a);
    if (!a->threaded)
        async_save_main(a);
}

/* Joins the write and records it as splitter_save() does. */
static shale_status async_save_join(async_save *a)
{
    splitter *sp = a->sp;
    job *j = a->j;
    if (a->threaded)
        pthread_join(a->th, NULL);
    a->threaded = false;
    pthread_mutex_lock(&sp->mu);
    if (!a->rc)
        j->st->journal_version = a->copy->journal_version;
    else if (a->rc == SHALE_CONFLICT)
        j->orphaned = true;
    j->unsaved = a->rc != SHALE_OK;
    pthread_mutex_unlock(&sp->mu);
    split_state_free(a->copy);
    a->copy = NULL;
    if (a->rc)
        log_fields(LOG_ERROR, j->st->name, NULL, -1, (log_field[]){LOG_S("error", a->msg)}, 1,
                   "journal write failed");
    splitter_notify(sp, j);
    failpoint(a->after_fp);
    return a->rc ? shale_error_set(a->rc, "%s", a->msg) : SHALE_OK;
}

shale_status run_barrier(run *r)
{
    if (!r->pending)
        return SHALE_OK;
    async_save *a = r->pending;
    r->pending = NULL;
    shale_status rc = async_save_join(a);
    /* A failed write is made again now, synchronously (the state is the
     * same: nothing of the step has been applied). */
    if (rc && rc != SHALE_CONFLICT)
        rc = splitter_save(a->sp, a->j);
    return rc;
}

void log_refusal(splitter *sp, const char *split, shale_status rc, const char *why)
{
    pthread_mutex_lock(&sp->mu);
    sp->stats.refused++;
    pthread_mutex_unlock(&sp->mu);
    log_fields(LOG_WARN, split, NULL, -1,
               (log_field[]){LOG_S("result", rc == SHALE_CONFLICT ? "Conflict" : shale_strerror(rc)),
                             LOG_S("error", why)},
               2, "request refused");
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on sp->cv (mu held) until ms have passed or stop. */
static void timed_wait_locked(splitter *sp, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int64_t until = wall_ms() + ms;
    while (!sp->stop && wall_ms() < until)
        if (pthread_cond_timedwait(&sp->cv, &sp->mu, &ts))
            break;
}

static uint32_t backoff_ms(const splitter *sp, uint32_t attempt)
{
    uint64_t base = sp->o.retry_base_ms ? sp->o.retry_base_ms : 1000;
    uint64_t cap = sp->o.retry_max_ms ? sp->o.retry_max_ms : 60000;
    uint64_t d = base << (attempt < 20 ? attempt : 20);
    return (uint32_t)(d < cap ? d : cap);
}

bool lease_releasable(const split_state *s)
{
    /* Failed before the wipe deleted anything: not started, or refused by
     * its pre-flight (reason PreflightRefused). */
    return s->phase == PHASE_COMPLETE || s->phase == PHASE_ABORTED ||
           (s->phase == PHASE_FAILED && (s->steps[STEP_WIPE_WAL].state == STEP_PENDING ||
                                         (s->reason && !strcmp(s->reason, "PreflightRefused"))));
}

/* ---- applying a step's result --------------------------------------------- */

static void apply_result(splitter *sp, job *j, split_step step, step_result *res)
{
    pthread_mutex_lock(&sp->mu);
    split_state *s = j->st;
    if (res->has_checkpoint) {
        snprintf(s->checkpoint_id, sizeof s->checkpoint_id, "%s", res->checkpoint_id);
        s->replay_after_wal_id = res->replay_after_wal_id;
        s->next_wal_sst_id = res->next_wal_sst_id;
    }
    s->steps[step].objects_copied += res->objects_copied;
    s->steps[step].bytes_copied += res->bytes_copied;
    sp->stats.objects_copied += res->objects_copied;
    sp->stats.bytes_copied += res->bytes_copied;
    for (size_t i = 0; res->children && i < s->child_count; i++) {
        step_child_result *c = &res->children[i];
        if (c->cloned) {
            s->children[i].manifest_id = c->manifest_id;
            s->children[i].ssts_referenced = c->ssts_referenced;
            s->children[i].wal_ssts_copied = c->wal_ssts_copied;
        }
        if (c->verified)
            s->children[i].key_count = c->key_count;
    }
    if (res->verify_mode != SPLIT_VERIFY_DEFAULT)
        s->verify_mode = res->verify_mode;
    if (res->plan) {
        split_plan_free(s->plan);
        s->plan = res->plan;
        res->plan = NULL;
    }
    pthread_mutex_unlock(&sp->mu);
}

static void set_step(splitter *sp, job *j, split_step step, step_state state, const char *msg)
{
    pthread_mutex_lock(&sp->mu);
    split_step_rec *r = &j->st->steps[step];
    r->state = state;
    if (state == STEP_RUNNING)
        r->start_ms = wall_ms();
    else
        r->end_ms = wall_ms();
    if (msg)
        split_state_set_str(&r->message, msg);
    pthread_mutex_unlock(&sp->mu);
}

/* Sets the terminal phase; the caller saves. */
static void finish(splitter *sp, job *j, split_phase phase, const char *reason,
                   const char *message)
{
    pthread_mutex_lock(&sp->mu);
    split_state *s = j->st;
    s->stalled.on = false;
    s->phase = phase;
    split_state_set_str(&s->reason, reason);
    split_state_set_str(&s->message, message);
    s->completion_ms = wall_ms();
    if (phase == PHASE_COMPLETE)
        sp->stats.completed++;
    else if (phase == PHASE_ABORTED)
        sp->stats.aborted++;
    else
        sp->stats.failed++;
    pthread_mutex_unlock(&sp->mu);
    log_fields(phase == PHASE_COMPLETE ? LOG_INFO : LOG_WARN, s->name, NULL, -1,
               (log_field[]){LOG_S("result", split_phase_name(phase)), LOG_S("reason", reason)},
               2, "split finished: %s", message ? message : "");
}

/* ---- running a job -------------------------------------------------------- */

static split_step first_unfinished(splitter *sp, job *j)
{
    pthread_mutex_lock(&sp->mu);
    int s = STEP_FENCE;
    while (s < STEP_COUNT && j->st->steps[s].state == STEP_DONE)
        s++;
    pthread_mutex_unlock(&sp->mu);
    return (split_step)s;
}

/* Marks a step Running, unless an abort was accepted and the step is not
 * past the point of no return: then returns false.  One lock covers both,
 * so an abort accepted while WipeLocalWAL was Pending always wins. */
static bool begin_step(splitter *sp, job *j, split_step step, run *r)
{
    pthread_mutex_lock(&sp->mu);
    bool abort = j->abort_requested && step <= STEP_WIPE_WAL;
    if (!abort) {
        split_step_rec *rec = &j->st->steps[step];
        rec->state = STEP_RUNNING;
        rec->start_ms = wall_ms();
        if (!j->st->stalled.on)
            j->st->phase = split_step_phase(step);
    }
    snprintf(r->checkpoint_id, sizeof r->checkpoint_id, "%s", j->st->checkpoint_id);
    r->replay_after_wal_id = j->st->replay_after_wal_id;
    /* the versions Clone wrote (journalled): Verify opens each child there */
    for (size_t i = 0; r->child_manifest_ids && i < j->st->child_count && i < r->req->child_count;
         i++)
        r->child_manifest_ids[i] = j->st->children[i].manifest_id;
    pthread_mutex_unlock(&sp->mu);
    return !abort;
}

static void do_abort(run *r, job *j)
{
    shale_close(r->db);
    r->db = NULL;
    release_checkpoint(r);
    preflight_release_claims(r);
    finish(r->sp, j, PHASE_ABORTED, "AbortRequested",
           "aborted before the local WAL wipe; the parent is unchanged (its serving "
           "writer must reopen: it was fenced)");
    if (!splitter_save(r->sp, j))
        split_settle(r->sp, j, NULL);
}

static shale_status run_step(run *r, split_step step, step_result *res)
{
    switch (step) {
    case STEP_FENCE: return do_fence(r, res);
    case STEP_FULL_FLUSH: return do_full_flush(r, res);
    case STEP_WIPE_WAL: return do_wipe(r, res);
    case STEP_CLONE: return do_clone(r, res);
    case STEP_VERIFY: return do_verify(r, res);
    default: return SHALE_OK;
    }
}

static void run_dry(splitter *sp, job *j, run *r)
{
    step_result res;
    memset(&res, 0, sizeof res);
    shale_status rc = do_plan(r, &res);
    apply_result(sp, j, STEP_ACCEPT, &res);
    split_plan_free(res.plan);
    if (rc)
        finish(sp, j, PHASE_FAILED, "PlanFailed", shale_errmsg());
    else
        finish(sp, j, PHASE_COMPLETE, "DryRun", "dry run: plan computed, nothing changed");
    splitter_save(sp, j);
}

/* The lease must name this split before it acts: taken at Accept (or, for
 * a journal from before leases, now).  false: the job cannot run now
 * (*retry: try again later; else it is orphaned). */
static bool check_lease(splitter *sp, job *j, bool *retry)
{
    *retry = false;
    pthread_mutex_lock(&sp->mu);
    bool fresh_here = j->lease_taken_ms && j->st->lease.state == LEASE_HELD &&
                      agent_mono_ms() - j->lease_taken_ms < LEASE_FRESH_MS;
    j->lease_taken_ms = 0;   /* a later run (a retry, a resume) reads it */
    pthread_mutex_unlock(&sp->mu);
    if (fresh_here)
        return true;
    pthread_mutex_lock(&sp->mu);
    lease_state had = j->st->lease.state;
    uint64_t had_seq = j->st->lease.seq;
    char *req = j->req_json ? agent_strdup(j->req_json) : NULL;
    pthread_mutex_unlock(&sp->mu);
    uint64_t seq = 0;
    bool fresh = false;
    char holder[256];
    shale_status rc = lease_take(sp->store, sp->shard, j->st->name, req, &seq, &fresh, holder,
                                 sizeof holder);
    free(req);
    const char *why = NULL;
    char msg[700];
    if (rc == SHALE_CONFLICT || (!rc && had == LEASE_HELD && (fresh || seq != had_seq))) {
        /* Another split holds the lease, or this split's lease was released
         * (an operator cleared it) and taken anew: never act on it. */
        snprintf(msg, sizeof msg, "%s", rc ? shale_errmsg() : "the split lease this split held "
                                                             "was released meanwhile");
        why = msg;
    } else if (rc) {
        *retry = true;
        log_fields(LOG_WARN, j->st->name, NULL, -1, (log_field[]){LOG_S("error",
                                                                        shale_errmsg())},
                   1, "cannot read the split lease now; will retry");
        return false;
    }
    pthread_mutex_lock(&sp->mu);
    if (why) {
        j->orphaned = true;
        split_state_set_str(&j->st->message, why);
        split_state_set_str(&j->st->reason, "LeaseLost");
    } else {
        j->st->lease.state = LEASE_HELD;
        j->st->lease.seq = seq;
    }
    pthread_mutex_unlock(&sp->mu);
    if (why) {
        log_fields(LOG_ERROR, j->st->name, NULL, -1, (log_field[]){LOG_S("error", why)}, 1,
                   "not resuming the split: it does not hold the shard's split lease");
        splitter_notify(sp, j);
        return false;
    }
    if (fresh)
        splitter_save(sp, j);
    return true;
}

/* One step until it is done, failed, or the splitter stops.  *stopped:
 * shutting down mid-retry. */
static shale_status step_loop(splitter *sp, job *j, run *r, split_step step,
                              step_result *res, bool *stopped)
{
    const char *sname = split_step_name(step);
    shale_status rc = SHALE_OK;
    *stopped = false;
    for (uint32_t attempt = 1;; attempt++) {
        /* A fresh result per attempt: what an attempt did is applied once. */
        step_child_result *kids = res->children;
        memset(res, 0, sizeof *res);
        memset(kids, 0, r->req->child_count * sizeof *kids);
        res->children = kids;
        rc = run_step(r, step, res);
        if (r->pending) {
            /* The step's "Running" was written beside it (async_save) and
             * the step did not wait for it (Verify only reads): it must be
             * durable before the step's result counts.  If it cannot be
             * had, this attempt is dropped (it only read) and the worker
             * comes back later, as when a "Running" write fails before a
             * step. */
            shale_status src = run_barrier(r);
            if (src == SHALE_CONFLICT)
                return src;
            if (src) {
                *stopped = true;
                return SHALE_RETRYABLE;
            }
        }
        apply_result(sp, j, step, res);
        if (!rc)
            return rc;
        char err[700];
        snprintf(err, sizeof err, "%s: %s", shale_strerror(rc), shale_errmsg());
        bool transient = rc == SHALE_IO || rc == SHALE_RETRYABLE || rc == SHALE_TIMEOUT;
        /* A child that differs from the parent is not a fault that passes:
         * retrying reads the same data.  It fails the split (VerifyFailed)
         * for an operator to look at. */
        bool forward_only = step >= STEP_WIPE_WAL && !res->mismatch && !r->refused;
        if (!forward_only && (!transient || attempt >= STEP_ATTEMPTS))
            return rc;
        uint32_t wait = forward_only ? backoff_ms(sp, attempt - 1) : 200u * attempt;
        int64_t next = wall_ms() + wait;
        pthread_mutex_lock(&sp->mu);
        sp->stats.retries++;
        split_state *s = j->st;
        s->steps[step].attempts = attempt;
        bool first_stall = forward_only && !s->stalled.on;
        if (forward_only) {
            s->stalled.on = true;
            s->stalled.step = step;
            split_state_set_str(&s->stalled.error, err);
            s->stalled.retries = attempt;
            s->stalled.next_retry_ms = next;
            s->phase = PHASE_STALLED;
        }
        split_state_set_str(&s->steps[step].message, err);
        pthread_mutex_unlock(&sp->mu);
        char nt[40];
        journal_format_time(next, nt, sizeof nt);
        log_fields(LOG_WARN, s->name, sname, -1,
                   (log_field[]){LOG_S("result", forward_only ? "Stalled" : "Retry"),
                                 LOG_S("error", err), LOG_N("retries", attempt),
                                 LOG_S("nextRetryTime", nt)},
                   4, "step failed; retrying in %u ms", wait);
        /* The first stall is journalled (an agent restarted meanwhile shows
         * it); later retries only tell listeners, so a long stall does not
         * grow the journal by a version per retry. */
        if (first_stall) {
            if (splitter_save(sp, j) == SHALE_CONFLICT)
                return SHALE_CONFLICT;
        } else {
            splitter_notify(sp, j);
        }
        pthread_mutex_lock(&sp->mu);
        timed_wait_locked(sp, wait);
        bool stop = sp->stop;
        pthread_mutex_unlock(&sp->mu);
        if (stop) {
            *stopped = true;
            return rc;
        }
    }
}

/* The Complete step.  It has no side effect of its own that must come
 * before the split is journalled Complete: its one action, releasing the
 * split's checkpoint, is owed from then on (checkpointReleaseOwed) and made
 * after the terminal write, beside the lease's release (split_settle.c).
 * So one journal write records Verify Done (when Verify ran just before:
 * verify_done) and Complete Done -- where there were two, "Verify Done,
 * Complete Running" and "Complete Done" -- and the checkpoint is still
 * released only after Verify Done is durable (a resumed Verify reads the
 * parent at it).  A journal that an earlier agent left at Complete Running
 * comes here too. */
static void *close_main(void *db)
{
    shale_close(db);
    return NULL;
}

static void complete_split(splitter *sp, job *j, run *r, bool verify_done)
{
    failpoint("Complete.before");
    int64_t t0 = agent_mono_ms();
    /* The writer opened at Fence is not needed any more: closed beside the
     * terminal write and the releases, not before them.  Its close writes
     * nothing (FullFlush left it nothing to flush, its compactor is off)
     * but frees what it holds -- on file:// an unused WAL spare's blocks,
     * 1-3 ms in a 15 ms split (docs/benchmarks.md) -- and a split that is
     * killed meanwhile resumes at Complete as before. */
    shale_db *w = r->db;
    r->db = NULL;
    pthread_t closer;
    bool closing = w && pthread_create(&closer, NULL, close_main, w) == 0;
    if (w && !closing)
        shale_close(w);
    pthread_mutex_lock(&sp->mu);
    split_state *s = j->st;
    split_step_rec *rec = &s->steps[STEP_COMPLETE];
    rec->state = STEP_DONE;
    rec->start_ms = rec->end_ms = wall_ms();
    s->checkpoint_owed = *s->checkpoint_id != '\0';
    pthread_mutex_unlock(&sp->mu);
    finish(sp, j, PHASE_COMPLETE, "SplitComplete", "every child verified");
    shale_status rc = splitter_save(sp, j);
    if (!rc) {
        if (verify_done)
            failpoint("Verify.after");
        failpoint("Complete.after");
    }
    double secs = (double)(agent_mono_ms() - t0) / 1000.0;
    if (sp->step_cb)
        sp->step_cb(sp->step_ctx, split_step_name(STEP_COMPLETE), secs);
    log_fields(LOG_INFO, s->name, split_step_name(STEP_COMPLETE), secs * 1000,
               (log_field[]){LOG_S("result", "Done")}, 1, "step done");
    if (!rc)
        split_settle(sp, j, r);
    if (closing)
        pthread_join(closer, NULL);
}

static void run_job(splitter *sp, job *j)
{
    run r;
    memset(&r, 0, sizeof r);
    r.sp = sp;
    r.req = j->req;
    r.name = j->st->name;
    r.manifest_hint = j->parent_manifest_id;
    r.preopen = j->preopen;
    /* The run's manifest versions (the accept's read of the parent, when
     * this process accepted it): no step reads one of them again.  A
     * resumed run starts with none and reads them from the store.  Failing
     * to make one costs only the GETs it saves. */
    if (!j->mcache)
        (void)shale_manifest_cache_new(0, &j->mcache);
    r.mcache = j->mcache;
    if (j->st->dry_run) {
        run_dry(sp, j, &r);
        return;
    }
    bool retry;
    if (!check_lease(sp, j, &retry))
        return;   /* retry: the worker pauses and comes back */
    step_result res;
    memset(&res, 0, sizeof res);
    res.children = calloc(j->req->child_count, sizeof *res.children);
    r.child_manifest_ids = calloc(j->req->child_count ? j->req->child_count : 1,
                                  sizeof *r.child_manifest_ids);
    if (!res.children || !r.child_manifest_ids) {
        free(res.children);
        free(r.child_manifest_ids);
        return;
    }
    /* running_saved: this step's Running went out with the previous
     * step's Done, in one journal write. */
    bool running_saved = false;
    bool flush_in_v1 = false;   /* version 1 has FullFlush Running too */
    async_save as;   /* the overlapped journal write, while r.pending */
    for (split_step step = first_unfinished(sp, j); step < STEP_COUNT; step++) {
        const char *sname = split_step_name(step);
        char fp[64];
        if (step == STEP_COMPLETE) {
            complete_split(sp, j, &r, running_saved);
            break;
        }
        if (!running_saved) {
            snprintf(fp, sizeof fp, "%s.before", sname);
            failpoint(fp);
            if (!begin_step(sp, j, step, &r)) {
                do_abort(&r, j);
                break;
            }
            log_fields(LOG_INFO, j->st->name, sname, -1, NULL, 0, "step started");
            pthread_mutex_lock(&sp->mu);
            bool in_v1 = step == STEP_FENCE && j->fence_journalled;
            j->fence_journalled = false;
            pthread_mutex_unlock(&sp->mu);
            flush_in_v1 = in_v1;
            if (in_v1)
                splitter_notify(sp, j);   /* journal version 1 has Fence Running */
            else if (splitter_save(sp, j))
                break;   /* "Running" is journalled before any side effect */
            /* Fence Running, durable now, covers the pre-flight's claims
             * (split_steps.c "early_pf"): they run beside Fence and
             * FullFlush, off the wipe's path.  A run resumed at FullFlush
             * (journalled Running with Fence's in version 1) starts it
             * beside FullFlush. */
            if (step == STEP_FENCE || step == STEP_FULL_FLUSH)
                preflight_early_start(&r);
        }
        running_saved = false;
        /* Verify's reads of the parent, ahead (verify_warm.h): from Clone's
         * start, the checkpoint known, beside its round trips. */
        if (step == STEP_CLONE && !r.warm)
            r.warm = verify_warm_start(&r);
        int64_t t0 = agent_mono_ms();
        bool stopped;
        shale_status rc = step_loop(sp, j, &r, step, &res, &stopped);
        /* CONFLICT from the step loop means another agent writes the journal
         * now -- unless it is the pre-flight's refusal, which fails below. */
        if (stopped || (rc == SHALE_CONFLICT && !r.refused))
            break;
        double secs = (double)(agent_mono_ms() - t0) / 1000.0;
        if (sp->step_cb)
            sp->step_cb(sp->step_ctx, sname, secs);
        if (rc) {
            char reason[64];
            snprintf(reason, sizeof reason, "%sFailed", sname);
            char emsg[1024];
            snprintf(emsg, sizeof emsg, "%s: %s", shale_strerror(rc), shale_errmsg());
            if (r.refused) {
                /* Refused before the point of no return, nothing deleted:
                 * the parent is left as an abort leaves it. */
                snprintf(reason, sizeof reason, "PreflightRefused");
                release_checkpoint(&r);
            }
            /* Short of the wipe, the claims this split made (early, beside
             * Fence, or by an earlier run) would refuse every other split
             * of those stores: released before the terminal write. */
            if (step < STEP_WIPE_WAL || r.refused)
                preflight_release_claims(&r);
            log_fields(LOG_ERROR, j->st->name, sname, secs * 1000,
                       (log_field[]){LOG_S("result", "Failed"), LOG_S("error", emsg)}, 2,
                       "step failed");
            set_step(sp, j, step, STEP_FAILED, emsg);
            shale_close(r.db);
            r.db = NULL;
            if (step >= STEP_WIPE_WAL && !r.refused)
                strncat(emsg, "; past the point of no return the split lease stays held: "
                              "see docs/agent.md \"When a split fails after the wipe\"",
                        sizeof emsg - strlen(emsg) - 1);
            finish(sp, j, PHASE_FAILED, reason, emsg);
            if (!splitter_save(sp, j))
                split_settle(sp, j, NULL);
            break;
        }
        log_fields(LOG_INFO, j->st->name, sname, secs * 1000,
                   (log_field[]){LOG_S("result", "Done"), LOG_S("message", res.message)}, 2,
                   "step done");
        pthread_mutex_lock(&sp->mu);
        j->st->stalled.on = false;
        j->st->phase = split_step_phase(step);
        pthread_mutex_unlock(&sp->mu);
        set_step(sp, j, step, STEP_DONE, *res.message ? res.message : NULL);
        if (step + 1 == STEP_COMPLETE) {
            /* Verify's Done goes out with Complete's (complete_split) */
            running_saved = true;
            continue;
        }
        /* One journal write ends this step and starts the next (each is a
         * round trip on S3): the next step is still journalled Running
         * before any of its side effects, and an abort accepted meanwhile
         * is honoured as begin_step always did. */
        bool next = step + 1 < STEP_COUNT, aborting = false;
        if (next) {
            snprintf(fp, sizeof fp, "%s.before", split_step_name(step + 1));
            failpoint(fp);
            aborting = !begin_step(sp, j, step + 1, &r);
        }
        snprintf(fp, sizeof fp, "%s.after", sname);
        /* Verify only reads, and WipeLocalWAL (its pre-flight checks)
         * and Clone (its reads and probes) read before they write: their
         * "Running" is written beside those reads and joined before the
         * step's first write (run_barrier, from inside the step) or its
         * result (async_save). */
        bool overlap = next && !aborting &&
                       (step + 1 == STEP_VERIFY || step + 1 == STEP_CLONE ||
                        step + 1 == STEP_WIPE_WAL);
        /* FullFlush after the Fence that version 1 started: journalled
         * Running already (accept), its writer's open fences again if
         * resumed; Fence's Done goes out with FullFlush's. */
        bool ahead = next && !aborting && step == STEP_FENCE && flush_in_v1;
        if (overlap) {
            async_save_begin(sp, j, &as, fp);
            r.pending = &as;
        } else if (ahead) {
            splitter_notify(sp, j);
            failpoint(fp);
        } else {
            if (splitter_save(sp, j) == SHALE_CONFLICT)
                break;
            failpoint(fp);
        }
        if (aborting) {
            do_abort(&r, j);
            break;
        }
        if (next) {
            log_fields(LOG_INFO, j->st->name, split_step_name(step + 1), -1, NULL, 0,
                       "step started");
            /* a failed write: journal Running again (an overlapped write
             * is checked when it is joined) */
            running_saved = overlap || ahead || !j->unsaved;
        }
    }
    if (r.pending)   /* left by a break before the step ran */
        run_barrier(&r);
    preflight_early_free(&r);   /* interrupted: the claims stay, a resume's pass */
    verify_warm_free(r.warm);   /* a run that ended before Verify took it */
    r.warm = NULL;
    split_plan_free(res.plan);
    free(res.children);
    free(r.child_manifest_ids);
    shale_close(r.db);
    shale_manifest_view_free(r.parent_latest);
    preopen_free(j->preopen);   /* an open Fence did not take: cancelled */
    j->preopen = NULL;
    /* After every handle that used it (the writer, the preopen, Verify's
     * readers): the next pass reads from the store again. */
    shale_manifest_cache_free(j->mcache);
    j->mcache = NULL;
}

job *next_runnable_locked(splitter *sp)
{
    for (job *j = sp->jobs; j; j = j->next)
        if (j->load == JOB_LOADED && !split_phase_terminal(j->st->phase) && !j->orphaned)
            return j;
    return NULL;
}

void *splitter_worker(void *arg)
{
    splitter *sp = arg;
    pthread_mutex_lock(&sp->mu);
    uint32_t tries = 0;
    while (!sp->stop) {
        bool loaded = sp->loaded;
        pthread_mutex_unlock(&sp->mu);
        if (!loaded)
            splitter_load_journals(sp);
        bool unreadable = splitter_retry_unreadable(sp);
        if (!sp->lease_adopted)
            splitter_adopt_lease(sp);
        splitter_settle_due(sp);
        pthread_mutex_lock(&sp->mu);
        pthread_cond_broadcast(&sp->cv);   /* wait_idle re-checks */
        if (!sp->loaded || unreadable) {
            /* Journals that cannot be read now: try again with backoff;
             * meanwhile new splits are refused (split_accept.c). */
            timed_wait_locked(sp, backoff_ms(sp, tries < 6 ? tries : 6));
            tries++;
            if (!sp->loaded)
                continue;
        } else {
            tries = 0;
        }
        job *j = next_runnable_locked(sp);
        if (!j) {
            if (unreadable)
                continue;
            sp->busy = false;
            pthread_cond_broadcast(&sp->cv);
            /* A stop asked while the worker was outside mu (loading
             * journals, reconciling leases) was broadcast to nobody: look at
             * the flag under mu before sleeping, or splitter_free waits
             * forever (seen with shale-agent --once). */
            if (sp->stop)
                continue;
            if (sp->lease_adopted)
                pthread_cond_wait(&sp->cv, &sp->mu);
            else   /* a lease without a journal is looked at again */
                timed_wait_locked(sp, ADOPT_GRACE_MS / 2);
            continue;
        }
        sp->busy = true;
        sp->current = j;
        pthread_mutex_unlock(&sp->mu);
        run_job(sp, j);
        pthread_mutex_lock(&sp->mu);
        sp->current = NULL;
        if (!split_phase_terminal(j->st->phase) && !j->orphaned && !sp->stop) {
            /* It could not go on (a journal write or the lease could not
             * be had now): try again after a pause, never in a hot loop. */
            timed_wait_locked(sp, backoff_ms(sp, tries < 6 ? tries : 6));
            tries++;
        }
    }
    sp->busy = false;
    pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}
