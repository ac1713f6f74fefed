/*
 * split_steps.c -- the steps of a split (see splitter.c for the machine and
 * docs/agent.md for what each step guarantees).  Every step is idempotent:
 * a crash anywhere is followed by the same step again.
 */
#include "splitter_int.h"
#include "split_preopen.h"
#include "failpoint.h"
#include "preflight.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

shale_options db_opts(const splitter *sp, const char *wal)
{
    shale_options o = sp->o.db;
    o.wal_store_uri = wal;
    /* The split's writer of the parent compacts nothing: it flushes,
     * checkpoints and releases, and the parent is retired once Complete
     * (after an abort its serving writer reopens it and compacts).  A
     * compaction there would write SSTs no child references and new
     * parent versions racing Clone's pin write and Complete's release
     * (test_splitter test_split_writer_compacts_nothing). */
    o.compactor = false;
    return o;
}

shale_options run_opts(const run *r, const char *wal)
{
    shale_options o = db_opts(r->sp, wal);
    o.store.manifest_cache = r->mcache;
    return o;
}

shale_objstore_options run_store_opts(const run *r)
{
    shale_objstore_options o = r->sp->o.db.store;
    o.manifest_cache = r->mcache;
    return o;
}

const char *parent_store(const run *r)
{
    return r->req->parent_store ? r->req->parent_store : r->sp->store_uri;
}

const char *parent_wal(const run *r)
{
    return r->req->parent_store ? r->req->parent_wal_store : r->sp->wal_uri;
}

/* The parent's writer, opened (fencing the previous one) at the version
 * the accept read when this run has it: shale_open_at() reads it beside a
 * listing of the versions after it, one round trip where a plain open
 * lists and then reads.  The listing still decides the latest version, so
 * a stale hint (the parent written since the submit) costs a read, never
 * the fence's soundness.  A split this process accepted has that open
 * started already, beside journal version 1, and waiting to fence
 * (split_preopen.h): the first Fence finishes it; a retried one opens. */
static shale_status ensure_writer(run *r)
{
    if (r->db)
        return SHALE_OK;
    struct preopen *po = r->preopen;
    r->preopen = NULL;
    if (po)   /* started beside version 1, its reads done: fence now */
        return preopen_finish(po, &r->db);
    shale_options o = run_opts(r, parent_wal(r));
    uint64_t hint = strcmp(parent_store(r), r->sp->store_uri) ? 0 : r->manifest_hint;
    return shale_open_at(parent_store(r), &o, hint, &r->db);
}

shale_status do_fence(run *r, step_result *res)
{
    (void)res;
    return ensure_writer(r);
}

static shale_status flush_barrier(void *ctx)
{
    shale_status rc = run_barrier(ctx);
    return rc ? shale_error_prefix(rc, "journalling FullFlush Running") : SHALE_OK;
}

/* One upload and one parent manifest write (shale_flush_checkpoint): the
 * memtable's SST, then the write that adds it to L0, closes the WAL gap
 * and adds the split's checkpoint pinning that version.  The SST upload
 * may run beside the journal write of FullFlush "Running" (when the run
 * overlaps it, r->pending): it is invisible until the manifest write names
 * it, and a crash before that leaves an orphan for GC, never state.  The
 * barrier joins that journal write before the manifest write, the step's
 * first side effect. */
shale_status do_full_flush(run *r, step_result *res)
{
    shale_status rc = ensure_writer(r);
    if (rc)
        return rc;
    char name[300];
    snprintf(name, sizeof name, "split:%s", r->name);
    /* Redone after a crash: the old checkpoint may or may not exist; a new
     * full-scope one is taken either way (nothing was written since, so it
     * is the same state) and the old one removed in the same write -- by
     * its name, which is this split's: a crash after the manifest write
     * and before the journal recorded its id leaves one the journal does
     * not know (FullFlush.mid). */
    shale_checkpoint cp;
    rc = shale_flush_checkpoint(r->db, 0, name, name, flush_barrier, r, &cp);
    if (rc)
        return rc;
    failpoint("FullFlush.mid");
    if (cp.replay_after_wal_id != cp.next_wal_sst_id - 1)
        return shale_error_set(SHALE_CONFLICT,
                               "full flush left a WAL gap (replay_after_wal_id %llu, "
                               "next_wal_sst_id %llu): a write raced the split",
                               (unsigned long long)cp.replay_after_wal_id,
                               (unsigned long long)cp.next_wal_sst_id);
    res->has_checkpoint = true;
    snprintf(res->checkpoint_id, sizeof res->checkpoint_id, "%s", cp.id);
    res->replay_after_wal_id = cp.replay_after_wal_id;
    res->next_wal_sst_id = cp.next_wal_sst_id;
    return SHALE_OK;
}

