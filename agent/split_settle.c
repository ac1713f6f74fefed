/*
 * split_settle.c -- what a finished split still owes after its terminal
 * journal write: the release of its checkpoint (a Complete split) and of
 * the shard's split lease, made at once, then one journal write that
 * records both (docs/agent.md "Journal").
 *
 * Why after the terminal write and not before: the terminal write (Verify
 * Done and Complete Done in one version, since issue 16) is what a resumed
 * agent reads; the releases are idempotent and need nothing of the split's
 * steps, so a kill anywhere among them resumes here (splitter_settle_due,
 * from the worker's loop) and acts without the lease -- releasing a
 * checkpoint by id is safe beside any writer of the parent, and a lease
 * already released (by us, before the kill) is found so and left alone.
 * The checkpoint must never be released before Verify Done is durable: a
 * resumed Verify reads the parent at that checkpoint.
 */
#include "splitter_int.h"
#include "lease.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cp_release {
    splitter *sp;
    char id[40];
    const struct shale_manifest_view *latest;   /* borrowed, may be NULL */
    shale_status rc;
    char msg[512];
} cp_release;

static void *cp_release_main(void *arg)
{
    cp_release *c = arg;
    c->rc = complete_release_checkpoint(c->sp, c->id, c->latest);
    if (c->rc)
        snprintf(c->msg, sizeof c->msg, "%s", shale_errmsg());
    return NULL;
}

bool split_settle_due(const job *j)
{
    if (j->load != JOB_LOADED || j->orphaned || j->st->dry_run)
        return false;
    const split_state *s = j->st;
    return (s->lease.state == LEASE_HELD && lease_releasable(s)) ||
           (s->phase == PHASE_COMPLETE && s->checkpoint_owed);
}

void split_settle(splitter *sp, job *j, const run *r)
{
    pthread_mutex_lock(&sp->mu);
    bool ok = !j->unsaved && split_settle_due(j);
    bool cp = ok && j->st->phase == PHASE_COMPLETE && j->st->checkpoint_owed;
    bool lease = ok && j->st->lease.state == LEASE_HELD && lease_releasable(j->st);
    uint64_t taken = j->st->lease.seq;
    cp_release c;
    memset(&c, 0, sizeof c);
    c.sp = sp;
    c.latest = r ? r->parent_latest : NULL;
    snprintf(c.id, sizeof c.id, "%s", j->st->checkpoint_id);
    pthread_mutex_unlock(&sp->mu);
    if (!cp && !lease)
        return;
    /* Two writes to two objects, each a round trip on S3: at once. */
    pthread_t th;
    bool threaded = cp && !pthread_create(&th, NULL, cp_release_main, &c);
    if (cp && !threaded)
        cp_release_main(&c);
    uint64_t seq = 0;
    shale_status lrc = SHALE_OK;
    char lmsg[512] = "";
    if (lease) {
        /* The release goes right after this split's take (one request); a
         * record there already means someone wrote since: read and decide. */
        lrc = lease_release_after(sp->store, j->st->name, taken, &seq);
        if (lrc)
            snprintf(lmsg, sizeof lmsg, "%s", shale_errmsg());
    }
    if (threaded)
        pthread_join(th, NULL);
    if (cp && c.rc)
        log_fields(LOG_WARN, j->st->name, split_step_name(STEP_COMPLETE), -1,
                   (log_field[]){LOG_S("error", c.msg)}, 1,
                   "cannot release the split's checkpoint %s now; will retry", c.id);
    if (lease && lrc)
        log_fields(LOG_WARN, j->st->name, NULL, -1, (log_field[]){LOG_S("error", lmsg)}, 1,
                   "cannot release the split lease now; will retry");
    bool changed = (cp && !c.rc) || (lease && !lrc);
    pthread_mutex_lock(&sp->mu);
    if (cp && !c.rc)
        j->st->checkpoint_owed = false;
    if (lease && !lrc) {
        j->st->lease.state = LEASE_RELEASED;
        j->st->lease.release_seq = seq;
    }
    pthread_mutex_unlock(&sp->mu);
    if (lease && !lrc && seq)
        splitter_lease_free_seen(sp, seq);   /* the next take's hint: no LIST */
    if (lease && !lrc)
        log_fields(LOG_INFO, j->st->name, NULL, -1, (log_field[]){LOG_N("leaseSeq", seq)}, 1,
                   "split lease released");
    if (changed)
        splitter_save(sp, j);
}

void splitter_settle_due(splitter *sp)
{
    for (;;) {
        pthread_mutex_lock(&sp->mu);
        job *due = NULL;
        for (job *j = sp->jobs; j && !due; j = j->next)
            if (split_phase_terminal(j->st->phase) && split_settle_due(j) && !j->tried)
                due = j;
        if (due)
            due->tried = true;
        bool resave = due && due->unsaved;
        pthread_mutex_unlock(&sp->mu);
        if (!due)
            break;
        if (resave && splitter_save(sp, due))   /* the terminal journal first */
            continue;
        split_settle(sp, due, NULL);
    }
    pthread_mutex_lock(&sp->mu);
    for (job *j = sp->jobs; j; j = j->next)
        j->tried = false;
    pthread_mutex_unlock(&sp->mu);
}
