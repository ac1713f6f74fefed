/*
 * verify.c -- the Verify step of a split (docs/agent.md "Verify").
 *
 * Two modes, chosen per request (`verify:`) or by the agent's default
 * (`verify.mode`):
 *
 *   full        every key and value of each child against the parent's
 *               range at the split's checkpoint.  Walks the data twice,
 *               reads it from the store once (the readers share a block
 *               cache); its time grows with the shard, its memory does
 *               not (verify_full.c walks in pieces).
 *   references  what makes a child equal its range by construction,
 *               checked without reading the data: the child's manifest
 *               (initialized, the requested range, made from this
 *               checkpoint, nothing to replay, no WAL written since),
 *               its SST references (exactly the parent's SSTs at the
 *               checkpoint that overlap its range, level by level, each
 *               object present with its recorded size), its pins in every
 *               store it references, and reads through the child's own
 *               read path: a window of keys and values at its range start
 *               and at sample points inside every referenced SST, each
 *               compared with the parent's.  Its cost grows with the
 *               number of SSTs, not with their bytes.
 *
 * Both are read-only and may be redone after a crash.  A mismatch is
 * SHALE_CORRUPT and sets step_result.mismatch (the splitter fails the split
 * as VerifyFailed); anything else, a read error above all, is an ordinary
 * step error that the splitter retries: a child that could not be read has
 * not been shown to differ.
 */
#include "verify.h"
#include "shale_admin.h"
#include "verify_open.h"
#include "verify_int.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* verify.h */
void verify_key_text(const void *k, size_t kl, char *out, size_t outlen)
{
    char *e = shale_key_escape(k, kl > 64 ? 64 : kl);
    snprintf(out, outlen, "'%s'%s", e ? e : "?", kl > 64 ? "..." : "");
    free(e);
}

typedef struct child_scan {
    shale_reader *r;
    const void *from, *to;
    size_t from_len, to_len;
    shale_iter *it;
    shale_status rc;
    char msg[512];                   /* shale_errmsg() is per thread */
} child_scan;

static void *child_scan_run(void *arg)
{
    child_scan *c = arg;
    if ((c->rc = shale_reader_scan(c->r, c->from, c->from_len, c->to, c->to_len, &c->it)))
        snprintf(c->msg, sizeof c->msg, "%s", shale_errmsg());
    return NULL;
}

/* verify.h.  The child's scan is bounded by `to` only: with to NULL, a
 * child serving a key beyond its range fails here. */
