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
 *               and at SPAN_SAMPLES points over its key span, each
 *               compared with the parent's.  A fixed number of windows per
 *               child: what it reads does not grow with the shard; the
 *               referenced objects' existence is one LIST of a store's
 *               SSTs (a HEAD where a store holds one), so neither do its
 *               requests.
 *
 * Both are read-only and may be redone after a crash.  A mismatch is
 * SHALE_CORRUPT and sets step_result.mismatch (the splitter fails the split
 * as VerifyFailed); anything else, a read error above all, is an ordinary
 * step error that the splitter retries: a child that could not be read has
 * not been shown to differ.
 */
#include "verify.h"
#include "shale_admin.h"
#include "verify_int.h"
#include "workpool.h"
#include "verify_warm.h"
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
 * parallelism, not the cores).  Phase 1, per child: open its reader (at
 * the version Clone wrote, by id) and probe that it is the latest
 * (references), or check that it is initialized (full, whose walk then
 * runs in verify_full.c); the parent's reader at the checkpoint beside
 * them, and the parent's latest version on a thread of its own until the
 * pins are checked.  Phase 2 (references), per task: every LIST, HEAD and
 * sampled window of every child at once, each window's levels prefetched
 * at once, so the critical path is one manifest read, a window's SST open,
 * index partition and blocks, whatever the number of children and SSTs. */
#define VERIFY_THREADS 128

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
    uint64_t *ids;                   /* per child: the version Clone wrote (0: unknown) */
    bool *at_id;                     /* per child: its reader stands on ids[i] */
    bool *newer;                     /* per child: a version after ids[i] exists
                                        (or could not be ruled out) */
    const vtask *tasks;              /* phase 2 */
    verify_warm *warm;               /* the warm-up, if one ran (borrowed) */
    bool defer;                      /* references, every id known: the probes
                                        run as phase 2's first items */
    size_t nprobes;                  /* phase 2's probe items (0 or n) */
    shale_status *rcs;               /* per item */
    char (*msgs)[512];               /* per item: shale_errmsg() is per thread */
} verify_job;

/* Child i's reader: at the manifest version Clone wrote, by one GET, when
 * the run knows it (r->child_manifest_ids); else at its latest (a LIST
 * and a GET).  A known version that cannot be read there (gone, or a
 * read error) is not a verdict: the latest is opened instead, and the
 * child's checks are those of an unknown id (at_id false). */
static shale_status open_child_reader(verify_job *w, size_t i)
{
    const verify_ctx *v = w->v;
    const split_child *c = &v->r->req->children[i];
    shale_options co = run_opts(v->r, c->wal_store);
    co.block_cache = v->cache;
    shale_reader *child = NULL;
    shale_status rc = SHALE_NOT_FOUND;
    w->at_id[i] = false;
    if (w->ids[i] && !(rc = shale_reader_open_version(c->store, &co, w->ids[i], &child)))
        w->at_id[i] = true;
    if (rc)
        rc = shale_reader_open(c->store, &co, NULL, &child);
    if (rc)
        return shale_error_prefix(rc, "verify: opening child %s", c->name);
    w->readers[i] = child;
    return SHALE_OK;
}

static shale_status open_child(verify_job *w, size_t i)
{
    const verify_ctx *v = w->v;
    const split_child *c = &v->r->req->children[i];
    shale_status rc = open_child_reader(w, i);
    if (rc)
        return rc;
    shale_db_info info;
    rc = shale_reader_info(w->readers[i], &info);
    if (!rc && !info.initialized)
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s is not initialized", c->name);
    if (!rc && v->mode == SPLIT_VERIFY_REFERENCES)
        rc = refs_child_manifest(v, c, w->readers[i], &w->cms[i]);
    return rc;
}

/* Probe item of child k (references): with its manifest id known, a HEAD
 * of the version after it, which must not exist (versions are written
 * put-if-absent at the next id: then the version read is the child's
 * latest, and no writer has opened the child -- a writer's open writes a
 * version before any WAL object, db_open.c -- so its WAL store need not
 * be listed); else its WAL store's listing.  Neither needs the manifest:
 * both run beside the reader's open. */
