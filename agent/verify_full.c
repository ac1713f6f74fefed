/*
 * verify_full.c -- full Verify's walk in memory bounded by configuration,
 * not by the shard (see verify.h; docs/agent.md "Verify's memory").
 *
 * A reader keeps every SST it has opened (its index and bloom filter, a
 * few percent of the SST's bytes) until it is closed, so one reader
 * walking a whole range would hold the metadata of every SST in it: memory
 * growing with the shard.  So each child's range is cut into pieces at the
 * SST boundaries of the parent's largest sorted run (at an SST's last key,
 * so that no scan opens the next SST just to find its end), about
 * verify_piece_bytes of it each (splitter_options; defaults in verify.h),
 * and each piece is walked with a parent
 * reader (at the checkpoint) and a child reader of its own, closed when
 * the piece is done.  A reader then holds the SSTs of one piece: the run's
 * SSTs in it, the other runs' SSTs overlapping it (and the next one in
 * each: a scan opens it to find its end) and the L0 SSTs (bounded by
 * l0_max_ssts and the memtable size, not by the shard).  At most
 * verify_threads pieces are walked at once, fewer when their estimated
 * metadata would exceed verify_meta_bytes.
 *
 * The data is still read once: the pieces partition each child's range,
 * and within a piece the child's blocks come from the cache the parent's
 * scan has just filled.  What the pieces add is two reader opens each (a
 * manifest GET each, by id, at once: walk_piece) and the index and filter
 * of an SST that straddles a cut read by both pieces -- a few requests per
 * 64 MiB of data (the default piece), against the 64 ranged reads of
 * 1 MiB it takes to read that much.
 */
#include "verify.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One piece of a child's range: [from, to), NULL = the child's own bound,
 * and, with `point`, the key `to` itself, looked up.  A cut between two
 * pieces is at the last key K of an SST of the largest run: one piece
 * scans up to K (exclusive) and gets K, the next scans from K's immediate
 * successor (K + a zero byte: no key lies between), so neither scan steps
 * from that SST into the next one -- a scan past an SST's last key opens
 * the next SST (its index and filter) only to find the end.  `to` points
 * into the pinned manifest; `from` is the piece's own (the successor). */
typedef struct piece {
    size_t child;
    uint8_t *from;                   /* owned */
    const uint8_t *to;
    size_t from_len, to_len;
    bool point;
    uint64_t meta;                   /* estimated SST metadata its readers hold */
} piece;

typedef struct walk {
    run *r;
    uint64_t parent_id;              /* the pinned version, read by id by every piece */
    const uint64_t *child_ids;       /* per child: its version to read by id (0: its latest) */
    uint64_t piece_bytes;            /* the limits, defaults applied */
    uint64_t piece_meta;             /* a piece ends past this much metadata */
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

/* A new piece of child, after a cut at key (NULL: the child's first). */
static shale_status add_piece(walk *w, size_t child, const uint8_t *cut, size_t cut_len)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        piece *g = realloc(w->p, nc * sizeof *g);
        if (!g)
            return AGENT_OOM();
        w->p = g;
        w->cap = nc;
    }
    uint8_t *from = NULL;
    if (cut) {
        if (!(from = malloc(cut_len + 1)))
            return AGENT_OOM();
        memcpy(from, cut, cut_len);
        from[cut_len] = 0;
        /* The previous piece of this child ends at the cut, key included. */
        w->p[w->n - 1].to = cut;
        w->p[w->n - 1].to_len = cut_len;
        w->p[w->n - 1].point = true;
    }
    w->p[w->n++] = (piece){child, from, NULL, cut ? cut_len + 1 : 0, 0, false, 0};
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
static uint64_t sst_meta(const walk *w, const shale_manifest_sst *h)
{
    return (uint64_t)((double)h->size * w->blocks_per_byte * 96) + h->entries * 2 + 4096;
}

/* The density of data blocks in the parent's SSTs: the index of its
 * largest SST (two ranged reads, once per Verify). */
