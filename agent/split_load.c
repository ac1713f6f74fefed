/*
 * split_load.c -- the splitter's jobs from the journals in the store.
 *
 * At start every split's newest journal version is read.  What comes of
 * each (docs/agent.md "Resume"):
 *   decoded        a job: unfinished ones are resumed by the worker;
 *   cannot read    (I/O, timeout, throttling; or the parent's manifest that
 *                  validates its request cannot be read) a placeholder the
 *                  worker re-reads with backoff; new splits are refused
 *                  until it has been read;
 *   corrupt        (does not decode, a newer format, a request that no
 *                  longer parses) a placeholder reported by name in logs
 *                  and status, left in place; new splits are refused until
 *                  an operator clears it (splitter_clear_journal).
 * A listing that fails leaves the splitter "not loaded": it is retried and
 * new splits are refused meanwhile.
 */
#include "splitter_int.h"
#include "split_preopen.h"
#include "journal.h"
#include "lease.h"
#include "log.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool transient(shale_status rc)
{
    return rc != SHALE_CORRUPT && rc != SHALE_UNSUPPORTED && rc != SHALE_INVALID_ARGUMENT &&
           rc != SHALE_NOT_FOUND && rc != SHALE_NO_MEMORY;
}

job *find_locked(splitter *sp, const char *name)
{
    for (job *j = sp->jobs; j; j = j->next)
        if (!strcmp(j->st->name, name))
            return j;
    return NULL;
}

void append_locked(splitter *sp, job *j)
{
    job **pp = &sp->jobs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
}

void job_free(job *j)
{
    if (!j)
        return;
    preopen_free(j->preopen);   /* never run: cancelled, nothing fenced */
    shale_manifest_cache_free(j->mcache);   /* after the preopen that used it */
    split_state_free(j->st);
    split_request_free(j->req);
    free(j->req_json);
    free(j->load_error);
    free(j);
}

/* Validates a request, with the parent's own visible range (a parent that
 * is itself a clone can only be split within its range). */
shale_status validate_against_parent(splitter *sp, split_request *r)
{
    /* The stores first, before any is opened: the parent is the agent's. */
    const char *uri = sp->store_uri;
    shale_objstore *s = NULL;
    shale_manifest_view *m = NULL;
    shale_status rc = split_request_check_stores(r, &sp->o.policy, sp->store_uri, sp->wal_uri,
                                                 &sp->o.db);
    if (rc)
        return rc;
    rc = shale_objstore_open(uri, &sp->o.db.store, &s);
    if (!rc)
        rc = shale_manifest_view_load(s, 0, &m);
    shale_objstore_close(s);
    if (rc == SHALE_NOT_FOUND)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "parent store %s holds no database", uri);
    if (rc)
        return rc;
    rc = split_request_validate(r, sp->shard, sp->store_uri, sp->wal_uri, m->range_start,
                                m->range_start_len, m->range_end, m->range_end_len);
    shale_manifest_view_free(m);
    return rc;
}

/* A placeholder state for a journal that is not usable now. */
static split_state *placeholder(const char *name, bool corrupt, const char *why)
{
    split_state *s = split_state_alloc();
    if (!s)
        return NULL;
    if (!split_state_set_str(&s->name, name) ||
        !split_state_set_str(&s->reason, corrupt ? "JournalCorrupt" : "JournalUnreadable") ||
        !split_state_set_str(&s->message, why)) {
        split_state_free(s);
        return NULL;
    }
    s->phase = PHASE_PENDING;
    return s;
}