static void probe_child(verify_job *w, size_t k)
{
    const verify_ctx *v = w->v;
    const split_child *c = &v->r->req->children[k];
    if (!w->ids[k] && v->mode != SPLIT_VERIFY_REFERENCES)
        return;   /* full: the walk opens its latest; no WAL check */
    if (w->defer && w->phase == 1)
        return;   /* beside phase 2's reads instead (do_verify) */
    if (w->ids[k]) {
        shale_objstore *s = NULL;
        char key[SHALE_KEY_MAX];
        shale_manifest_key(w->ids[k] + 1, key, sizeof key);
        shale_status rc = shale_objstore_open(c->store, &v->r->sp->o.db.store, &s);
        if (!rc)
            rc = shale_objstore_head(s, key, NULL, NULL);
        shale_objstore_close(s);
        w->newer[k] = rc != SHALE_NOT_FOUND;   /* found, or not known: the slow way */
        return;
    }
    shale_objstore *ws = NULL;
    shale_status rc = shale_objstore_open(refs_request_wal(c), &v->r->sp->o.db.store, &ws);
    if (!rc)
        rc = shale_objstore_list_all(ws, SHALE_WAL_DIR, &w->wals[k]);
    shale_objstore_close(ws);
    w->wal_rcs[k] = rc;   /* a failed listing is made again by check_child_wal */
}

/* The parent's reader at the split's checkpoint.  The writer Fence opened
 * (r->db, this process) stands on the version its checkpoint wrote, or a
 * later one of its own: that version is read by one GET, and if it holds
 * the checkpoint pinning that very version, it is the checkpoint's (a
 * checkpoint pins the version that records it, and a record never moves);
 * if it names another version, that one is read.  Otherwise (a resumed
 * run has no writer) the reader finds the checkpoint in the latest
 * version, as before: a LIST and two GETs.  check_pinned() holds the
 * version read to the latest's record either way. */
uint64_t verify_parent_hint(const run *r)
{
    shale_db_info info;
    return r->db && !shale_db_info_get(r->db, &info) ? info.manifest_id : 0;
}

shale_status verify_open_parent(verify_ctx *v, uint64_t at)
{
    shale_options po = run_opts(v->r, parent_wal(v->r));
    po.block_cache = v->cache;
    const char *uri = parent_store(v->r);
    for (int tries = 0; at && tries < 2; tries++) {
        shale_reader *p = NULL;
        shale_manifest_view *m = NULL;
        if (shale_reader_open_version(uri, &po, at, &p) || shale_reader_manifest_view(p, &m)) {
            shale_reader_close(p);
            break;
        }
        const shale_manifest_checkpoint *cp = shale_manifest_view_checkpoint(m, v->cp);
        uint64_t pin = cp ? cp->manifest_id : 0;
        shale_manifest_view_free(m);
        if (pin == at) {
            v->parent = p;
            return SHALE_OK;
        }
        shale_reader_close(p);
        at = pin;
    }
    shale_status rc = shale_reader_open(uri, &po, v->cp, &v->parent);
    return rc ? shale_error_prefix(rc, "verify: opening the parent at checkpoint %s", v->cp)
              : SHALE_OK;
}

/* Phase 1, item i: 0 opens the parent's reader at the checkpoint, 1+k
 * opens child k's reader and (references) 1+n+k probes child k
 * (probe_child).  All independent: the phase costs the slowest of them. */
static shale_status verify_open(verify_job *w, size_t i)
{
    verify_ctx *v = w->vm;
    if (i == 0)   /* the warm-up's (verify_warm.h) when it opened one */
        return v->parent ? SHALE_OK : verify_open_parent(v, verify_parent_hint(v->r));
    size_t n = v->r->req->child_count;
    if (i >= 1 + n) {
        probe_child(w, i - 1 - n);
        return SHALE_OK;
    }
    return open_child(w, i - 1);
}