shale_status verify_compare(shale_reader *parent, shale_reader *child, const split_child *c,
                            const void *from, size_t from_len, const void *to, size_t to_len,
                            uint64_t limit, bool concurrent, uint64_t *count)
{
    const void *ps = c->start, *pe = c->end;
    size_t psl = c->start_len, pel = c->end_len;
    if (from && (!ps || key_cmp(from, from_len, ps, psl) > 0)) {
        ps = from;
        psl = from_len;
    }
    if (to && (!pe || key_cmp(to, to_len, pe, pel) < 0)) {
        pe = to;
        pel = to_len;
    }
    shale_iter *pi = NULL, *ci = NULL;
    /* concurrent: the two scans open their SSTs (each a few round trips on
     * S3: footer, index, first block) at the same time, the child's on a
     * thread of its own -- for the first window in an SST, whose opens
     * are the cost; later windows find the SSTs open and the child finds
     * the parent's blocks in the shared cache if it reads after it. */
    child_scan cs = {.r = child, .from = from, .from_len = from ? from_len : 0, .to = to,
                     .to_len = to ? to_len : 0, .rc = SHALE_OK};
    pthread_t th;
    bool threaded = concurrent && !pthread_create(&th, NULL, child_scan_run, &cs);
    shale_status rc = shale_reader_scan(parent, ps, psl, pe, pel, &pi);
    if (threaded)
        pthread_join(th, NULL);
    else
        child_scan_run(&cs);
    ci = cs.it;
    if (!rc && cs.rc)
        rc = shale_error_set(cs.rc, "%s", cs.msg);
    uint64_t n = 0;
    char kt[200];
    while (!rc && (!limit || n < limit)) {
        bool pv = shale_iter_valid(pi), cv = shale_iter_valid(ci);
        /* An iterator that stopped on an error has not reached the end of
         * its data: what follows is a read error, never a missing key. */
        if ((!pv && (rc = shale_iter_status(pi))) || (!cv && (rc = shale_iter_status(ci))))
            break;
        if (!pv && !cv)
            break;
        size_t pkl = 0, ckl = 0, pvl = 0, cvl = 0;
        const void *pk = pv ? shale_iter_key(pi, &pkl) : NULL;
        const void *ck = cv ? shale_iter_key(ci, &ckl) : NULL;
        int cmp = !pv ? 1 : !cv ? -1 : key_cmp(pk, pkl, ck, ckl);
        if (cmp < 0) {
            verify_key_text(pk, pkl, kt, sizeof kt);
            rc = shale_error_set(SHALE_CORRUPT,
                                 "verify: child %s lacks key %s of its range (after "
                                 "%llu equal keys)", c->name, kt, (unsigned long long)n);
        } else if (cmp > 0) {
            verify_key_text(ck, ckl, kt, sizeof kt);
            rc = shale_error_set(SHALE_CORRUPT, "verify: child %s holds key %s, which the parent "
                                                "does not have in the child's range (after %llu "
                                                "equal keys)", c->name, kt, (unsigned long long)n);
        } else {
            const void *pval = shale_iter_value(pi, &pvl), *cval = shale_iter_value(ci, &cvl);
            if (pvl != cvl || memcmp(pval, cval, pvl)) {
                verify_key_text(pk, pkl, kt, sizeof kt);
                rc = shale_error_set(SHALE_CORRUPT,
                                     "verify: child %s returns a different value for "
                                     "key %s (%zu bytes; the parent %zu)", c->name, kt,
                                     cvl, pvl);
            }
        }
        if (rc)
            break;
        n++;
        shale_iter_next(pi);
        shale_iter_next(ci);
    }
    /* A read error names the child it was found for.  A damaged block
     * (SHALE_CORRUPT: its checksum fails) is a finding; any other error
     * (I/O, timeout) is retried by the splitter. */
    shale_status pst = shale_iter_status(pi), cst = shale_iter_status(ci);
    if (pst && (!rc || rc == pst))
        rc = shale_error_prefix(pst, "verify: reading the parent's range of child %s", c->name);
    else if (cst && (!rc || rc == cst))
        rc = shale_error_prefix(cst, "verify: reading child %s", c->name);
    shale_iter_free(pi);
    shale_iter_free(ci);
    *count = n;
    return rc;
}

/* ---- both modes ----------------------------------------------------------- */

/* Two phases, each on a pool of up to VERIFY_THREADS threads (the work is
 * round trips to the store, not CPU: the pool is sized for the store's
 * parallelism, not the cores).  Phase 1, per child: open its reader and
 * check its manifest (references) or that it is initialized (full, whose
 * walk then runs in verify_full.c).  Phase 2 (references), per task: every
 * HEAD and every sampled window of every child at once, so the critical
 * path is one child's manifest checks and one window, whatever the number
 * of children and SSTs. */
#define VERIFY_THREADS 64

typedef struct verify_job {
    const verify_ctx *v;
    verify_ctx *vm;                  /* the same, written by phase 1 only */
    int phase;
    size_t n;                        /* items of this phase */
    _Atomic size_t next;             /* next item to take */
    _Atomic bool failed;             /* phase 1: any failure; phase 2: a mismatch */
    child_result *res;               /* per child */
    shale_reader **readers;          /* per child, opened in phase 1 */
    shale_manifest_view **cms;       /* per child (references), phase 1 */
    shale_objlist *wals;             /* per child (references): its WAL store's
                                        listing, made in phase 1 */
    shale_status *wal_rcs;           /* per child: that listing's answer */
    const vtask *tasks;              /* phase 2 */
    _Atomic bool *opened;            /* phase 2, per task: a first window done */
    _Atomic size_t *firsts_left;     /* phase 2, per child: first windows not done */
    pthread_mutex_t wait_mu;         /* with wait_cv: a later window waits for */
    pthread_cond_t wait_cv;          /*   its SST's first window */
    size_t *order;                   /* phase 2: indexes into tasks */
    shale_status *rcs;               /* per item */
    char (*msgs)[512];               /* per item: shale_errmsg() is per thread */
} verify_job;

