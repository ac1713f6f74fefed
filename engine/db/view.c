/*
 * view.c -- read views, the store pool and the table cache (see view.h).
 *
 * Lookup order for a get: memtables (active, then frozen newest first), L0
 * newest first, then sorted runs newest first; the first version found with
 * seq <= max_seq wins (a tombstone means "not found").  An SST is skipped
 * when the key is outside its [first_key, last_key] or its bloom filter
 * rules the key out.  Keys outside the database's visible range (a clone's
 * range) are never returned, even if a referenced parent SST holds them.
 */
#include "db/view.h"
#include "db/paths.h"
#include "db/iter_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- views ---------------------------------------------------------- */

shale_status view_new(db_env *env, memtable **mems, size_t n, const manifest *m,
                      db_view **out)
{
    db_view *v = calloc(1, sizeof *v);
    if (!v)
        return SHALE_OOM();
    v->mems = calloc(n ? n : 1, sizeof *v->mems);
    v->man = manifest_dup(m);
    if (!v->mems || !v->man) {
        free(v->mems);
        manifest_free(v->man);
        free(v);
        return SHALE_OOM();
    }
    for (size_t i = 0; i < n; i++) {
        memtable_ref(mems[i]);
        v->mems[i] = mems[i];
    }
    v->mem_count = n;
    db_env_ref(env);
    v->env = env;
    atomic_init((_Atomic int *)&v->refs, 1);
    *out = v;
    return SHALE_OK;
}

void view_ref(db_view *v)
{
    atomic_fetch_add((_Atomic int *)&v->refs, 1);
}

void view_unref(db_view *v)
{
    if (!v || atomic_fetch_sub((_Atomic int *)&v->refs, 1) != 1)
        return;
    for (size_t i = 0; i < v->mem_count; i++)
        memtable_unref(v->mems[i]);
    free(v->mems);
    manifest_free(v->man);
    db_env_unref(v->env);
    free(v);
}

void view_fill_info(const manifest *m, shale_db_info *out)
{
    memset(out, 0, sizeof *out);
    out->manifest_id = m->id;
    out->writer_epoch = m->writer_epoch;
    out->compactor_epoch = m->compactor_epoch;
    out->replay_after_wal_id = m->replay_after_wal_id;
    out->next_wal_sst_id = m->next_wal_sst_id;
    out->last_l0_seq = m->last_l0_seq;
    out->last_seq = m->last_l0_seq;
    out->l0_count = (uint32_t)m->l0_count;
    out->sorted_run_count = (uint32_t)m->run_count;
    out->sst_count = m->l0_count;
    for (size_t i = 0; i < m->run_count; i++)
        out->sst_count += m->runs[i].count;
    out->initialized = m->initialized;
}

bool view_in_range(const manifest *m, const uint8_t *key, size_t klen)
{
    if (m->range_start && kv_key_cmp(key, klen, m->range_start, m->range_start_len) < 0)
        return false;
    if (m->range_end && kv_key_cmp(key, klen, m->range_end, m->range_end_len) >= 0)
        return false;
    return true;
}

static bool handle_may_hold(const sst_handle *h, const uint8_t *key, size_t klen)
{
    if (h->entries == 0 || !h->first_key)
        return false;
    return kv_key_cmp(key, klen, h->first_key, h->first_klen) >= 0 &&
           kv_key_cmp(key, klen, h->last_key, h->last_klen) <= 0;
}

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    buf_free(p);
    free(p);
}

static void scratch_init(void)
{
    pthread_key_create(&g_scratch_key, scratch_free);
}

/* This thread's scratch buffer, or NULL if none can be made. */
static shale_buf *thread_scratch(void)
{
    pthread_once(&g_scratch_once, scratch_init);
    shale_buf *b = pthread_getspecific(g_scratch_key);
    if (!b && (b = calloc(1, sizeof *b)) && pthread_setspecific(g_scratch_key, b)) {
        free(b);
        b = NULL;
    }
    return b;
}