/* Child i read at a known version that is not (or not shown to be) its
 * latest: something wrote the child after the clone.  Its checks are made
 * on its latest version, with its WAL store listed, as for an unknown id:
 * what changed is found and named there. */
static shale_status reopen_child_latest(verify_job *w, size_t i)
{
    shale_reader_close(w->readers[i]);
    w->readers[i] = NULL;
    shale_manifest_view_free(w->cms[i]);
    w->cms[i] = NULL;
    uint64_t id = w->ids[i];
    w->ids[i] = 0;
    shale_status rc = open_child(w, i);
    w->ids[i] = id;
    return rc;
}

/* A window: the parent's levels prefetched at once from the window's
 * start (shale_reader_prefetch: one level's round trips, not their sum),
 * then the parent's range and the child's compared -- the child's
 * SSTs are the parent's objects, so both scans find their blocks in the
 * shared cache.  A failed prefetch is no verdict: the scans read what
 * they lack and report it. */
void verify_window_prefetch(shale_reader *parent, const split_child *c, const vtask *t)
{
    const void *from = t->at_mid ? t->mid : t->from;
    size_t from_len = from ? t->from_len : 0;
    const void *pk = from ? from : c->start;
    size_t pkl = from ? from_len : c->start_len;
    if (from && c->start && key_cmp(from, from_len, c->start, c->start_len) < 0) {
        pk = c->start;
        pkl = c->start_len;
    }
    /* WINDOW + 2 entries a level: the compare's last next() reads one
     * past the window, and a level the merge has not consumed holds its
     * next entry loaded. */
    (void)shale_reader_prefetch(parent, pk, pk ? pkl : 0, WINDOW + 2);
}

static shale_status verify_window(verify_job *w, const vtask *t)
{
    verify_warm_wait(w->warm);   /* its reads are this window's, made ahead */
    const split_child *c = &w->v->r->req->children[t->child];
    const void *from = t->at_mid ? t->mid : t->from;
    size_t from_len = from ? t->from_len : 0;
    verify_window_prefetch(w->v->parent, c, t);
    uint64_t n = 0;
    shale_status rc = verify_compare(w->v->parent, w->readers[t->child], c, from, from_len,
                                     NULL, 0, WINDOW, false, &n);
    if (!rc && t->end_of >= 0) {
        /* The end window of the child that ends where this one starts:
         * the blocks there are the ones just read. */
        const split_child *e = &w->v->r->req->children[t->end_of];
        rc = verify_compare(w->v->parent, w->readers[t->end_of], e, e->end, e->end_len, NULL,
                            0, WINDOW, false, &n);
    }
    return rc;
}

static shale_status verify_task(verify_job *w, size_t i)
{
    if (i < w->nprobes) {
        probe_child(w, i);
        return SHALE_OK;
    }
    const vtask *t = &w->tasks[i - w->nprobes];
    if (t->list_store)
        return refs_check_listed(w->v, w->cms, t->list_store);
    if (t->head)
        return refs_check_object(w->v, &w->v->r->req->children[t->child], w->cms[t->child],
                                 t->head);
    return verify_window(w, t);
}

static void verify_worker(void *arg)
{
    verify_job *w = arg;
    for (size_t i; !atomic_load(&w->failed) && (i = atomic_fetch_add(&w->next, 1)) < w->n;) {
        w->rcs[i] = w->phase == 1 ? verify_open(w, i) : verify_task(w, i);
        if (w->rcs[i]) {
            snprintf(w->msgs[i], sizeof w->msgs[i], "%s", shale_errmsg());
            /* Phase 2 goes on past a read error, so that a mismatch found
             * by another task (a missing object's HEAD) is reported as
             * one, never hidden behind a retryable error. */
            if (w->phase != 2 || w->rcs[i] == SHALE_CORRUPT)
                atomic_store(&w->failed, true);
        }
    }
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
    /* On the process's pool threads (workpool.h): at 32 children the 128
     * threads' starts, and their joins unmapping their stacks after the
     * last window, were several ms of CPU on the chain. */
    workpool_for(n < VERIFY_THREADS ? n : VERIFY_THREADS, verify_worker, w);
    for (size_t i = 0; i < n; i++)
        if (w->rcs[i] == SHALE_CORRUPT)
            return shale_error_set(w->rcs[i], "%s", w->msgs[i]);
    for (size_t i = 0; i < n; i++)
        if (w->rcs[i])
            return shale_error_set(w->rcs[i], "%s", w->msgs[i]);
    return SHALE_OK;
}