static shale_status load_parent_versions(verify_ctx *v);

static shale_status open_child(verify_job *w, size_t i)
{
    const verify_ctx *v = w->v;
    const split_child *c = &v->r->req->children[i];
    shale_options co = db_opts(v->r->sp, c->wal_store);
    co.block_cache = v->cache;
    shale_reader *child = NULL;
    shale_status rc = shale_reader_open(c->store, &co, NULL, &child);
    if (rc)
        return shale_error_prefix(rc, "verify: opening child %s", c->name);
    w->readers[i] = child;
    shale_db_info info;
    rc = shale_reader_info(child, &info);
    if (!rc && !info.initialized)
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s is not initialized", c->name);
    if (!rc && v->mode == SPLIT_VERIFY_REFERENCES)
        rc = refs_child_manifest(v, c, child, &w->cms[i]);
    return rc;
}

/* Phase 1, item i: 0 opens the parent's reader at the checkpoint, 1 loads
 * the parent's versions, then 2+k opens child k's reader and (references)
 * 2+n+k lists child k's WAL store.  All independent: the phase costs the
 * slowest of them. */
static shale_status verify_open(verify_job *w, size_t i)
{
    verify_ctx *v = w->vm;
    if (i == 0) {
        shale_options po = db_opts(v->r->sp, parent_wal(v->r));
        po.block_cache = v->cache;
        shale_status rc = shale_reader_open(parent_store(v->r), &po, v->cp, &v->parent);
        return rc ? shale_error_prefix(rc, "verify: opening the parent at checkpoint %s", v->cp)
                  : SHALE_OK;
    }
    /* The full mode loads them too (beside its readers' opens): Complete
     * writes on the latest (do_complete). */
    if (i == 1)
        return load_parent_versions(v);
    size_t n = v->r->req->child_count;
    if (i >= 2 + n) {
        /* The child's WAL listing, beside its reader's open (it needs no
         * manifest to be made; it is judged against the manifest after). */
        const split_child *c = &v->r->req->children[i - 2 - n];
        shale_objstore *ws = NULL;
        shale_status rc = shale_objstore_open(refs_request_wal(c), &v->r->sp->o.db.store, &ws);
        if (!rc)
            rc = shale_objstore_list_all(ws, SHALE_WAL_DIR, &w->wals[i - 2 - n]);
        shale_objstore_close(ws);
        w->wal_rcs[i - 2 - n] = rc;
        return SHALE_OK;   /* a failed listing is made again by check_child_wal */
    }
    return open_child(w, i - 2);
}

/* A later window waits until its SST's first window has opened the SST
 * in the parent's reader and the child's (the range-start window: every
 * first window of its child), so it finds the SST open instead of opening
 * it a second time; it does not wait for the other SSTs' windows.  The
 * first windows are queued before every later one, so what is waited for
 * is already running. */
static void wait_opened(verify_job *w, const vtask *t)
{
    /* Still waited for when open_all() opened every SST: the first window
     * then only reads blocks, and a later one finds the blocks it shares
     * with it in the cache.  Not waiting saved a round trip or two at most
     * and read about 40 % more blocks (two windows that miss one block
     * both read it: docs/benchmarks.md). */
    pthread_mutex_lock(&w->wait_mu);
    while (!atomic_load(&w->failed) &&
           (t->opener >= 0 ? !atomic_load(&w->opened[t->opener]) ||
                                 (t->opener2 >= 0 && !atomic_load(&w->opened[t->opener2]))
                           : atomic_load(&w->firsts_left[t->child]) > 0))
        pthread_cond_wait(&w->wait_cv, &w->wait_mu);
    pthread_mutex_unlock(&w->wait_mu);
}