/* The wipe's deletes, on up to WIPE_THREADS threads: each is one request
 * (a round trip on S3, an unlink that frees the file's blocks on file://),
 * and they are independent, so they overlap.  The first failure stops the
 * rest; a redone wipe deletes what remains. */
#define WIPE_THREADS 8

typedef struct wipe_job {
    shale_objstore *w;
    const shale_objlist *l;
    size_t keep;                 /* index kept as the fence */
    size_t next;                 /* under mu */
    uint64_t deleted, bytes;     /* under mu */
    shale_status rc;             /* first failure, under mu */
    pthread_mutex_t mu;
    char msg[512];
} wipe_job;

static void *wipe_worker(void *arg)
{
    wipe_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->rc ? j->l->count : j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->l->count)
            return NULL;
        uint64_t id;
        if (i == j->keep || !shale_wal_key_parse(j->l->items[i].key, &id))
            continue;
        shale_status rc = shale_objstore_delete(j->w, j->l->items[i].key);
        pthread_mutex_lock(&j->mu);
        if (rc && !j->rc) {
            j->rc = rc;
            snprintf(j->msg, sizeof j->msg, "%s", shale_errmsg());
        }
        bool first = !rc && ++j->deleted == 1;
        if (!rc)
            j->bytes += j->l->items[i].size;
        pthread_mutex_unlock(&j->mu);
        if (first)
            failpoint("WipeLocalWAL.mid");
    }
}

void release_checkpoint(run *r)
{
    shale_options o = run_opts(r, parent_wal(r));
    if (*r->checkpoint_id) {
        shale_checkpoint_delete(parent_store(r), &o, r->checkpoint_id);
        return;
    }
    /* No id journalled.  A kill after FullFlush's manifest write and before
     * the journal recorded its id (FullFlush.mid) leaves a checkpoint only
     * its name ties to this split, and it never expires: find it by name.
     * A LIST and a GET on the parent, on an abort or refusal only. */
    char name[300];
    snprintf(name, sizeof name, "split:%s", r->name);
    shale_checkpoint *cps = NULL;
    size_t n = 0;
    if (shale_checkpoint_list(parent_store(r), &o, &cps, &n))
        return;   /* best effort, as the delete by id: the abort stands */
    for (size_t i = 0; i < n; i++)
        if (!strcmp(cps[i].name, name))
            shale_checkpoint_delete(parent_store(r), &o, cps[i].id);
    shale_free(cps);
}

/* The pre-flight beside Fence and FullFlush.  Its claims are side effects
 * on the child stores, so they need a journal record that is durable
 * before them: Fence's "Running" (journal version 1, written by the submit,
 * or this run's write of it), which preflight_early_start() follows.  That
 * record covers them because the claims are idempotent for this split (a
 * resumed run's own claim passes, preflight.h) and change nothing the
 * parent or a later step reads: a crash after a claim and before the
 * wipe resumes at Fence, FullFlush or WipeLocalWAL, and WipeLocalWAL's
 * pre-flight (the early one's result, or its own on a resume) claims
 * again before the point of no return.  What a split that ends short of
 * the wipe claimed is released (preflight_release_claims). */
typedef struct early_pf {
    const split_request *req;
    const shale_options *opts;
    pthread_t th;
    bool threaded, joined;
    shale_status rc;
    char msg[512];               /* the step's message on SHALE_OK */
    char err[1024];              /* shale_errmsg() is per thread */
} early_pf;

/* Nothing to wait for: the journal record that covers the claims (Fence
 * Running) is durable already. */
static shale_status no_barrier(void *ctx)
{
    (void)ctx;
    return SHALE_OK;
}

static void *early_main(void *arg)
{
    early_pf *e = arg;
    /* In two waves as WipeLocalWAL's own: the checks (reads) beside the
     * probe's first creates, then the claims beside its second -- no
     * emptiness LIST (preflight_children() without a barrier would make
     * one per child). */
    e->rc = preflight_children_after(e->req, e->opts, e->msg, sizeof e->msg, no_barrier, NULL);
    if (e->rc)
        snprintf(e->err, sizeof e->err, "%s", shale_errmsg());
    else   /* a kill here: claimed, not wiped (agent_kill_matrix.sh) */
        failpoint("Preflight.claimed");
    return NULL;
}