/* The parent's latest version (which holds the children's pins; Complete
 * writes on it), on a thread of its own from the step's start until the
 * pins are checked, so it is not on the step's path.  The version the
 * checkpoint pins is the parent reader's own (not read twice).
 *
 * Without a LIST where it can: the split's writer (r->db, opened at Fence,
 * the parent's only writer since) stands on version `after`, and Clone's
 * one pin write is the next, so version after + 1 is read by id (a GET)
 * and then a HEAD of after + 2 must find nothing -- versions are written
 * put-if-absent at the next id, so after + 1, existing before that HEAD,
 * was the latest when it was made, just as a LIST's answer is the latest
 * when it is made.  Found (anything else wrote the parent since), or
 * after + 1 not there (Clone wrote no pin: a resumed clone found them
 * made), or no writer (a resumed run): the latest is listed, as before. */
typedef struct latest_load {
    verify_ctx *v;
    uint64_t after;                  /* the writer's version (0: unknown) */
    shale_status rc;
    char msg[512];
    pthread_t th;
    bool threaded, joined;
} latest_load;

/* Version l->after + 1 if it is the parent's latest (NULL: not shown). */
static shale_manifest_view *latest_by_id(latest_load *l, shale_objstore *s)
{
    shale_manifest_view *m = NULL;
    if (!l->after || shale_manifest_view_load(s, l->after + 1, &m))
        return NULL;
    char key[SHALE_KEY_MAX];
    shale_manifest_key(l->after + 2, key, sizeof key);
    if (m->id != l->after + 1 || shale_objstore_head(s, key, NULL, NULL) != SHALE_NOT_FOUND) {
        shale_manifest_view_free(m);   /* newer, or not known: list */
        return NULL;
    }
    return m;
}

static void *latest_run(void *arg)
{
    latest_load *l = arg;
    verify_ctx *v = l->v;
    shale_objstore *s = NULL;
    shale_objstore_options so = run_store_opts(v->r);   /* versions Clone wrote: no GET */
    shale_status rc = shale_objstore_open(parent_store(v->r), &so, &s);
    if (!rc && !(v->latest = latest_by_id(l, s)))
        rc = shale_manifest_view_load(s, 0, &v->latest);
    if (!rc && !shale_manifest_view_checkpoint(v->latest, v->cp))
        rc = shale_error_set(SHALE_NOT_FOUND, "verify: the parent has no checkpoint %s", v->cp);
    shale_objstore_close(s);
    if ((l->rc = rc))
        snprintf(l->msg, sizeof l->msg, "%s", shale_errmsg());
    return NULL;
}

static void latest_start(latest_load *l, verify_ctx *v)
{
    memset(l, 0, sizeof *l);
    l->v = v;
    shale_db_info info;
    if (v->r->db && !shale_db_info_get(v->r->db, &info))
        l->after = info.manifest_id;
    l->threaded = !pthread_create(&l->th, NULL, latest_run, l);
}

/* Joins the load (made here if no thread could be started); once. */
static shale_status latest_join(latest_load *l)
{
    if (l->joined)
        return l->rc ? shale_error_set(l->rc, "%s", l->msg) : SHALE_OK;
    l->joined = true;
    if (l->threaded)
        pthread_join(l->th, NULL);
    else
        latest_run(l);
    return l->rc ? shale_error_set(l->rc, "%s", l->msg) : SHALE_OK;
}

/* The version the parent's reader stands on must be the one the latest
 * version's record of the checkpoint pins. */