job *job_from_state(splitter *sp, const char *name, split_state *st, shale_status rc)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        split_state_free(st);
        return NULL;
    }
    char why[700] = "";
    if (!rc && st->request_json) {
        split_request *r = NULL;
        rc = split_request_parse(name, st->request_json, strlen(st->request_json), &r);
        if (!rc)
            rc = validate_against_parent(sp, r);
        if (!rc)
            rc = split_request_to_json(r, &j->req_json);
        if (rc) {
            snprintf(why, sizeof why, "journal of %s: its request: %s", name, shale_errmsg());
            if (!transient(rc))
                rc = SHALE_CORRUPT;
            split_request_free(r);
        } else {
            j->req = r;
        }
    } else if (rc) {
        snprintf(why, sizeof why, "%s", shale_errmsg());
    }
    if (rc) {
        split_state_free(st);
        j->load = transient(rc) ? JOB_UNREADABLE : JOB_CORRUPT;
        j->load_error = agent_strdup(why);
        st = placeholder(name, j->load == JOB_CORRUPT, why);
        if (!st || !j->load_error) {
            split_state_free(st);
            job_free(j);
            return NULL;
        }
        log_fields(LOG_ERROR, name, NULL, -1,
                   (log_field[]){LOG_S("result", j->load == JOB_CORRUPT ? "JournalCorrupt"
                                                                         : "JournalUnreadable"),
                                 LOG_S("error", why)},
                   2, j->load == JOB_CORRUPT
                          ? "split journal is corrupt: left in place; new splits of the shard "
                            "are refused until an operator clears it (shale-agent "
                            "--clear-journal NAME)"
                          : "split journal cannot be read now; will retry");
    }
    j->st = st;
    j->added_ms = agent_now_ms();
    return j;
}

static void load_one(void *ctx, const char *name, uint64_t version, shale_status rc,
                     split_state *st)
{
    (void)version;
    splitter *sp = ctx;
    job *j = job_from_state(sp, name, st, rc);
    if (!j)
        return;
    pthread_mutex_lock(&sp->mu);
    if (find_locked(sp, name)) {
        pthread_mutex_unlock(&sp->mu);
        job_free(j);
        return;
    }
    append_locked(sp, j);
    pthread_mutex_unlock(&sp->mu);
    if (j->load == JOB_LOADED && !split_phase_terminal(j->st->phase))
        log_fields(LOG_INFO, name, split_step_name(STEP_ACCEPT), -1,
                   (log_field[]){LOG_S("phase", split_phase_name(j->st->phase))}, 1,
                   "resuming split from its journal");
}

void splitter_load_journals(splitter *sp)
{
    shale_status rc = journal_load_all(sp->store, load_one, sp);
    pthread_mutex_lock(&sp->mu);
    sp->loaded = rc == SHALE_OK;
    snprintf(sp->load_error, sizeof sp->load_error, "%s", rc ? shale_errmsg() : "");
    sp->load_tries++;
    pthread_mutex_unlock(&sp->mu);
    if (rc)
        log_fields(LOG_ERROR, NULL, NULL, -1, (log_field[]){LOG_S("error", sp->load_error)}, 1,
                   "cannot list the split journals now; will retry (new splits refused)");
}

bool splitter_retry_unreadable(splitter *sp)
{
    bool left = false;
    for (;;) {
        char name[256] = "";
        pthread_mutex_lock(&sp->mu);
        for (job *j = sp->jobs; j && !*name; j = j->next)
            if (j->load == JOB_UNREADABLE && !j->tried) {
                snprintf(name, sizeof name, "%s", j->st->name);
                j->tried = true;
            }
        pthread_mutex_unlock(&sp->mu);
        if (!*name)
            break;
        uint64_t v = 0;
        split_state *st = NULL;
        shale_status rc = journal_load(sp->store, name, &v, &st);
        job *nj = job_from_state(sp, name, st, rc);
        pthread_mutex_lock(&sp->mu);
        job *old = find_locked(sp, name);
        if (nj && old) {
            /* Swap the new content into the listed job. */
            job tmp = *old;
            job *next = old->next;
            *old = *nj;
            old->next = next;
            *nj = tmp;
            nj->next = NULL;
        }
        left = left || !old || old->load == JOB_UNREADABLE;
        pthread_mutex_unlock(&sp->mu);
        if (old && old->load == JOB_LOADED)
            log_fields(LOG_INFO, name, NULL, -1, NULL, 0, "split journal read on retry");
        job_free(nj);
    }
    pthread_mutex_lock(&sp->mu);
    for (job *j = sp->jobs; j; j = j->next)
        j->tried = false;
    pthread_mutex_unlock(&sp->mu);
    return left;
}

