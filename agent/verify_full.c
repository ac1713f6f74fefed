/*
 * verify_full.c -- full Verify's walk in memory bounded by configuration,
 * not by the shard (see verify.h; docs/agent.md "Verify's memory").
 *
 * A reader keeps every SST it has opened (its index and bloom filter, a
 * few percent of the SST's bytes) until it is closed, so one reader
 * walking a whole range would hold the metadata of every SST in it: memory
 * growing with the shard.  So each child's range is cut into pieces at the
 * SST boundaries of the parent's largest sorted run, about
 * verify_piece_bytes of it each (splitter_options; defaults in verify.h),
 * and each piece is walked with a parent
 * reader (at the checkpoint) and a child reader of its own, closed when
 * the piece is done.  A reader then holds the SSTs of one piece: the run's
 * SSTs in it plus the next one (a scan opens it to find its end), the
 * other runs' SSTs overlapping it and the L0 SSTs (bounded by
 * l0_max_ssts and the memtable size, not by the shard).  At most
 * verify_threads pieces are walked at once, fewer when their estimated
 * metadata would exceed verify_meta_bytes.
 *
 * The data is still read once: the pieces partition each child's range,
 * and within a piece the child's blocks come from the cache the parent's
 * scan has just filled.  What the pieces add is two reader opens each (a
 * manifest read: a LIST and a GET or two on S3) and the index and filter
 * of an SST that straddles a cut read by both pieces -- a few requests per
 * 64 MiB of data (the default piece), against the 64 ranged reads of
 * 1 MiB it takes to read that much.
 */
#include "verify.h"
#include "db/paths.h"
#include "table/kv.h"
#include "table/sst.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One piece of a child's range: [from, to), NULL = the child's own bound.
 * The keys point into the pinned manifest. */
typedef struct piece {
    size_t child;
    const uint8_t *from, *to;
    size_t from_len, to_len;
    uint64_t meta;                   /* estimated SST metadata its readers hold */
} piece;

typedef struct walk {
    run *r;
    uint64_t piece_bytes;            /* the limits, defaults applied */
    double blocks_per_byte;          /* data blocks per stored byte (sampled) */
    shale_cache *cache;
    piece *p;
    size_t n, cap;
    uint64_t *keys;                  /* per piece */
    shale_status *rcs;               /* per piece */
    char (*msgs)[512];               /* per piece: shale_errmsg() is per thread */
    _Atomic size_t next;
    _Atomic bool failed;
} walk;

static shale_status add_piece(walk *w, size_t child, const uint8_t *from, size_t from_len)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        piece *g = realloc(w->p, nc * sizeof *g);
        if (!g)
            return SHALE_OOM();
        w->p = g;
        w->cap = nc;
    }
    /* The previous piece of this child ends where this one starts. */
    if (from && w->n && w->p[w->n - 1].child == child) {
        w->p[w->n - 1].to = from;
        w->p[w->n - 1].to_len = from_len;
    }
    w->p[w->n++] = (piece){child, from, NULL, from ? from_len : 0, 0, 0};
    return SHALE_OK;
}

/* What a reader holds for an SST it has opened: per data block an index
 * entry (48 bytes) and its key in the decoded index block (about 72 bytes
 * with 16-byte keys, counted as 96), per entry its bloom bits (10 by
 * default, counted as 16).  The blocks are estimated from the SST's bytes
 * at the density the sample measured (verify_full_walk): how many blocks a
 * stored byte holds depends on how well the values compress, 1/30 of the
 * bytes with half-random values and several times that with repetitive
 * ones (docs/benchmarks.md). */
static uint64_t sst_meta(const walk *w, const sst_handle *h)
{
    return (uint64_t)((double)h->size * w->blocks_per_byte * 96) + h->entries * 2 + 4096;
}

/* The density of data blocks in the parent's SSTs: the index of its
 * largest SST (two ranged reads, once per Verify). */