/* Looks key up in one SST.  *found set when an entry (put or delete) is. */
static shale_status sst_lookup(db_view *v, const sst_handle *h, const uint8_t *key,
                               size_t klen, uint64_t max_seq, bool *found, void **val,
                               size_t *vlen)
{
    sst_reader *r = NULL;
    shale_status rc = db_env_sst(v->env, h, &r);
    if (rc)
        return rc;
    if (!sst_reader_may_contain(r, key, klen)) {
        sst_reader_unref(r);
        return SHALE_OK;
    }
    /* One scratch buffer per thread, kept between lookups (freed when the
     * thread exits): a point read then allocates only the value it returns. */
    shale_buf local = SHALE_BUF_INIT, *sb = thread_scratch();
    shale_buf *scratchp = sb ? sb : &local;
    kv_entry e;
    rc = sst_reader_get(r, key, klen, max_seq, &e, scratchp);
    if (rc == SHALE_NOT_FOUND) {
        rc = SHALE_OK;
    } else if (rc == SHALE_OK) {
        *found = true;
        if (e.kind == KV_PUT) {
            uint8_t *p = malloc(e.vlen ? e.vlen : 1);
            if (!p) {
                rc = SHALE_OOM();
            } else {
                if (e.vlen)
                    memcpy(p, e.val, e.vlen);
                *val = p;
                *vlen = e.vlen;
            }
        } else {
            rc = SHALE_NOT_FOUND;
        }
    }
    if (scratchp->cap > (1u << 20) || scratchp == &local)
        buf_free(scratchp);   /* do not pin a large value's memory */
    sst_reader_unref(r);
    return rc;
}

shale_status view_get(db_view *v, const uint8_t *key, size_t klen, uint64_t max_seq,
                      void **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (!view_in_range(v->man, key, klen))
        return SHALE_NOT_FOUND;
    for (size_t i = 0; i < v->mem_count; i++) {
        kv_entry e;
        if (memtable_get(v->mems[i], key, klen, max_seq, &e)) {
            if (e.kind != KV_PUT)
                return SHALE_NOT_FOUND;
            uint8_t *p = malloc(e.vlen ? e.vlen : 1);
            if (!p)
                return SHALE_OOM();
            if (e.vlen)
                memcpy(p, e.val, e.vlen);
            *val = p;
            *vlen = e.vlen;
            return SHALE_OK;
        }
    }
    bool found = false;
    const manifest *m = v->man;
    for (size_t i = 0; i < m->l0_count && !found; i++) {
        if (!handle_may_hold(&m->l0[i], key, klen))
            continue;
        shale_status rc = sst_lookup(v, &m->l0[i], key, klen, max_seq, &found, val, vlen);
        if (rc)
            return rc;
    }
    for (size_t r = 0; r < m->run_count && !found; r++) {
        const sorted_run *run = &m->runs[r];
        /* Binary search for the first SST whose last key >= key. */
        size_t lo = 0, hi = run->count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (kv_key_cmp(run->ssts[mid].last_key, run->ssts[mid].last_klen, key, klen) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < run->count && handle_may_hold(&run->ssts[lo], key, klen)) {
            shale_status rc = sst_lookup(v, &run->ssts[lo], key, klen, max_seq, &found, val,
                                         vlen);
            if (rc)
                return rc;
        }
    }
    return found ? SHALE_OK : SHALE_NOT_FOUND;
}

/* ---- run iterator: concatenation of a run's SSTs, opened lazily ------ */

typedef struct run_iter {
    kv_iter base;
    db_env *env;
    sorted_run run;          /* deep copy of the handles */
    size_t idx;              /* current SST */
    kv_iter *cur;
    sst_reader *reader;
    shale_status rc;
} run_iter;

static void ri_close_cur(run_iter *ri)
{
    kv_iter_destroy(ri->cur);
    ri->cur = NULL;
    sst_reader_unref(ri->reader);
    ri->reader = NULL;
}