void preflight_early_start(run *r)
{
    if (r->early)
        return;
    early_pf *e = calloc(1, sizeof *e);
    if (!e)
        return;   /* do_wipe runs the pre-flight itself */
    e->req = r->req;
    e->opts = &r->sp->o.db;
    if (pthread_create(&e->th, NULL, early_main, e)) {
        free(e);
        return;
    }
    e->threaded = true;
    r->early = e;
}

static void early_join(early_pf *e)
{
    if (e->threaded && !e->joined)
        pthread_join(e->th, NULL);
    e->joined = true;
}

void preflight_early_free(run *r)
{
    if (!r->early)
        return;
    early_join(r->early);
    free(r->early);
    r->early = NULL;
}

void preflight_release_claims(run *r)
{
    preflight_early_free(r);
    preflight_release(r->req, &r->sp->o.db);
}

typedef struct wipe_gate {
    run *r;
    bool journal_failed;
} wipe_gate;

static shale_status wipe_barrier(void *ctx)
{
    wipe_gate *g = ctx;
    shale_status rc = run_barrier(g->r);
    g->journal_failed = rc != SHALE_OK;
    return rc ? shale_error_prefix(rc, "journalling WipeLocalWAL Running") : SHALE_OK;
}

shale_status do_wipe(run *r, step_result *res)
{
    char *msg = res->message;
    size_t msglen = sizeof res->message;
    /* Pre-flight (preflight.h): every child store claimed before anything
     * is deleted; a refusal fails the split short of the point of no return. */
    /* Started beside Fence (preflight_early_start): only its join is left,
     * and the step's "Running", in flight beside the listing below, is
     * joined before the first delete (wipe_barrier).  Else (a resume at
     * this step, a transient early failure) the checks go beside that
     * journal write and the claims after it; a failed journal write is
     * not a refusal: the step is retried. */
    wipe_gate g = {r, false};
    shale_status prc = SHALE_OK;
    if (r->early) {
        early_join(r->early);
        prc = r->early->rc;
        /* A transient failure is made again here, as the step's own
         * pre-flight would be on its retries (step_loop): the early
         * result is dropped and this attempt runs it. */
        if (prc == SHALE_IO || prc == SHALE_RETRYABLE || prc == SHALE_TIMEOUT)
            preflight_early_free(r);
    }
    bool early = r->early != NULL;
    if (early) {
        if (prc)
            shale_error_set(prc, "%s", r->early->err);
        else
            snprintf(msg, msglen, "%s", r->early->msg);
    } else {
        prc = preflight_children_after(r->req, &r->sp->o.db, msg, msglen, wipe_barrier, &g);
        if (g.journal_failed)
            return prc;
    }
    if ((r->refused = prc != SHALE_OK))
        return shale_error_prefix(prc, "refused before the WAL wipe, nothing deleted");
    const char *wal = parent_wal(r);
    if (!wal || !strcmp(wal, parent_store(r))) {
        snprintf(msg, msglen, "WAL is in the main store: no local WAL to wipe");
        return SHALE_OK;   /* nothing deleted: step_loop joins "Running" */
    }
    uint64_t replay_after = r->replay_after_wal_id;
    shale_objstore *w = NULL;
    shale_status rc = shale_objstore_open(wal, &r->sp->o.db.store, &w);
    if (rc)
        return rc;
    shale_objlist l;
    rc = shale_objstore_list_all(w, SHALE_WAL_DIR, &l);
    if (rc) {
        shale_objstore_close(w);
        return rc;
    }
    uint64_t deleted = 0, bytes = 0;
    size_t keep = l.count;   /* index of the newest WAL object, kept as a fence */
    for (size_t i = 0; i < l.count; i++) {
        uint64_t id;
        if (!shale_wal_key_parse(l.items[i].key, &id))
            continue;
        if (id > replay_after) {
            rc = shale_error_set(SHALE_CONFLICT,
                                 "refusing to wipe the local WAL: %s/%s is above "
                                 "replay_after_wal_id %llu, so its data is not in L0 (data loss)",
                                 wal, l.items[i].key, (unsigned long long)replay_after);
            goto out;
        }
        keep = i;
    }
    /* The first delete is the step's first side effect on this path. */
    if (early && (rc = wipe_barrier(&g)))
        goto out;
    wipe_job wj = {w, &l, keep, 0, 0, 0, SHALE_OK, PTHREAD_MUTEX_INITIALIZER, ""};
    pthread_t th[WIPE_THREADS];
    size_t started = 0;
    while (started + 1 < WIPE_THREADS && started * 16 < l.count &&
           !pthread_create(&th[started], NULL, wipe_worker, &wj))
        started++;
    wipe_worker(&wj);
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&wj.mu);
    deleted = wj.deleted;
    bytes = wj.bytes;
    if ((rc = wj.rc)) {
        shale_error_set(rc, "%s", wj.msg);
        goto out;
    }
    snprintf(msg, msglen, "deleted %llu WAL objects (%llu bytes) at or below %llu; kept the "
                          "newest as a fence", (unsigned long long)deleted,
             (unsigned long long)bytes, (unsigned long long)replay_after);
