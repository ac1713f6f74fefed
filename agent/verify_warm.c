/*
 * verify_warm.c -- Verify's reads of the parent made ahead (verify_warm.h).
 */
#include "verify_warm.h"
#include "verify.h"
#include "verify_int.h"
#include "workpool.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct verify_warm {
    verify_ctx v;                /* r, the checkpoint, the parent reader, the cache */
    char cp[40];
    uint64_t at;                 /* the writer's version, read at the start */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool opened;                 /* v.parent is open (the thread's result) */
    bool open_done, done;        /* under mu: the open tried; the prefetches made */
    bool handed;                 /* v.parent and v.cache are Verify's now */
    /* The windows, for the pool's threads. */
    vtask *tasks;
    size_t ntasks;
    _Atomic size_t next;
};

/* The parent's pinned SSTs that overlap child c's range: the child's own
 * references once Clone has written it (Verify's refs_check_manifest
 * holds the child to exactly those).  The arrays are w's (freed by the
 * caller); the SST records are the pinned view's (borrowed). */
static shale_status child_view(const shale_manifest_view *pm, const split_child *c,
                               shale_manifest_view *out, shale_manifest_sst **l0,
                               shale_manifest_run **runs, shale_manifest_sst ***rs)
{
    memset(out, 0, sizeof *out);
    *l0 = calloc(pm->l0_count ? pm->l0_count : 1, sizeof **l0);
    *runs = calloc(pm->run_count ? pm->run_count : 1, sizeof **runs);
    *rs = calloc(pm->run_count ? pm->run_count : 1, sizeof **rs);
    if (!*l0 || !*runs || !*rs)
        return AGENT_OOM();
    size_t n = 0;
    for (size_t k = 0; k < pm->l0_count; k++)
        if (shale_manifest_sst_overlaps(&pm->l0[k], c->start, c->start_len, c->end,
                                        c->end_len))
            (*l0)[n++] = pm->l0[k];
    out->l0 = *l0;
    out->l0_count = n;
    size_t nr = 0;
    for (size_t r = 0; r < pm->run_count; r++) {
        const shale_manifest_run *pr = &pm->runs[r];
        shale_manifest_sst *ssts = calloc(pr->count ? pr->count : 1, sizeof *ssts);
        if (!ssts)
            return AGENT_OOM();
        (*rs)[r] = ssts;
        size_t m = 0;
        for (size_t k = 0; k < pr->count; k++)
            if (shale_manifest_sst_overlaps(&pr->ssts[k], c->start, c->start_len, c->end,
                                            c->end_len))
                ssts[m++] = pr->ssts[k];
        if (m)
            (*runs)[nr++] = (shale_manifest_run){pr->id, ssts, m};
    }
    out->runs = *runs;
    out->run_count = nr;
    return SHALE_OK;
}

static void warm_worker(void *arg)
{
    verify_warm *w = arg;
    for (size_t i; (i = atomic_fetch_add(&w->next, 1)) < w->ntasks;) {
        const vtask *t = &w->tasks[i];
        verify_window_prefetch(w->v.parent, &w->v.r->req->children[t->child], t);
    }
}

/* Child ci's windows (refs_add_tasks on the parent's SSTs of its range),
 * appended to w's tasks; its HEAD tasks dropped (Verify's, not reads). */
static shale_status add_windows(verify_warm *w, const shale_manifest_view *pm, size_t ci,
                                size_t *cap)
{
    const split_child *c = &w->v.r->req->children[ci];
    shale_manifest_view cv;
    shale_manifest_sst *l0 = NULL, **rs = NULL;
    shale_manifest_run *runs = NULL;
    shale_status rc = child_view(pm, c, &cv, &l0, &runs, &rs);
    size_t from = w->ntasks;
    if (!rc)
        rc = refs_add_tasks(ci, &cv, c, &w->tasks, &w->ntasks, cap);
    size_t keep = from;
    for (size_t i = from; !rc && i < w->ntasks; i++)
        if (!w->tasks[i].head && !w->tasks[i].list_store)
            w->tasks[keep++] = w->tasks[i];   /* its keys are its own (mid) or the request's */
    if (!rc)
        w->ntasks = keep;
    for (size_t r = 0; rs && r < pm->run_count; r++)
        free(rs[r]);
    free(rs);
    free(runs);
    free(l0);
    return rc;
}

static void warm_mark(verify_warm *w, bool *flag)
{
    pthread_mutex_lock(&w->mu);
    *flag = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *warm_run(verify_warm *w)
{
    bool opened = !verify_open_parent(&w->v, w->at);   /* else Verify opens it, and reports */
    pthread_mutex_lock(&w->mu);
    w->opened = opened;
    w->open_done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!opened)
        return NULL;
    shale_manifest_view *pm = NULL;
    if (shale_reader_manifest_view(w->v.parent, &pm))
        return NULL;
    size_t cap = 0;
    shale_status rc = SHALE_OK;
    for (size_t i = 0; !rc && i < w->v.r->req->child_count; i++)
        rc = add_windows(w, pm, i, &cap);
    /* A child's range-end window is the next child's range-start one (the
     * same blocks): one prefetch, as Verify folds them. */
    if (!rc)
        w->ntasks = refs_fold_end_windows(w->v.r->req, w->tasks, w->ntasks);
    if (!rc && w->ntasks) {
        /* Every window at once, as Verify's phase 2 runs them. */
        atomic_store(&w->next, 0);
        workpool_for(w->ntasks < 128 ? w->ntasks : 128, warm_worker, w);
    }
    free(w->tasks);   /* the tasks' mid keys are copies: nothing borrowed from pm */
    w->tasks = NULL;
    shale_manifest_view_free(pm);
    return NULL;
}

static void *warm_main(void *arg)
{
    verify_warm *w = arg;
    warm_run(w);
    if (!w->open_done)
        warm_mark(w, &w->open_done);
    warm_mark(w, &w->done);
    return NULL;
}

verify_warm *verify_warm_start(run *r)
{
    if (!r->checkpoint_id[0] || !r->req->child_count ||
        verify_mode_of(r) != SPLIT_VERIFY_REFERENCES)
        return NULL;
    verify_warm *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    snprintf(w->cp, sizeof w->cp, "%s", r->checkpoint_id);
    /* On the worker, now: the thread never touches r->db, which a failed
     * step may close while it runs. */
    w->at = verify_parent_hint(r);
    w->v.r = r;
    w->v.mode = SPLIT_VERIFY_REFERENCES;
    w->v.cp = w->cp;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (shale_cache_new(verify_cache_bytes(r->sp), &w->v.cache) ||
        pthread_create(&w->th, NULL, warm_main, w)) {
        shale_cache_free(w->v.cache);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

static void warm_wait(verify_warm *w, const bool *flag)
{
    pthread_mutex_lock(&w->mu);
    while (!*flag)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void verify_warm_take(verify_warm *w, shale_cache **cache, shale_reader **parent)
{
    *cache = NULL;
    *parent = NULL;
    if (!w)
        return;
    warm_wait(w, &w->open_done);
    if (w->opened) {
        *cache = w->v.cache;
        *parent = w->v.parent;
        w->handed = true;
    }
}

void verify_warm_wait(verify_warm *w)
{
    if (w)
        warm_wait(w, &w->done);
}

void verify_warm_free(verify_warm *w)
{
    if (!w)
        return;
    pthread_join(w->th, NULL);
    if (!w->handed) {
        shale_reader_close(w->v.parent);
        shale_cache_free(w->v.cache);   /* after the reader that uses it */
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