static bool ri_open(run_iter *ri, size_t idx)
{
    ri_close_cur(ri);
    ri->idx = idx;
    if (idx >= ri->run.count)
        return false;
    shale_status rc = db_env_sst(ri->env, &ri->run.ssts[idx], &ri->reader);
    if (rc) {
        ri->rc = rc;
        return false;
    }
    ri->cur = sst_iter_new(ri->reader);
    if (!ri->cur) {
        ri->rc = SHALE_OOM();
        return false;
    }
    return true;
}

/* Moves forward over exhausted SSTs. */
static void ri_skip_empty(run_iter *ri)
{
    while (ri->cur && !kv_iter_valid(ri->cur)) {
        shale_status rc = kv_iter_status(ri->cur);
        if (rc) {
            ri->rc = rc;
            ri_close_cur(ri);
            return;
        }
        if (!ri_open(ri, ri->idx + 1))
            return;
        kv_iter_seek_first(ri->cur);
    }
}

static void ri_seek_first(kv_iter *it)
{
    run_iter *ri = (run_iter *)it;
    ri->rc = SHALE_OK;
    if (ri_open(ri, 0)) {
        kv_iter_seek_first(ri->cur);
        ri_skip_empty(ri);
    }
}

static void ri_seek(kv_iter *it, const uint8_t *key, size_t klen)
{
    run_iter *ri = (run_iter *)it;
    ri->rc = SHALE_OK;
    size_t lo = 0, hi = ri->run.count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sst_handle *h = &ri->run.ssts[mid];
        if (kv_key_cmp(h->last_key, h->last_klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (ri_open(ri, lo)) {
        kv_iter_seek(ri->cur, key, klen);
        ri_skip_empty(ri);
    }
}

static void ri_next(kv_iter *it)
{
    run_iter *ri = (run_iter *)it;
    kv_iter_next(ri->cur);
    ri_skip_empty(ri);
}

static bool ri_valid(const kv_iter *it)
{
    const run_iter *ri = (const run_iter *)it;
    return ri->rc == SHALE_OK && ri->cur && kv_iter_valid(ri->cur);
}

static void ri_entry(const kv_iter *it, kv_entry *e)
{
    kv_iter_entry(((const run_iter *)it)->cur, e);
}

static shale_status ri_status(const kv_iter *it)
{
    const run_iter *ri = (const run_iter *)it;
    if (ri->rc)
        return ri->rc;
    return ri->cur ? kv_iter_status(ri->cur) : SHALE_OK;
}

static void ri_destroy(kv_iter *it)
{
    run_iter *ri = (run_iter *)it;
    ri_close_cur(ri);
    for (size_t i = 0; i < ri->run.count; i++)
        sst_handle_clear(&ri->run.ssts[i]);
    free(ri->run.ssts);
    free(ri);
}

static const kv_iter_ops run_iter_ops = {ri_seek_first, ri_seek, ri_next, ri_valid,
                                         ri_entry, ri_status, ri_destroy};

kv_iter *run_iter_new(db_env *env, const sorted_run *run)
{
    run_iter *ri = calloc(1, sizeof *ri);
    if (!ri)
        return NULL;
    ri->base.ops = &run_iter_ops;
    ri->env = env;
    ri->run.id = run->id;
    ri->run.ssts = calloc(run->count ? run->count : 1, sizeof *ri->run.ssts);
    if (!ri->run.ssts) {
        free(ri);
        return NULL;
    }
    for (size_t i = 0; i < run->count; i++) {
        if (sst_handle_copy(&ri->run.ssts[i], &run->ssts[i])) {
            ri->run.count = i;
            ri_destroy(&ri->base);
            return NULL;
        }
    }
    ri->run.count = run->count;
    return &ri->base;
}

/* ---- scans ------------------------------------------------------------ */

/* Does an SST (or a run, from its first SST's first key to its last's
 * last) hold keys in [start, end)?  NULL bounds are open. */
static bool overlaps(const uint8_t *first, size_t flen, const uint8_t *last, size_t llen,
                     const uint8_t *start, size_t slen, const uint8_t *end, size_t elen)
{
    if (!first || !last)
        return false;   /* empty */
    if (start && kv_key_cmp(last, llen, start, slen) < 0)
        return false;
    if (end && kv_key_cmp(first, flen, end, elen) >= 0)
        return false;
    return true;
}

shale_status view_internal_iter(db_view *v, bool include_mems, kv_iter **out)
{
    return view_internal_iter_range(v, include_mems, NULL, 0, NULL, 0, out);
}

shale_status view_internal_iter_range(db_view *v, bool include_mems, const uint8_t *start,
                                      size_t slen, const uint8_t *end, size_t elen,
                                      kv_iter **out)
{
    const manifest *m = v->man;
    size_t n = (include_mems ? v->mem_count : 0) + m->l0_count + m->run_count;
    kv_iter **kids = calloc(n ? n : 1, sizeof *kids);
    if (!kids)
        return SHALE_OOM();
    size_t k = 0;
    shale_status rc = SHALE_OK;
    for (size_t i = 0; include_mems && i < v->mem_count && !rc; i++)
        if (!(kids[k++] = memtable_iter_new(v->mems[i])))
            rc = SHALE_OOM();
    for (size_t i = 0; i < m->l0_count && !rc; i++) {
        const sst_handle *h = &m->l0[i];
        /* An SST wholly outside the scan's bounds is not opened: opening
         * one costs its index's GET on a cold cache, for no key. */
        if ((start || end) && h->entries &&
            !overlaps(h->first_key, h->first_klen, h->last_key, h->last_klen, start, slen, end,
                      elen))
            continue;
        sst_reader *r = NULL;
        rc = db_env_sst(v->env, &m->l0[i], &r);
        if (rc)
            break;
        kids[k] = sst_iter_new(r);
        sst_reader_unref(r);  /* the iterator holds its own reference */
        if (!kids[k++])
            rc = SHALE_OOM();
    }
    for (size_t i = 0; i < m->run_count && !rc; i++) {
        const sorted_run *run = &m->runs[i];
        if ((start || end) && run->count &&
            !overlaps(run->ssts[0].first_key, run->ssts[0].first_klen,
                      run->ssts[run->count - 1].last_key, run->ssts[run->count - 1].last_klen,
                      start, slen, end, elen))
            continue;
        if (!(kids[k++] = run_iter_new(v->env, run)))
            rc = SHALE_OOM();
    }
    if (rc) {
        for (size_t i = 0; i < k; i++)
            kv_iter_destroy(kids[i]);
        free(kids);
        return rc;
    }
    kv_iter *merged = merge_iter_new(kids, k);
    free(kids);
    if (!merged)
        return SHALE_OOM();
    *out = merged;
    return SHALE_OK;
}

static void release_view(void *ctx)
{
    view_unref(ctx);
}

shale_status view_scan(db_view *v, uint64_t max_seq, const uint8_t *start, size_t slen,
                       const uint8_t *end, size_t elen, shale_iter **out)
{
    const manifest *m = v->man;
    if (!start || !slen) {
        start = NULL;
        slen = 0;
    }
    if (!end || !elen) {
        end = NULL;
        elen = 0;
    }
    /* Intersect [start, end) with the visible range. */
    if (m->range_start && (!start || kv_key_cmp(start, slen, m->range_start,
                                                m->range_start_len) < 0)) {
        start = m->range_start;
        slen = m->range_start_len;
    }
    if (m->range_end && (!end || kv_key_cmp(end, elen, m->range_end, m->range_end_len) > 0)) {
        end = m->range_end;
        elen = m->range_end_len;
    }
    kv_iter *internal = NULL;
    shale_status rc = view_internal_iter_range(v, true, start, slen, end, elen, &internal);
    if (rc)
        return rc;
    view_ref(v);
    return user_iter_new(internal, max_seq, start, slen, end, elen, release_view, v, out);
}