static shale_status sample_density(walk *w, const shale_manifest_view *m)
{
    const shale_manifest_sst *big = NULL;
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
    uint64_t blocks = 0;
    char key[64];
    shale_sst_key(big->id, key, sizeof key);
    shale_status rc = shale_objstore_open(uri, &w->r->sp->o.db.store, &s);
    if (!rc)
        rc = shale_sst_block_count(s, key, big->size, &blocks);
    if (!rc)
        w->blocks_per_byte = (double)blocks / (double)big->size;
    shale_objstore_close(s);
    return rc ? shale_error_prefix(rc, "verify: reading the index of %s/%s", uri, key)
              : SHALE_OK;
}

/* The SST metadata a reader walking [s, e) of m opens: every SST that
 * overlaps it, and in each sorted run the one after (a scan opens it to
 * find where the range ends), but in cut_run, whose SST e ends (a cut). */
static uint64_t range_meta(const walk *w, const shale_manifest_view *m, const uint8_t *s, size_t sl,
                           const uint8_t *e, size_t el, const shale_manifest_run *cut_run)
{
    uint64_t b = 0;
    for (size_t k = 0; k < m->l0_count; k++)
        if (shale_manifest_sst_overlaps(&m->l0[k], s, sl, e, el))
            b += sst_meta(w, &m->l0[k]);
    for (size_t r = 0; r < m->run_count; r++) {
        const shale_manifest_run *run = &m->runs[r];
        bool in = false;
        for (size_t k = 0; k < run->count; k++) {
            if (shale_manifest_sst_overlaps(&run->ssts[k], s, sl, e, el)) {
                b += sst_meta(w, &run->ssts[k]);
                in = true;
            } else if (in) {
                if (run != cut_run)   /* at a cut of cut_run: not opened */
                    b += sst_meta(w, &run->ssts[k]);
                break;
            }
        }
    }
    return b;
}

/* Cuts child ci's range at the last keys of SSTs of the parent's sorted
 * run with the most bytes in it, every w->piece_bytes or so, sooner when
 * the SSTs' estimated metadata passes w->piece_meta (very compressible
 * SSTs hold many blocks for their bytes).  A piece has one SST at least. */
static shale_status plan_child(walk *w, size_t ci, const shale_manifest_view *m)
{
    const split_child *c = &w->r->req->children[ci];
    const uint8_t *s = c->start, *e = c->end;
    size_t sl = s ? c->start_len : 0, el = e ? c->end_len : 0;
    const shale_manifest_run *best = NULL;
    uint64_t best_bytes = 0;
    for (size_t r = 0; r < m->run_count; r++) {
        uint64_t b = 0;
        for (size_t k = 0; k < m->runs[r].count; k++)
            if (shale_manifest_sst_overlaps(&m->runs[r].ssts[k], s, sl, e, el))
                b += m->runs[r].ssts[k].size;
        if (b > best_bytes) {
            best = &m->runs[r];
            best_bytes = b;
        }
    }
    shale_status rc = add_piece(w, ci, NULL, 0);
    uint64_t acc = 0, acc_meta = 0;
    const shale_manifest_sst *prev = NULL;
    for (size_t k = 0; best && k < best->count && !rc; k++) {
        const shale_manifest_sst *h = &best->ssts[k];
        if (!shale_manifest_sst_overlaps(h, s, sl, e, el))
            continue;
        /* A cut strictly inside the range, at the end of the run's
         * previous SST. */
        if (prev && (acc >= w->piece_bytes || acc_meta >= w->piece_meta) &&
            (!sl || shale_key_compare(prev->last_key, prev->last_klen, s, sl) > 0) &&
            (!el || shale_key_compare(prev->last_key, prev->last_klen, e, el) < 0)) {
            rc = add_piece(w, ci, prev->last_key, prev->last_klen);
            acc = acc_meta = 0;
        }
        prev = h;
        acc += h->size;
        acc_meta += sst_meta(w, h);
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
        if (p->to) {   /* the cut key is read too: up to its successor */
            pe = w->p[i + 1].from;
            pel = w->p[i + 1].from_len;
        }
        p->meta = 2 * range_meta(w, m, ps, psl, pe, pel, p->to ? best : NULL);
    }
    return rc;
}

/* Key k in the parent (at the checkpoint) and in the child: both absent,
 * or both present with equal values (then counted). */