out:
    shale_objlist_free(&l);
    shale_objstore_close(w);
    return rc;
}

static shale_status clone_barrier(void *ctx)
{
    shale_status rc = run_barrier(ctx);
    return rc ? shale_error_prefix(rc, "journalling Clone Running") : SHALE_OK;
}

/* Every child at once (shale_clone_many: a thread per child, the parent's
 * manifest read once, one parent write pinning every child).  A kill test
 * that arms Clone.mid gets the first child cloned alone, then the kill,
 * so a resume finds one child done and the others not started. */
typedef struct unprobe_job {
    const split_request *req;
    const shale_options *opts;
} unprobe_job;

static void *unprobe_run(void *arg)
{
    unprobe_job *u = arg;
    preflight_unprobe(u->req, u->opts);
    return NULL;
}

shale_status do_clone(run *r, step_result *res)
{
    splitter *sp = r->sp;
    const split_request *q = r->req;
    if (!*r->checkpoint_id)
        return shale_error_set(SHALE_CORRUPT,
                               "journal of %s has no checkpointId at Clone", r->name);
    size_t n = q->child_count;
    shale_clone_spec *specs = calloc(n ? n : 1, sizeof *specs);
    shale_clone_result *crs = calloc(n ? n : 1, sizeof *crs);
    if (!specs || !crs) {
        free(specs);
        free(crs);
        return AGENT_OOM();
    }
    for (size_t i = 0; i < n; i++) {
        const split_child *c = &q->children[i];
        shale_clone_spec *s = &specs[i];
        s->parent_uri = parent_store(r);
        s->parent_wal_uri = parent_wal(r);
        s->parent_checkpoint_id = r->checkpoint_id;
        s->child_uri = c->store;
        s->child_wal_uri = c->wal_store;
        s->range_start = c->start;
        s->range_start_len = c->start_len;
        s->range_end = c->end;
        s->range_end_len = c->end_len;
    }
    /* The parent's version by id: the split's writer (opened at Fence, the
     * parent's only writer since) knows its current one, which holds the
     * checkpoint FullFlush made; a resumed run without the writer lists. */
    shale_db_info info;
    uint64_t hint = r->db && !shale_db_info_get(r->db, &info) ? info.manifest_id : 0;
    for (size_t i = 0; i < n; i++)
        specs[i].parent_manifest_id = hint;
    /* The children's stores were proven to honour conditional create by
     * WipeLocalWAL's pre-flight (preflight.h), on the same URIs with the
     * same store options, before the point of no return; that step is
     * Done before this one runs, so the clone does not probe again (its
     * probe is what unsafe_allow_unconditional_store skips, nothing else
     * in a clone reads it).  The pre-flight's probe objects are deleted
     * beside the clone's first phase. */
    shale_options copts = run_opts(r, sp->o.db.wal_store_uri);
    copts.unsafe_allow_unconditional_store = true;
    unprobe_job uj = {q, &sp->o.db};
    pthread_t uth;
    bool unprobing = !pthread_create(&uth, NULL, unprobe_run, &uj);
    const char *fps = getenv("SHALE_FAILPOINTS");
    size_t first = 0, failed = 0;
    shale_status rc = SHALE_OK;
    /* The clone's first phase (reads and probes) runs beside the journal
     * write of Clone "Running"; it waits for that write before its first
     * write (the barrier).  Held (shale_admin.h shale_clone_many_held):
     * the split's checkpoint stays until Complete and a failed or killed
     * Clone is run again, so each child's version 1 is written initialised
     * beside the parent's pin and the identities -- Clone in two round
     * trips (its reads beside the journal write, then its writes), not
     * three. */
    if (fps && strstr(fps, "Clone.mid") && n > 0) {
        rc = shale_clone_many_held(specs, 1, &copts, crs, &failed, clone_barrier, r);
        first = 1;
        if (!rc)
            failpoint("Clone.mid");
    }
    if (!rc) {
        rc = shale_clone_many_held(specs + first, n - first, &copts, crs + first, &failed,
                                      clone_barrier, r);
        failed += first;
    }
    if (!rc)
        rc = run_barrier(r);   /* no child to clone: still durable before Done */
    if (rc) {
        const split_child *c = &q->children[failed < n ? failed : 0];
        rc = shale_error_prefix(rc, "cloning child %s into %s", c->name, c->store);
    }
    if (unprobing)
        pthread_join(uth, NULL);
    else
        unprobe_run(&uj);
    for (size_t i = 0; i < n && !rc; i++) {
        res->objects_copied += crs[i].wal_ssts_copied;
        res->bytes_copied += crs[i].bytes_copied;
        step_child_result *k = &res->children[i];
        k->cloned = true;
        k->manifest_id = crs[i].manifest_id;
        k->ssts_referenced = crs[i].ssts_referenced;
        k->wal_ssts_copied = crs[i].wal_ssts_copied;
    }
    free(specs);
    free(crs);
    return rc;
}

