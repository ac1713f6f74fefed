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
#include "db/iter_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TC_BUCKETS 1024

typedef struct tc_entry {
    char *uri;              /* NULL = main store */
    char id[27];
    sst_reader *reader;
    struct tc_entry *next;
} tc_entry;

typedef struct pool_entry {
    char *uri;
    shale_objstore *store;
} pool_entry;

struct db_env {
    shale_objstore *main;
    shale_objstore_options store_opts;
    block_cache *cache;
    bool own_cache;            /* false: the caller's shared cache */
    pthread_mutex_t mu;
    pool_entry *pool; size_t pool_count, pool_cap;
    tc_entry *buckets[TC_BUCKETS];
};

void sst_key(const char *id, char *buf, size_t n)
{
    snprintf(buf, n, "compacted/%s.sst", id);
}

shale_status db_env_new(shale_objstore *main, const shale_options *opts, db_env **out)
{
    db_env *e = calloc(1, sizeof *e);
    if (!e)
        return SHALE_OOM();
    e->main = main;
    e->store_opts = opts->store;
    /* Strings in store options are borrowed only for the open call; the
     * pool opens parent stores later, so keep only what has no strings:
     * S3 settings come from the environment for parent stores too. */
    e->store_opts.s3_endpoint = NULL;
    e->store_opts.s3_region = NULL;
    e->store_opts.s3_access_key = NULL;
    e->store_opts.s3_secret_key = NULL;
    e->store_opts.s3_session_token = NULL;
    e->store_opts.s3_ca_file = NULL;   /* parents fall back to AWS_CA_BUNDLE */
    e->own_cache = !opts->block_cache;
    e->cache = opts->block_cache ? opts->block_cache : block_cache_new(opts->block_cache_bytes);
    pthread_mutex_init(&e->mu, NULL);
    *out = e;
    return SHALE_OK;
}

void db_env_free(db_env *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < TC_BUCKETS; i++) {
        tc_entry *t = e->buckets[i];
        while (t) {
            tc_entry *n = t->next;
            sst_reader_unref(t->reader);
            free(t->uri);
            free(t);
            t = n;
        }
    }
    for (size_t i = 0; i < e->pool_count; i++) {
        shale_objstore_close(e->pool[i].store);
        free(e->pool[i].uri);
    }
    free(e->pool);
    if (e->own_cache)
        block_cache_free(e->cache);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

block_cache *db_env_cache(db_env *e)
{
    return e->cache;
}