static shale_status compare_key(shale_reader *parent, shale_reader *child,
                                const split_child *c, const uint8_t *k, size_t kl,
                                uint64_t *count)
{
    void *pv = NULL, *cv = NULL;
    size_t pvl = 0, cvl = 0;
    char kt[200];
    shale_status prc = shale_reader_get(parent, k, kl, &pv, &pvl), crc = SHALE_OK;
    shale_status rc = SHALE_OK;
    if (prc && prc != SHALE_NOT_FOUND)
        rc = shale_error_prefix(prc, "verify: reading the parent's range of child %s", c->name);
    else if ((crc = shale_reader_get(child, k, kl, &cv, &cvl)) && crc != SHALE_NOT_FOUND)
        rc = shale_error_prefix(crc, "verify: reading child %s", c->name);
    else if (prc != crc)
        verify_key_text(k, kl, kt, sizeof kt);
    if (!rc && !prc && crc)
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s lacks key %s of its range", c->name,
                             kt);
    else if (!rc && prc && !crc)
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s holds key %s, which the parent does "
                                            "not have in the child's range", c->name, kt);
    else if (!rc && !prc && (pvl != cvl || memcmp(pv, cv, pvl))) {
        verify_key_text(k, kl, kt, sizeof kt);
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s returns a different value for key %s "
                                            "(%zu bytes; the parent %zu)", c->name, kt, cvl, pvl);
    } else if (!rc && !prc) {
        (*count)++;
    }
    free(pv);
    free(cv);
    return rc;
}

/* A piece's child reader, opened on a thread of its own beside the
 * parent's. */
typedef struct child_open {
    const split_child *c;
    uint64_t id;
    shale_options co;
    shale_reader *rd;
    shale_status rc;
    char msg[512];                   /* shale_errmsg() is per thread */
} child_open;

static void *child_open_run(void *arg)
{
    child_open *o = arg;
    /* A known version that cannot be read (gone, a read error) is no
     * verdict: the latest is read instead, as phase 1 does. */
    o->rc = o->id ? shale_reader_open_version(o->c->store, &o->co, o->id, &o->rd)
                  : SHALE_NOT_FOUND;
    if (o->rc)
        o->rc = shale_reader_open(o->c->store, &o->co, NULL, &o->rd);
    if (o->rc)
        snprintf(o->msg, sizeof o->msg, "%s", shale_errmsg());
    return NULL;
}

/* One piece: readers of its own, walked, closed.  Both readers are opened
 * at once and by id where the version is known -- the parent at the
 * version the checkpoint pins, the child at the version phase 1 found to
 * be its latest -- one GET each, so a piece's opens cost one round trip
 * (at their latest and at the checkpoint, one after the other: a LIST and
 * a GET or two each, and the child's WAL probe, 6 round trips). */
static shale_status walk_piece(walk *w, size_t i)
{
    const piece *p = &w->p[i];
    run *r = w->r;
    const split_child *c = &r->req->children[p->child];
    shale_options po = run_opts(r, parent_wal(r));
    po.block_cache = w->cache;
    child_open co = {.c = c, .id = w->child_ids ? w->child_ids[p->child] : 0,
                     .co = run_opts(r, c->wal_store)};
    co.co.block_cache = w->cache;
    pthread_t th;
    bool threaded = !pthread_create(&th, NULL, child_open_run, &co);
    shale_reader *parent = NULL, *child = NULL;
    shale_status rc = w->parent_id
                          ? shale_reader_open_version(parent_store(r), &po, w->parent_id, &parent)
                          : shale_reader_open(parent_store(r), &po, r->checkpoint_id, &parent);
    if (rc)
        rc = shale_error_prefix(rc, "verify: opening the parent at checkpoint %s",
                                r->checkpoint_id);
    if (threaded)
        pthread_join(th, NULL);
    else
        child_open_run(&co);
    child = co.rd;
    if (!rc && co.rc)
        rc = shale_error_set(co.rc, "verify: opening child %s: %s", c->name, co.msg);
    if (!rc) {
        rc = verify_compare(parent, child, c, p->from, p->from_len, p->to, p->to_len, 0, false,
                            &w->keys[i]);
        if (!rc && p->point)
            rc = compare_key(parent, child, c, p->to, p->to_len, &w->keys[i]);
    }
    shale_reader_close(child);
    shale_reader_close(parent);
    return rc;
}