static shale_status check_pinned(const verify_ctx *v)
{
    const shale_manifest_checkpoint *cp = shale_manifest_view_checkpoint(v->latest, v->cp);
    if (!cp || cp->manifest_id != v->pinned->id)
        return shale_error_set(SHALE_CORRUPT, "verify: the parent's checkpoint %s pins version "
                                              "%llu; its reader stands on %llu", v->cp,
                               cp ? (unsigned long long)cp->manifest_id : 0ull,
                               (unsigned long long)v->pinned->id);
    return SHALE_OK;
}

size_t verify_cache_bytes(const splitter *sp)
{
    return sp->o.verify_cache_bytes ? sp->o.verify_cache_bytes : VERIFY_CACHE_BYTES;
}

split_verify verify_mode_of(const run *r)
{
    split_verify mode = r->req->verify != SPLIT_VERIFY_DEFAULT ? r->req->verify
                                                                : r->sp->o.verify;
    return mode == SPLIT_VERIFY_DEFAULT ? SPLIT_VERIFY_FULL : mode;
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
    split_verify mode = verify_mode_of(r);
    res_out->verify_mode = mode;
    verify_ctx v = {r, mode, cp, NULL, NULL, NULL, NULL};
    /* The warm-up's parent reader and cache, its windows' reads in it
     * (verify_warm.h: started beside Clone), when it ran; else made here. */
    verify_warm *warm = r->warm;
    r->warm = NULL;
    verify_warm_take(warm, &v.cache, &v.parent);
    /* The children's SSTs are the parent's own objects, and a child is
     * walked beside the parent's range: with one cache the child finds
     * each block the parent has just read, decoded (no second read, no
     * second decompression). */
    shale_status rc = v.cache ? SHALE_OK
                              : shale_cache_new(verify_cache_bytes(sp), &v.cache);
    if (rc) {
        verify_warm_free(warm);
        return rc;
    }
    size_t n = q->child_count;
    verify_job w;
    memset(&w, 0, sizeof w);
    w.v = w.vm = &v;
    w.warm = warm;
    /* The full mode loads it too (beside its readers' opens): Complete
     * writes on the latest (complete_release_checkpoint). */
    latest_load ll;
    latest_start(&ll, &v);
    child_result *res = w.res = calloc(n ? n : 1, sizeof *res);
    w.readers = calloc(n ? n : 1, sizeof *w.readers);
    w.cms = calloc(n ? n : 1, sizeof *w.cms);
    w.ids = calloc(n ? n : 1, sizeof *w.ids);
    w.at_id = calloc(n ? n : 1, sizeof *w.at_id);
    w.newer = calloc(n ? n : 1, sizeof *w.newer);
    vtask *tasks = NULL;
    size_t ntasks = 0, cap = 0;
    if (!res || !w.readers || !w.cms || !w.ids || !w.at_id || !w.newer) {
        rc = AGENT_OOM();
        goto out;
    }
    for (size_t i = 0; r->child_manifest_ids && i < n; i++)
        w.ids[i] = r->child_manifest_ids[i];
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
    /* Both modes probe a child whose version is known: the full walk reads
     * it by id when it is the latest. */
    /* References with every child's version known (the usual run, in the
     * process that ran Clone): the HEADs that show each version is still
     * the child's latest go out beside phase 2's reads instead of before
     * them -- one round trip fewer (issue 16).  The checks are made on the
     * versions Clone wrote; if any child turns out to have a newer one,
     * their verdict is dropped and the checks are made again as without
     * (that child at its latest, its WAL listed). */
    w.defer = refs;
    for (size_t i = 0; i < n; i++)
        if (!w.ids[i])
            w.defer = false;
    rc = verify_phase(&w, 1, 1 + 2 * n);
    if (!rc)
        rc = shale_reader_manifest_view(v.parent, &v.pinned);
    if (rc)
        w.defer = false;   /* a failed open is the verdict, whatever the probes say */
again:
    for (size_t i = 0; !rc && refs && i < n; i++) {
        const split_child *c = &q->children[i];
        if (w.at_id[i] && !w.newer[i]) {
            /* The version Clone wrote, still the latest (probe_child):
             * nothing to list. */
            rc = refs_check_child_replay(c, w.cms[i]);
            continue;
        }
        if (w.at_id[i] && (rc = reopen_child_latest(&w, i)))
            break;
        const char *cw = w.cms[i]->wal_store_uri ? w.cms[i]->wal_store_uri : c->store;
        bool same = !w.ids[i] && !w.wal_rcs[i] && !strcmp(cw, refs_request_wal(c));
        rc = refs_check_child_wal(&v, c, w.cms[i], same ? &w.wals[i] : NULL);
    }
    for (size_t i = 0; !rc && refs && i < n; i++)
        rc = refs_check_manifest(&v, &q->children[i], w.cms[i], &res[i]);
    size_t pieces = 0, walkers = 0;
    if (!rc && mode == SPLIT_VERIFY_FULL) {
        /* In pieces with readers of their own (verify_full.c): the phase 1
         * readers stay as they are, holding no SST. */
        uint64_t *keys = calloc(n ? n : 1, sizeof *keys);
        uint64_t *at = calloc(n ? n : 1, sizeof *at);
        /* Each child by id where phase 1 found the version Clone wrote to
         * be its latest (no writer has opened it since); else at its
         * latest, as before. */
        for (size_t i = 0; at && i < n; i++)
            at[i] = w.at_id[i] && !w.newer[i] ? w.ids[i] : 0;
        rc = keys && at ? verify_full_walk(r, v.cache, v.pinned, at, keys, &pieces, &walkers)
                        : AGENT_OOM();
        free(at);
        for (size_t i = 0; !rc && i < n; i++)
            res[i].keys = keys[i];
        free(keys);
    }
    for (size_t i = 0; !rc && refs && i < n; i++)
        rc = refs_add_tasks(i, w.cms[i], &q->children[i], &tasks, &ntasks, &cap);
    if (!rc && refs)
        ntasks = refs_group_heads(tasks, refs_fold_end_windows(q, tasks, ntasks));
    if (refs && (!rc || w.defer)) {
        /* Phase 2: every HEAD and every window of every child at once
         * (and the deferred probes: after a failed check, those alone). */
        w.tasks = tasks;
        w.nprobes = w.defer ? n : 0;
        shale_status prc = verify_phase(&w, 2, (rc ? 0 : ntasks) + w.nprobes);
        bool newer = false;
        for (size_t i = 0; w.defer && i < n; i++)
            newer |= w.newer[i];
        w.defer = false;
        w.nprobes = 0;
        if (newer) {   /* checked on a version that is not the latest */
            free(tasks);
            tasks = NULL;
            ntasks = cap = 0;
            memset(res, 0, n * sizeof *res);
            rc = SHALE_OK;
            goto again;
        }
        if (!rc)
            rc = prc;
        for (size_t i = 0; !rc && i < ntasks; i++) {
            if (!tasks[i].head && !tasks[i].list_store)
                res[tasks[i].child].windows++;
            if (tasks[i].end_of >= 0)
                res[tasks[i].end_of].windows++;
        }
    }
    /* The pins (and the checkpoint's record) need the latest version. */
    shale_status lrc = latest_join(&ll);
    if (!rc)
        rc = lrc;
    if (!rc)
        rc = check_pinned(&v);
    for (size_t i = 0; !rc && refs && i < n; i++)
        rc = refs_check_pins(&v, &q->children[i], w.cms[i]);
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
    if (!ll.joined && ll.threaded)   /* left early: the thread must end first */
        pthread_join(ll.th, NULL);
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
    free(w.ids);
    free(w.at_id);
    free(w.newer);
    free(w.rcs);
    free(w.msgs);
    free(tasks);
    free(res);
    shale_manifest_view_free(v.pinned);
    /* Complete releases the checkpoint on this version (complete_release_checkpoint). */
    shale_manifest_view_free(r->parent_latest);
    r->parent_latest = rc ? NULL : v.latest;
    if (rc)
        shale_manifest_view_free(v.latest);
    verify_warm_free(warm);   /* its thread reads through v.parent until joined */
    shale_reader_close(v.parent);
    shale_cache_free(v.cache);   /* after every reader that uses it */
    return rc;
}