static bool same_uri(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Called with e->mu held. */
static shale_status env_store_locked(db_env *e, const char *uri, shale_objstore **out)
{
    if (!uri || !strcmp(uri, shale_objstore_uri(e->main))) {
        *out = e->main;
        return SHALE_OK;
    }
    for (size_t i = 0; i < e->pool_count; i++)
        if (!strcmp(e->pool[i].uri, uri)) {
            *out = e->pool[i].store;
            return SHALE_OK;
        }
    if (e->pool_count == e->pool_cap) {
        size_t cap = e->pool_cap ? e->pool_cap * 2 : 4;
        pool_entry *p = realloc(e->pool, cap * sizeof *p);
        if (!p)
            return SHALE_OOM();
        e->pool = p;
        e->pool_cap = cap;
    }
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(uri, &e->store_opts, &s);
    if (rc)
        return shale_err_prefix(rc, "opening parent store %s", uri);
    char *u = xstrdup(uri);
    if (!u) {
        shale_objstore_close(s);
        return SHALE_OOM();
    }
    e->pool[e->pool_count++] = (pool_entry){u, s};
    *out = s;
    return SHALE_OK;
}

shale_status db_env_store(db_env *e, const char *uri, shale_objstore **out)
{
    pthread_mutex_lock(&e->mu);
    shale_status rc = env_store_locked(e, uri, out);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static size_t tc_bucket(const char *uri, const char *id)
{
    uint64_t h = XXH3_64bits(id, strlen(id));
    if (uri)
        h ^= XXH3_64bits(uri, strlen(uri)) * 31;
    return (size_t)(h % TC_BUCKETS);
}

shale_status db_env_sst(db_env *e, const sst_handle *h, sst_reader **out)
{
    const char *uri = h->store_uri;
    if (uri && !strcmp(uri, shale_objstore_uri(e->main)))
        uri = NULL;
    size_t b = tc_bucket(uri, h->id);
    pthread_mutex_lock(&e->mu);
    for (tc_entry *t = e->buckets[b]; t; t = t->next)
        if (!strcmp(t->id, h->id) && same_uri(t->uri, uri)) {
            sst_reader_ref(t->reader);
            *out = t->reader;
            pthread_mutex_unlock(&e->mu);
            return SHALE_OK;
        }
    shale_objstore *s = NULL;
    shale_status rc = env_store_locked(e, uri, &s);
    pthread_mutex_unlock(&e->mu);
    if (rc)
        return rc;
    /* Open outside the lock: it does I/O.  A racing opener may insert the
     * same SST; the loser's reader is dropped below. */
    char key[64];
    sst_key(h->id, key, sizeof key);
    sst_reader *r = NULL;
    rc = sst_reader_open(s, key, h->size, e->cache, &r);
    if (rc)
        return rc;
    tc_entry *t = calloc(1, sizeof *t);
    if (!t || (uri && !(t->uri = xstrdup(uri)))) {
        free(t);
        *out = r;  /* usable, just not cached */
        return SHALE_OK;
    }
    memcpy(t->id, h->id, sizeof t->id);
    t->reader = r;
    pthread_mutex_lock(&e->mu);
    for (tc_entry *o = e->buckets[b]; o; o = o->next)
        if (!strcmp(o->id, h->id) && same_uri(o->uri, uri)) {
            sst_reader_ref(o->reader);
            *out = o->reader;
            pthread_mutex_unlock(&e->mu);
            sst_reader_unref(r);
            free(t->uri);
            free(t);
            return SHALE_OK;
        }
    t->next = e->buckets[b];
    e->buckets[b] = t;
    sst_reader_ref(r);
    *out = r;
    pthread_mutex_unlock(&e->mu);
    return SHALE_OK;
}

static bool manifest_names(const manifest *m, const tc_entry *t, const char *main_uri)
{
    const char *tu = t->uri ? t->uri : main_uri;
    for (size_t i = 0; i < m->l0_count; i++) {
        const sst_handle *h = &m->l0[i];
        if (!strcmp(h->id, t->id) && !strcmp(h->store_uri ? h->store_uri : main_uri, tu))
            return true;
    }
    for (size_t r = 0; r < m->run_count; r++)
        for (size_t i = 0; i < m->runs[r].count; i++) {
            const sst_handle *h = &m->runs[r].ssts[i];
            if (!strcmp(h->id, t->id) && !strcmp(h->store_uri ? h->store_uri : main_uri, tu))
                return true;
        }
    return false;
}

void db_env_retain_only(db_env *e, const manifest *m)
{
    const char *main_uri = shale_objstore_uri(e->main);
    pthread_mutex_lock(&e->mu);
    for (size_t b = 0; b < TC_BUCKETS; b++) {
        tc_entry **pp = &e->buckets[b];
        while (*pp) {
            tc_entry *t = *pp;
            if (!manifest_names(m, t, main_uri)) {
                *pp = t->next;
                sst_reader_unref(t->reader);  /* views still reading hold refs */
                free(t->uri);
                free(t);
            } else {
                pp = &t->next;
            }
        }
    }
    pthread_mutex_unlock(&e->mu);
}

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

shale_status view_internal_iter(db_view *v, bool include_mems, kv_iter **out)
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
        sst_reader *r = NULL;
        rc = db_env_sst(v->env, &m->l0[i], &r);
        if (rc)
            break;
        kids[k] = sst_iter_new(r);
        sst_reader_unref(r);  /* the iterator holds its own reference */
        if (!kids[k++])
            rc = SHALE_OOM();
    }
    for (size_t i = 0; i < m->run_count && !rc; i++)
        if (!(kids[k++] = run_iter_new(v->env, &m->runs[i])))
            rc = SHALE_OOM();
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
    shale_status rc = view_internal_iter(v, true, &internal);
    if (rc)
        return rc;
    view_ref(v);
    return user_iter_new(internal, max_seq, start, slen, end, elen, release_view, v, out);
}