static shale_status sample_density(walk *w, const manifest *m)
{
    const sst_handle *big = NULL;
    for (size_t k = 0; k < m->l0_count; k++)
        if (!big || m->l0[k].size > big->size)
            big = &m->l0[k];
    for (size_t r = 0; r < m->run_count; r++)
        for (size_t k = 0; k < m->runs[r].count; k++)
            if (!big || m->runs[r].ssts[k].size > big->size)
                big = &m->runs[r].ssts[k];
    w->blocks_per_byte = 1.0 / 4096;   /* no SST: no piece reads one */
    if (!big || !big->size)
        return SHALE_OK;
    const char *uri = big->store_uri ? big->store_uri : parent_store(w->r);
    shale_objstore *s = NULL;
    sst_reader *rd = NULL;
    char key[64];
    sst_key(big->id, key, sizeof key);
    shale_status rc = shale_objstore_open(uri, &w->r->sp->o.db.store, &s);
    if (!rc)
        rc = sst_reader_open_index(s, key, big->size, &rd);
    if (!rc)
        w->blocks_per_byte = (double)sst_reader_block_count(rd) / (double)big->size;
    sst_reader_unref(rd);
    shale_objstore_close(s);
    return rc ? shale_err_prefix(rc, "verify: reading the index of %s/%s", uri, key)
              : SHALE_OK;
}

/* The SST metadata a reader walking [s, e) of m opens: every SST that
 * overlaps it, and in each sorted run the one after (a scan opens it to
 * find where the range ends). */
static uint64_t range_meta(const walk *w, const manifest *m, const uint8_t *s, size_t sl,
                           const uint8_t *e, size_t el)
{
    uint64_t b = 0;
    for (size_t k = 0; k < m->l0_count; k++)
        if (sst_handle_overlaps(&m->l0[k], s, sl, e, el))
            b += sst_meta(w, &m->l0[k]);
    for (size_t r = 0; r < m->run_count; r++) {
        const sorted_run *run = &m->runs[r];
        bool in = false;
        for (size_t k = 0; k < run->count; k++) {
            if (sst_handle_overlaps(&run->ssts[k], s, sl, e, el)) {
                b += sst_meta(w, &run->ssts[k]);
                in = true;
            } else if (in) {
                b += sst_meta(w, &run->ssts[k]);
                break;
            }
        }
    }
    return b;
}

/* Cuts child ci's range at the first keys of SSTs of the parent's sorted
 * run with the most bytes in it, every w->piece_bytes or so. */
static shale_status plan_child(walk *w, size_t ci, const manifest *m)
{
    const split_child *c = &w->r->req->children[ci];
    const uint8_t *s = c->start, *e = c->end;
    size_t sl = s ? c->start_len : 0, el = e ? c->end_len : 0;
    const sorted_run *best = NULL;
    uint64_t best_bytes = 0;
    for (size_t r = 0; r < m->run_count; r++) {
        uint64_t b = 0;
        for (size_t k = 0; k < m->runs[r].count; k++)
            if (sst_handle_overlaps(&m->runs[r].ssts[k], s, sl, e, el))
                b += m->runs[r].ssts[k].size;
        if (b > best_bytes) {
            best = &m->runs[r];
            best_bytes = b;
        }
    }
    shale_status rc = add_piece(w, ci, NULL, 0);
    uint64_t acc = 0;
    bool seen = false;
    for (size_t k = 0; best && k < best->count && !rc; k++) {
        const sst_handle *h = &best->ssts[k];
        if (!sst_handle_overlaps(h, s, sl, e, el))
            continue;
        /* A cut strictly inside the range, between two SSTs of the run. */
        if (seen && acc >= w->piece_bytes &&
            (!sl || kv_key_cmp(h->first_key, h->first_klen, s, sl) > 0) &&
            (!el || kv_key_cmp(h->first_key, h->first_klen, e, el) < 0)) {
            rc = add_piece(w, ci, h->first_key, h->first_klen);
            acc = 0;
        }
        seen = true;
        acc += h->size;
    }
    /* Each piece's estimate, for two readers (the parent's and the
     * child's, which opens the same objects). */
    for (size_t i = w->n; !rc && i-- > 0 && w->p[i].child == ci;) {
        piece *p = &w->p[i];
        const uint8_t *ps = s, *pe = e;
        size_t psl = sl, pel = el;
        if (p->from) {
            ps = p->from;
            psl = p->from_len;
        }
        if (p->to) {
            pe = p->to;
            pel = p->to_len;
        }
        p->meta = 2 * range_meta(w, m, ps, psl, pe, pel);
    }
    return rc;
}