/* A walker's scans read every block of their ranges: windows of 1 MiB
 * from the seek on (shale_thread_scan_readahead), where the engine's ramp
 * for short reads (two blocks alone, then 64 KiB doubling) cost about six
 * round trips per SST of a piece before its windows were that big. */
#define WALK_READAHEAD (1u << 20)

static void *walker(void *arg)
{
    walk *w = arg;
    shale_thread_scan_readahead(WALK_READAHEAD);
    for (size_t i; !atomic_load(&w->failed) && (i = atomic_fetch_add(&w->next, 1)) < w->n;) {
        if ((w->rcs[i] = walk_piece(w, i))) {
            snprintf(w->msgs[i], sizeof w->msgs[i], "%s", shale_errmsg());
            atomic_store(&w->failed, true);
        }
    }
    shale_thread_scan_readahead(0);   /* the splitter's worker walks too */
    return NULL;
}

shale_status verify_full_walk(run *r, shale_cache *cache, const shale_manifest_view *pinned,
                              const uint64_t *child_ids, uint64_t *keys, size_t *pieces,
                              size_t *walkers)
{
    *pieces = *walkers = 0;
    walk w;
    memset(&w, 0, sizeof w);
    const splitter_options *o = &r->sp->o;
    w.r = r;
    w.parent_id = pinned->id;
    w.child_ids = child_ids;
    w.cache = cache;
    w.piece_bytes = o->verify_piece_bytes ? o->verify_piece_bytes : VERIFY_PIECE_BYTES;
    uint64_t meta_bytes = o->verify_meta_bytes ? o->verify_meta_bytes : VERIFY_META_BUDGET;
    uint32_t max_threads = o->verify_threads ? o->verify_threads : VERIFY_FULL_THREADS;
    if (max_threads > VERIFY_MAX_THREADS)
        max_threads = VERIFY_MAX_THREADS;
    /* So that max_threads pieces fit the budget: two readers each, and
     * the SST after the piece's in each (as much again, at worst). */
    w.piece_meta = meta_bytes / 4 / max_threads;
    size_t nc = r->req->child_count;
    shale_status rc = sample_density(&w, pinned);
    for (size_t i = 0; i < nc && !rc; i++)
        rc = plan_child(&w, i, pinned);
    if (!rc && (!(w.keys = calloc(w.n ? w.n : 1, sizeof *w.keys)) ||
                !(w.rcs = calloc(w.n ? w.n : 1, sizeof *w.rcs)) ||
                !(w.msgs = calloc(w.n ? w.n : 1, sizeof *w.msgs))))
        rc = AGENT_OOM();
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
        /* And as many as their readahead fits: a walker's scan holds a
         * window of up to WALK_READAHEAD in every level it reads (each L0
         * SST and each sorted run of the pinned version). */
        uint64_t levels = pinned->l0_count + pinned->run_count;
        uint64_t ra_walkers = VERIFY_READAHEAD_BUDGET / (WALK_READAHEAD * (levels ? levels : 1));
        if (nthreads > ra_walkers)
            nthreads = ra_walkers;
        if (nthreads > w.n)
            nthreads = w.n;
        if (!nthreads)
            nthreads = 1;
        *pieces = w.n;
        *walkers = (size_t)nthreads;
        pthread_t th[VERIFY_MAX_THREADS];
        size_t started = 0;
        while (started + 1 < nthreads && !pthread_create(&th[started], NULL, walker, &w))
            started++;
        walker(&w);   /* this thread walks too */
        for (size_t t = 0; t < started; t++)
            pthread_join(th[t], NULL);
        for (size_t i = 0; i < w.n && !rc; i++)
            if (w.rcs[i] == SHALE_CORRUPT)
                rc = shale_error_set(w.rcs[i], "%s", w.msgs[i]);
        for (size_t i = 0; i < w.n && !rc; i++)
            if (w.rcs[i])
                rc = shale_error_set(w.rcs[i], "%s", w.msgs[i]);
    }
    for (size_t i = 0; i < nc; i++)
        keys[i] = 0;
    for (size_t i = 0; !rc && i < w.n; i++)
        keys[w.p[i].child] += w.keys[i];
    for (size_t i = 0; i < w.n; i++)
        free(w.p[i].from);
    free(w.p);
    free(w.keys);
    free(w.rcs);
    free(w.msgs);
    return rc;
}