void splitter_lease_free_seen(splitter *sp, uint64_t top)
{
    pthread_mutex_lock(&sp->mu);
    if (!sp->lease_free_known || top > sp->lease_free_top) {
        sp->lease_free_top = top;
        sp->lease_free_known = true;
    }
    pthread_mutex_unlock(&sp->mu);
}

void splitter_lease_taken(splitter *sp, uint64_t seq)
{
    pthread_mutex_lock(&sp->mu);
    if (seq > sp->lease_free_top)
        sp->lease_free_known = false;
    pthread_mutex_unlock(&sp->mu);
}

void splitter_adopt_lease(splitter *sp)
{
    pthread_mutex_lock(&sp->mu);
    bool first = !sp->adopt_tried;
    pthread_mutex_unlock(&sp->mu);
    if (first)   /* before adopt_tried: splitter_wait_idle waits for it */
        splitter_parent_prime(sp);
    lease_view v;
    shale_status rc = lease_read(sp->store, &v);
    pthread_mutex_lock(&sp->mu);
    sp->adopt_tried = true;
    pthread_mutex_unlock(&sp->mu);
    if (rc)
        return;   /* tried again next round */
    if (!v.held)
        splitter_lease_free_seen(sp, v.top);   /* the next submit's take hint */
    pthread_mutex_lock(&sp->mu);
    bool known = !v.held || find_locked(sp, v.holder);
    /* A take record without a journal is also what a live accept in
     * another agent looks like for a few milliseconds: adopt it only when
     * the same record is still the top, still without a journal, after
     * ADOPT_GRACE_MS of this agent's own clock. */
    bool wait = false;
    if (!known && sp->adopt_seq != v.top) {
        sp->adopt_seq = v.top;
        sp->adopt_seen_ms = agent_mono_ms();
        wait = true;
    } else if (!known && agent_mono_ms() - sp->adopt_seen_ms < ADOPT_GRACE_MS) {
        wait = true;
    }
    pthread_mutex_unlock(&sp->mu);
    if (wait) {
        lease_view_free(&v);
        return;
    }
    split_state *st = NULL;
    uint64_t ver = 0;
    if (!known) {
        /* The journal may exist and only not have been listed yet. */
        rc = journal_load(sp->store, v.holder, &ver, &st);
        if (rc == SHALE_NOT_FOUND && v.request_json) {
            split_request *r = NULL;
            char *canon = NULL;
            rc = split_request_parse(v.holder, v.request_json, strlen(v.request_json), &r);
            if (!rc)
                rc = validate_against_parent(sp, r);
            if (!rc)
                rc = split_request_to_json(r, &canon);
            if (!rc && !(st = split_state_new(r, canon, false, agent_now_ms())))
                rc = AGENT_OOM();
            if (!rc) {
                st->lease.state = LEASE_HELD;
                st->lease.seq = v.top;
                rc = journal_save(sp->store, st);
                if (rc == SHALE_CONFLICT) {
                    split_state_free(st);
                    st = NULL;
                    rc = journal_load(sp->store, v.holder, &ver, &st);
                }
            }
            if (!rc)
                log_fields(LOG_WARN, v.holder, split_step_name(STEP_ACCEPT), -1, NULL, 0,
                           "the split lease named a split with no journal: accepted it from "
                           "the lease record");
            split_request_free(r);
            free(canon);
        }
        if (rc == SHALE_NOT_FOUND || (rc && !transient(rc)) || (!rc && st)) {
            job *j = job_from_state(sp, v.holder, st, rc == SHALE_NOT_FOUND ? SHALE_CORRUPT
                                                                            : rc);
            pthread_mutex_lock(&sp->mu);
            if (j && !find_locked(sp, v.holder))
                append_locked(sp, j);
            else
                job_free(j);
            pthread_mutex_unlock(&sp->mu);
            rc = SHALE_OK;
        }
    }
    lease_view_free(&v);
    if (!rc) {
        pthread_mutex_lock(&sp->mu);
        sp->lease_adopted = true;
        pthread_mutex_unlock(&sp->mu);
    }
}