/* One piece: readers of its own, walked, closed. */
static shale_status walk_piece(walk *w, size_t i)
{
    const piece *p = &w->p[i];
    run *r = w->r;
    const split_child *c = &r->req->children[p->child];
    shale_options po = db_opts(r->sp, parent_wal(r)), co = db_opts(r->sp, c->wal_store);
    po.block_cache = co.block_cache = w->cache;
    shale_reader *parent = NULL, *child = NULL;
    shale_status rc = shale_reader_open(parent_store(r), &po, r->checkpoint_id, &parent);
    if (rc) {
        rc = shale_err_prefix(rc, "verify: opening the parent at checkpoint %s",
                              r->checkpoint_id);
    } else if ((rc = shale_reader_open(c->store, &co, NULL, &child))) {
        rc = shale_err_prefix(rc, "verify: opening child %s", c->name);
    } else {
        rc = verify_compare(parent, child, c, p->from, p->from_len, p->to, p->to_len, 0, false,
                            &w->keys[i]);
    }
    shale_reader_close(child);
    shale_reader_close(parent);
    return rc;
}

static void *walker(void *arg)
{
    walk *w = arg;
    for (size_t i; !atomic_load(&w->failed) && (i = atomic_fetch_add(&w->next, 1)) < w->n;) {
        if ((w->rcs[i] = walk_piece(w, i))) {
            snprintf(w->msgs[i], sizeof w->msgs[i], "%s", shale_errmsg());
            atomic_store(&w->failed, true);
        }
    }
    return NULL;
}

shale_status verify_full_walk(run *r, shale_cache *cache, const manifest *pinned,
                              uint64_t *keys)
{
    walk w;
    memset(&w, 0, sizeof w);
    const splitter_options *o = &r->sp->o;
    w.r = r;
    w.cache = cache;
    w.piece_bytes = o->verify_piece_bytes ? o->verify_piece_bytes : VERIFY_PIECE_BYTES;
    uint64_t meta_bytes = o->verify_meta_bytes ? o->verify_meta_bytes : VERIFY_META_BUDGET;
    uint32_t max_threads = o->verify_threads ? o->verify_threads : VERIFY_FULL_THREADS;
    if (max_threads > VERIFY_MAX_THREADS)
        max_threads = VERIFY_MAX_THREADS;
    size_t nc = r->req->child_count;
    shale_status rc = sample_density(&w, pinned);
    for (size_t i = 0; i < nc && !rc; i++)
        rc = plan_child(&w, i, pinned);
    if (!rc && (!(w.keys = calloc(w.n ? w.n : 1, sizeof *w.keys)) ||
                !(w.rcs = calloc(w.n ? w.n : 1, sizeof *w.rcs)) ||
                !(w.msgs = calloc(w.n ? w.n : 1, sizeof *w.msgs))))
        rc = SHALE_OOM();
    if (!rc) {
        /* As many walkers as the largest piece's metadata allows within
         * the budget (one at least: a piece over it is walked alone), up
         * to the thread limit. */
        uint64_t most = 1;
        for (size_t i = 0; i < w.n; i++)
            if (w.p[i].meta > most)
                most = w.p[i].meta;
        uint64_t nthreads = meta_bytes / most;
        if (nthreads > max_threads)
            nthreads = max_threads;
        if (nthreads > w.n)
            nthreads = w.n;
        if (!nthreads)
            nthreads = 1;
        pthread_t th[VERIFY_MAX_THREADS];
        size_t started = 0;
        while (started + 1 < nthreads && !pthread_create(&th[started], NULL, walker, &w))
            started++;
        walker(&w);   /* this thread walks too */
        for (size_t t = 0; t < started; t++)
            pthread_join(th[t], NULL);
        for (size_t i = 0; i < w.n && !rc; i++)
            if (w.rcs[i] == SHALE_CORRUPT)
                rc = shale_err(w.rcs[i], "%s", w.msgs[i]);
        for (size_t i = 0; i < w.n && !rc; i++)
            if (w.rcs[i])
                rc = shale_err(w.rcs[i], "%s", w.msgs[i]);
    }
    for (size_t i = 0; i < nc; i++)
        keys[i] = 0;
    for (size_t i = 0; !rc && i < w.n; i++)
        keys[w.p[i].child] += w.keys[i];
    free(w.p);
    free(w.keys);
    free(w.rcs);
    free(w.msgs);
    return rc;
}