shale_status complete_release_checkpoint(const splitter *sp, const char *checkpoint_id,
                                         const shale_manifest_view *latest)
{
    /* The children pin what they reference; the split's own checkpoint is
     * no longer needed.  Redone after a crash: a checkpoint already gone is
     * fine. */
    if (!checkpoint_id || !*checkpoint_id)
        return SHALE_OK;
    /* On the parent's latest version as Verify read it, when this process
     * ran Verify (one conditional write instead of a LIST, a GET and the
     * write): if anything wrote the parent since, the write finds its
     * version taken and the removal is applied to the version read then
     * (shale_checkpoint_delete_on). */
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(sp->store_uri, &sp->o.db.store, &s);
    if (!rc)
        rc = shale_checkpoint_delete_on(s, checkpoint_id, latest);
    shale_objstore_close(s);
    if (rc)
        return shale_error_prefix(rc, "releasing the split's checkpoint %s", checkpoint_id);
    failpoint("Complete.mid");
    return SHALE_OK;
}

/* The dry-run plan: what each child would reference and copy. */
shale_status do_plan(run *r, step_result *res)
{
    splitter *sp = r->sp;
    const split_request *q = r->req;
    shale_objstore *s = NULL;
    shale_manifest_view *m = NULL;
    shale_reader *pr = NULL;
    shale_options po = run_opts(r, parent_wal(r));
    split_plan *plan = calloc(1, sizeof *plan);
    if (!plan || !(plan->children = calloc(q->child_count, sizeof *plan->children))) {
        free(plan);
        return AGENT_OOM();
    }
    shale_status rc = shale_objstore_open(parent_store(r), &sp->o.db.store, &s);
    if (!rc)
        rc = shale_manifest_view_load(s, 0, &m);
    if (!rc)
        rc = shale_reader_open(parent_store(r), &po, NULL, &pr);
    for (size_t i = 0; i < q->child_count && !rc; i++) {
        const split_child *c = &q->children[i];
        split_plan_child *k = &plan->children[i];
        plan->child_count++;
        if (!(k->name = agent_strdup(c->name)) || !(k->store = agent_strdup(c->store))) {
            rc = AGENT_OOM();
            break;
        }
        for (size_t l = 0; l <= m->run_count; l++) {
            const shale_manifest_sst *h = l == 0 ? m->l0 : m->runs[l - 1].ssts;
            size_t n = l == 0 ? m->l0_count : m->runs[l - 1].count;
            for (size_t x = 0; x < n; x++) {
                if (!shale_manifest_sst_overlaps(&h[x], c->start, c->start_len, c->end, c->end_len))
                    continue;
                k->ssts++;
                k->bytes += h[x].size;
            }
        }
        rc = shale_reader_count(pr, c->start, c->start_len, c->end, c->end_len,
                                &k->expected_keys);
    }
    if (!rc) {
        /* Before the full flush the WAL gap is what a Durable clone would
         * copy; the split's full flush makes it zero. */
        plan->wal_ssts_in_gap = m->next_wal_sst_id - 1 - m->replay_after_wal_id;
        plan->parent_manifest_id = m->id;
        res->plan = plan;
    } else {
        split_plan_free(plan);
    }
    shale_reader_close(pr);
    shale_manifest_view_free(m);
    shale_objstore_close(s);
    return rc;
}