static void mark_opened(verify_job *w, size_t ti, const vtask *t)
{
    pthread_mutex_lock(&w->wait_mu);
    atomic_store(&w->opened[ti], true);
    atomic_fetch_sub(&w->firsts_left[t->child], 1);
    pthread_cond_broadcast(&w->wait_cv);
    pthread_mutex_unlock(&w->wait_mu);
}

static shale_status verify_task(verify_job *w, size_t i)
{
    size_t ti = w->order[i];
    const vtask *t = &w->tasks[ti];
    const split_child *c = &w->v->r->req->children[t->child];
    if (t->head)
        return refs_check_object(w->v, c, w->cms[t->child], t->head);
    if (!t->first)
        wait_opened(w, t);
    uint64_t n = 0;
    shale_status rc = verify_compare(w->v->parent, w->readers[t->child], c,
                                     t->at_mid ? t->mid : t->from, t->from_len, NULL, 0, WINDOW,
                                     t->first || !t->from, &n);
    if (t->first)
        mark_opened(w, ti, t);   /* also on failure: nobody waits forever */
    return rc;
}

static void *verify_worker(void *arg)
{
    verify_job *w = arg;
    for (size_t i; !atomic_load(&w->failed) && (i = atomic_fetch_add(&w->next, 1)) < w->n;) {
        w->rcs[i] = w->phase == 1 ? verify_open(w, i) : verify_task(w, i);
        if (w->rcs[i]) {
            snprintf(w->msgs[i], sizeof w->msgs[i], "%s", shale_errmsg());
            /* Phase 2 goes on past a read error, so that a mismatch found
             * by another task (a missing object's HEAD) is reported as
             * one, never hidden behind a retryable error. */
            if (w->phase != 2 || w->rcs[i] == SHALE_CORRUPT) {
                atomic_store(&w->failed, true);
                if (w->phase == 2) {   /* waiting windows give up */
                    pthread_mutex_lock(&w->wait_mu);
                    pthread_cond_broadcast(&w->wait_cv);
                    pthread_mutex_unlock(&w->wait_mu);
                }
            }
        }
    }
    return NULL;
}

/* Runs phase `phase` over n items; the result: a mismatch first, then
 * the first other error. */
static shale_status verify_phase(verify_job *w, int phase, size_t n)
{
    w->phase = phase;
    w->n = n;
    atomic_store(&w->next, 0);
    free(w->rcs);
    free(w->msgs);
    w->rcs = calloc(n ? n : 1, sizeof *w->rcs);
    w->msgs = calloc(n ? n : 1, sizeof *w->msgs);
    if (!w->rcs || !w->msgs)
        return AGENT_OOM();
    size_t nthreads = n < VERIFY_THREADS ? n : VERIFY_THREADS;
    pthread_t th[VERIFY_THREADS];
    size_t started = 0;
    while (started + 1 < nthreads && !pthread_create(&th[started], NULL, verify_worker, w))
        started++;
    verify_worker(w);   /* this thread works too */
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (size_t i = 0; i < n; i++)
        if (w->rcs[i] == SHALE_CORRUPT)
            return shale_error_set(w->rcs[i], "%s", w->msgs[i]);
    for (size_t i = 0; i < n; i++)
        if (w->rcs[i])
            return shale_error_set(w->rcs[i], "%s", w->msgs[i]);
    return SHALE_OK;
}

/* The parent's versions Verify compares against: the one the split's
 * checkpoint pins, and the latest (which holds the children's pins). */
static shale_status load_parent_versions(verify_ctx *v)
{
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(parent_store(v->r), &v->r->sp->o.db.store, &s);
    if (!rc)
        rc = shale_manifest_view_load(s, 0, &v->latest);
    const shale_manifest_checkpoint *cp = rc ? NULL : shale_manifest_view_checkpoint(v->latest,
                                                                                     v->cp);
    if (!rc && !cp)
        rc = shale_error_set(SHALE_NOT_FOUND, "verify: the parent has no checkpoint %s", v->cp);
    if (!rc)
        rc = shale_manifest_view_load(s, cp->manifest_id, &v->pinned);
    shale_objstore_close(s);
    return rc;
}

/* Every SST each reader will touch opened at once, before the windows
 * (verify_open.h). */
static shale_status open_all(verify_job *w, size_t n)
{
    return verify_open_ssts(w->v->parent, w->v->pinned, w->readers,
                            (const shale_manifest_view *const *)w->cms,
                            n);
}

/* The children's ranges were
 * validated to cover the parent's range exactly, so children that each
 * equal their range hold the parent's keys, each once. */
shale_status do_verify(run *r, step_result *res_out)
{
    splitter *sp = r->sp;
    const split_request *q = r->req;
    const char *cp = r->checkpoint_id;
    char *msg = res_out->message;
    size_t msglen = sizeof res_out->message;
    split_verify mode = q->verify != SPLIT_VERIFY_DEFAULT ? q->verify : sp->o.verify;
    if (mode == SPLIT_VERIFY_DEFAULT)
        mode = SPLIT_VERIFY_FULL;
    res_out->verify_mode = mode;
    verify_ctx v = {r, mode, cp, NULL, NULL, NULL, NULL};
    /* The children's SSTs are the parent's own objects, and a child is
     * walked beside the parent's range: with one cache the child finds
     * each block the parent has just read, decoded (no second read, no
     * second decompression). */
    shale_status rc = shale_cache_new(sp->o.verify_cache_bytes ? sp->o.verify_cache_bytes
                                                               : VERIFY_CACHE_BYTES,
                                      &v.cache);
    if (rc)
        return rc;
    size_t n = q->child_count;
    verify_job w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.wait_mu, NULL);
    pthread_cond_init(&w.wait_cv, NULL);
    w.v = w.vm = &v;
    child_result *res = w.res = calloc(n ? n : 1, sizeof *res);
    w.readers = calloc(n ? n : 1, sizeof *w.readers);
    w.cms = calloc(n ? n : 1, sizeof *w.cms);
    vtask *tasks = NULL;
    size_t ntasks = 0, cap = 0;
    if (!res || !w.readers || !w.cms) {
        rc = AGENT_OOM();
        goto out;
    }
    bool refs = mode == SPLIT_VERIFY_REFERENCES;
    if (refs) {
        w.wals = calloc(n ? n : 1, sizeof *w.wals);
        w.wal_rcs = calloc(n ? n : 1, sizeof *w.wal_rcs);
        if (!w.wals || !w.wal_rcs) {
            rc = AGENT_OOM();
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            w.wal_rcs[i] = SHALE_IO;   /* not listed (yet) */
    }
    rc = verify_phase(&w, 1, 2 + (refs ? 2 * n : n));
    for (size_t i = 0; !rc && refs && i < n; i++) {
        const split_child *c = &q->children[i];
        const char *cw = w.cms[i]->wal_store_uri ? w.cms[i]->wal_store_uri : c->store;
        bool same = !w.wal_rcs[i] && !strcmp(cw, refs_request_wal(c));
        rc = refs_check_child_wal(&v, c, w.cms[i], same ? &w.wals[i] : NULL);
    }
    for (size_t i = 0; !rc && mode == SPLIT_VERIFY_REFERENCES && i < n; i++)
        rc = refs_check_manifest(&v, &q->children[i], w.cms[i], &res[i]);
    size_t pieces = 0, walkers = 0;
    if (!rc && mode == SPLIT_VERIFY_FULL) {
        /* In pieces with readers of their own (verify_full.c): the phase 1
         * readers stay as they are, holding no SST. */
        shale_manifest_view *pm = NULL;
        uint64_t *keys = calloc(n ? n : 1, sizeof *keys);
        rc = keys ? shale_reader_manifest_view(v.parent, &pm) : AGENT_OOM();
        if (!rc)
            rc = verify_full_walk(r, v.cache, pm, keys, &pieces, &walkers);
        for (size_t i = 0; !rc && i < n; i++)
            res[i].keys = keys[i];
        shale_manifest_view_free(pm);
        free(keys);
    }
    for (size_t i = 0; !rc && mode == SPLIT_VERIFY_REFERENCES && i < n; i++)
        rc = refs_add_tasks(i, w.cms[i], &tasks, &ntasks, &cap);
    if (!rc && mode == SPLIT_VERIFY_REFERENCES) {
        /* Phase 2: the HEADs and each SST's first window, which open every
         * SST once in the parent's reader and the child's, queued first;
         * then every other window, each of which waits for its own SST's
         * first window (concurrent first opens of one SST would each read
         * its index and filter) but not for the other SSTs' (a round
         * barrier made every later window wait for the slowest open). */
        w.tasks = tasks;
        w.order = calloc(ntasks ? ntasks : 1, sizeof *w.order);
        w.opened = calloc(ntasks ? ntasks : 1, sizeof *w.opened);
        w.firsts_left = calloc(n ? n : 1, sizeof *w.firsts_left);
        size_t k = 0;
        if (!w.order || !w.opened || !w.firsts_left)
            rc = AGENT_OOM();
        for (size_t i = 0; !rc && i < ntasks; i++)
            if (tasks[i].first)
                w.firsts_left[tasks[i].child]++;
        for (size_t i = 0; !rc && i < ntasks; i++)
            if (tasks[i].head || tasks[i].first)
                w.order[k++] = i;
        for (size_t i = 0; !rc && i < ntasks; i++)
            if (!tasks[i].head && !tasks[i].first)
                w.order[k++] = i;
        /* Every SST opened at once first (open_all); a failure there is
         * not a verdict: the windows open what is left themselves. */
        if (!rc)
            (void)open_all(&w, n);
        if (!rc)
            rc = verify_phase(&w, 2, ntasks);
        free(w.order);
        free(w.opened);
        free(w.firsts_left);
        for (size_t i = 0; i < ntasks; i++)
            if (!tasks[i].head)
                res[tasks[i].child].windows++;
    }
    res_out->mismatch = rc == SHALE_CORRUPT;
    uint64_t keys = 0, ssts = 0, windows = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        keys += res[i].keys;
        ssts += res[i].ssts;
        windows += res[i].windows;
        if (mode == SPLIT_VERIFY_FULL) {
            res_out->children[i].verified = true;
            res_out->children[i].key_count = res[i].keys;
        }
    }
    if (!rc && mode == SPLIT_VERIFY_FULL)
        snprintf(msg, msglen, "%llu keys in %zu children equal the parent's, key by key "
                              "(%zu pieces, %zu at a time)", (unsigned long long)keys, n,
                 pieces, walkers);
    else if (!rc)
        snprintf(msg, msglen, "%zu children reference exactly the parent's %llu SSTs in their "
                              "ranges, all present and pinned; %llu sampled windows of up to "
                              "%d keys read back equal", n, (unsigned long long)ssts,
                 (unsigned long long)windows, WINDOW);
out:
    for (size_t i = 0; i < n; i++) {
        if (w.readers)
            shale_reader_close(w.readers[i]);
        if (w.cms)
            shale_manifest_view_free(w.cms[i]);
    }
    free(w.readers);
    free(w.cms);
    for (size_t i = 0; w.wals && w.wal_rcs && i < n; i++)
        if (!w.wal_rcs[i])
            shale_objlist_free(&w.wals[i]);
    free(w.wals);
    free(w.wal_rcs);
    free(w.rcs);
    free(w.msgs);
    free(tasks);
    free(res);
    shale_manifest_view_free(v.pinned);
    /* Complete releases the checkpoint on this version (do_complete). */
    shale_manifest_view_free(r->parent_latest);
    r->parent_latest = rc ? NULL : v.latest;
    if (rc)
        shale_manifest_view_free(v.latest);
    shale_reader_close(v.parent);
    shale_cache_free(v.cache);   /* after every reader that uses it */
    pthread_mutex_destroy(&w.wait_mu);
    pthread_cond_destroy(&w.wait_cv);
    return rc;
}
