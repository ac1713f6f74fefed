/*
 * shard_stats.c -- shard facts and balanced split points from metadata
 * (shale_admin.h).
 *
 * Both walk the latest manifest's SSTs (L0 and sorted runs, in whatever
 * store each lives: a clone's are its parent's) through index-only readers
 * (sst_reader_open_index: footer, index and properties; no filter, no data
 * block).  Each data block becomes a point: its last user key and a weight
 * (stored bytes, or the SST's entries spread over its blocks by size).  A
 * block counts when it may hold keys of the visible range [rs, re): its
 * last key >= rs and the key before it (the previous block's last key, or
 * the SST's first key for the first block) < re.  Blocks straddling a
 * bound count whole: the error is at most one block per bound per SST.
 *
 * Split points sort the points by key (ties by weight then SST order, so
 * the answer is stable) and walk the running weight; the boundary for
 * share i is the point whose running total is nearest i/ways of the whole.
 * A boundary key K puts the block ending at K on the left except K itself:
 * one key's worth of error, against a block's worth of granularity.
 */
#include "shale_admin.h"
#include "db/manifest.h"
#include "db/view.h"
#include "table/kv.h"
#include "table/sst.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct point {
    uint8_t *key;       /* owned copy */
    size_t klen;
    uint64_t weight;
    uint64_t order;     /* SST order then block index: ties broken stably */
} point;

typedef struct walk {
    const manifest *m;
    shale_split_by by;
    point *pts;
    size_t n, cap;
    uint64_t bytes, keys, blocks;
    bool want_points;
} walk;

static bool bound_set(const uint8_t *k, size_t len)
{
    return k && len;
}

static shale_status add_point(walk *w, const uint8_t *key, size_t klen, uint64_t weight,
                              uint64_t order)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        point *np = realloc(w->pts, cap * sizeof *np);
        if (!np)
            return SHALE_OOM();
        w->pts = np;
        w->cap = cap;
    }
    point *p = &w->pts[w->n];
    p->key = malloc(klen ? klen : 1);
    if (!p->key)
        return SHALE_OOM();
    memcpy(p->key, key, klen);
    p->klen = klen;
    p->weight = weight;
    p->order = order;
    w->n++;
    return SHALE_OK;
}

/* round(entries * part / whole) without overflow for any SST size. */
static uint64_t share(uint64_t entries, uint64_t part, uint64_t whole)
{
    return (uint64_t)((long double)entries * (long double)part / (long double)whole + 0.5L);
}

/* One SST: its blocks that may hold keys of the visible range. */
static shale_status walk_sst(walk *w, db_env *env, const sst_handle *h, uint64_t sst_no)
{
    if (!h->entries)
        return SHALE_OK;
    const manifest *m = w->m;
    shale_objstore *s = NULL;
    shale_status rc = db_env_store(env, h->store_uri, &s);
    if (rc)
        return rc;
    char key[64];
    sst_key(h->id, key, sizeof key);
    sst_reader *r = NULL;
    if ((rc = sst_reader_open_index(s, key, h->size, &r)))
        return rc;
    size_t nb = sst_reader_block_count(r);
    uint64_t stored_total = 0;
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *k;
        size_t kl;
        uint64_t sz;
        sst_reader_block(r, i, &k, &kl, &sz);
        stored_total += sz;
    }
    const uint8_t *prev = h->first_key;
    size_t prevlen = h->first_klen;
    uint64_t cum_stored = 0;
    for (size_t i = 0; !rc && i < nb; i++) {
        const uint8_t *k;
        size_t kl;
        uint64_t sz;
        sst_reader_block(r, i, &k, &kl, &sz);
        bool in = true;
        if (bound_set(m->range_start, m->range_start_len) &&
            kv_key_cmp(k, kl, m->range_start, m->range_start_len) < 0)
            in = false;
        if (bound_set(m->range_end, m->range_end_len) &&
            kv_key_cmp(prev, prevlen, m->range_end, m->range_end_len) >= 0)
            in = false;
        prev = k;
        prevlen = kl;
        uint64_t cum_before = cum_stored;
        cum_stored += sz;
        if (!in)
            continue;
        /* Entries spread over blocks by stored size, rounded so that the
         * blocks of an SST add up to its entries: block i gets the share up
         * to its end minus the share up to its start. */
        uint64_t keys = stored_total ? share(h->entries, cum_stored, stored_total) -
                                       share(h->entries, cum_before, stored_total) : 0;
        w->bytes += sz;
        w->keys += keys;
        w->blocks++;
        if (w->want_points)
            rc = add_point(w, k, kl, w->by == SHALE_SPLIT_BY_KEYS ? keys : sz,
                           (sst_no << 32) | i);
    }
    sst_reader_unref(r);
    return rc;
}

static shale_status walk_all(walk *w, db_env *env)
{
    const manifest *m = w->m;
    uint64_t no = 0;
    shale_status rc = SHALE_OK;
    for (size_t i = 0; !rc && i < m->l0_count; i++)
        rc = walk_sst(w, env, &m->l0[i], no++);
    for (size_t r = 0; !rc && r < m->run_count; r++)
        for (size_t i = 0; !rc && i < m->runs[r].count; i++)
            rc = walk_sst(w, env, &m->runs[r].ssts[i], no++);
    return rc;
}

static void walk_free(walk *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->pts[i].key);
    free(w->pts);
}

/* Opens the database's store and its latest manifest. */
static shale_status load(const char *uri, const shale_options *opts, shale_objstore **s,
                         db_env **env, manifest **m)
{
    shale_options d;
    if (!opts) {
        shale_options_init(&d);
        opts = &d;
    }
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is NULL");
    shale_status rc = shale_objstore_open(uri, &opts->store, s);
    if (!rc)
        rc = manifest_store_load_latest(*s, 0, m);
    if (!rc && !(*m)->initialized)
        rc = shale_err(SHALE_INVALID_ARGUMENT, "%s: the database is a clone still being made "
                                               "(initialized = false)", uri);
    if (!rc)
        rc = db_env_new(*s, opts, env);
    return rc;
}

static void close_all(shale_objstore *s, db_env *env, manifest *m)
{
    db_env_free(env);
    manifest_free(m);
    shale_objstore_close(s);
}

static shale_status key_copy(shale_key *dst, const uint8_t *k, size_t len)
{
    dst->data = NULL;
    dst->len = 0;
    if (!k || !len)
        return SHALE_OK;
    if (!(dst->data = malloc(len)))
        return SHALE_OOM();
    memcpy(dst->data, k, len);
    dst->len = len;
    return SHALE_OK;
}

shale_status shale_shard_info_get(const char *uri, const shale_options *opts,
                                  shale_shard_info *out)
{
    memset(out, 0, sizeof *out);
    shale_objstore *s = NULL;
    db_env *env = NULL;
    manifest *m = NULL;
    shale_status rc = load(uri, opts, &s, &env, &m);
    walk w = {0};
    if (!rc) {
        w.m = m;
        rc = walk_all(&w, env);
    }
    if (!rc) {
        out->manifest_id = m->id;
        out->bytes = w.bytes;
        out->approx_keys = w.keys;
        out->data_blocks = w.blocks;
        out->l0_count = (uint32_t)m->l0_count;
        out->sorted_run_count = (uint32_t)m->run_count;
        out->sst_count = m->l0_count;
        for (size_t r = 0; r < m->run_count; r++)
            out->sst_count += m->runs[r].count;
        out->replay_after_wal_id = m->replay_after_wal_id;
        out->next_wal_sst_id = m->next_wal_sst_id;
        out->initialized = m->initialized;
        rc = key_copy(&out->range_start, m->range_start, m->range_start_len);
        if (!rc)
            rc = key_copy(&out->range_end, m->range_end, m->range_end_len);
    }
    walk_free(&w);
    close_all(s, env, m);
    if (rc)
        shale_shard_info_clear(out);
    return rc;
}

void shale_shard_info_clear(shale_shard_info *i)
{
    if (!i)
        return;
    free(i->range_start.data);
    free(i->range_end.data);
    memset(i, 0, sizeof *i);
}

static int point_cmp(const void *a, const void *b)
{
    const point *x = a, *y = b;
    int c = kv_key_cmp(x->key, x->klen, y->key, y->klen);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

shale_status shale_split_points_get(const char *uri, const shale_options *opts, uint32_t ways,
                                    shale_split_by by, shale_split_points *out)
{
    memset(out, 0, sizeof *out);
    if (ways < 2 || ways > 1024)
        return shale_err(SHALE_INVALID_ARGUMENT, "split points: ways must be 2..1024, not %u",
                         ways);
    if (by != SHALE_SPLIT_BY_BYTES && by != SHALE_SPLIT_BY_KEYS)
        return shale_err(SHALE_INVALID_ARGUMENT, "split points: unknown measure %d", (int)by);
    shale_objstore *s = NULL;
    db_env *env = NULL;
    manifest *m = NULL;
    shale_status rc = load(uri, opts, &s, &env, &m);
    walk w = {0};
    w.by = by;
    w.want_points = true;
    if (!rc) {
        w.m = m;
        rc = walk_all(&w, env);
    }
    if (rc)
        goto out;
    qsort(w.pts, w.n, sizeof *w.pts, point_cmp);
    uint64_t total = 0;
    for (size_t i = 0; i < w.n; i++)
        total += w.pts[i].weight;
    out->ways = ways;
    out->by = by;
    out->total = total;
    out->boundaries = calloc(ways - 1, sizeof *out->boundaries);
    out->weights = calloc(ways, sizeof *out->weights);
    if (!out->boundaries || !out->weights) {
        rc = SHALE_OOM();
        goto out;
    }
    /* pre[i]: weight of points [0, i] -- the left child's weight if the
     * boundary is point i's key. */
    uint64_t *pre = malloc((w.n ? w.n : 1) * sizeof *pre);
    if (!pre) {
        rc = SHALE_OOM();
        goto out;
    }
    for (size_t i = 0, c = 0; i < w.n; i++)
        pre[i] = (c += w.pts[i].weight);
    size_t next = 0;        /* first point a boundary may use */
    uint64_t left = 0;      /* weight left of the previous boundary */
    for (uint32_t b = 1; b < ways && !rc; b++) {
        double target = (double)total * b / ways;
        /* The point whose running total is nearest the target, at or after
         * next (binary search for the first pre >= target, then compare it
         * with the one before). */
        size_t lo = next, hi = w.n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if ((double)pre[mid] < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t pick = lo;
        if (pick > next && (pick == w.n ||
                            target - (double)pre[pick - 1] < (double)pre[pick] - target))
            pick--;
        /* Strictly above the previous boundary (points may share a key
         * across SSTs), above the range start, not the empty key. */
        while (pick < w.n &&
               ((b > 1 && kv_key_cmp(w.pts[pick].key, w.pts[pick].klen,
                                      out->boundaries[b - 2].data,
                                      out->boundaries[b - 2].len) <= 0) ||
                (bound_set(m->range_start, m->range_start_len) &&
                 kv_key_cmp(w.pts[pick].key, w.pts[pick].klen, m->range_start,
                            m->range_start_len) <= 0) ||
                w.pts[pick].klen == 0))
            pick++;
        if (pick >= w.n || (bound_set(m->range_end, m->range_end_len) &&
                            kv_key_cmp(w.pts[pick].key, w.pts[pick].klen, m->range_end,
                                       m->range_end_len) >= 0)) {
            rc = shale_err(SHALE_INVALID_ARGUMENT,
                           "%s: too little data to split %u ways: %zu data blocks give no "
                           "boundary for share %u", uri, ways, w.n, b);
            break;
        }
        if ((rc = key_copy(&out->boundaries[b - 1], w.pts[pick].key, w.pts[pick].klen)))
            break;
        out->weights[b - 1] = pre[pick] - left;
        left = pre[pick];
        next = pick + 1;
    }
    free(pre);
    if (!rc)
        out->weights[ways - 1] = total - left;
out:
    walk_free(&w);
    close_all(s, env, m);
    if (rc)
        shale_split_points_clear(out);
    return rc;
}

void shale_split_points_clear(shale_split_points *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; p->boundaries && i + 1 < p->ways; i++)
        free(p->boundaries[i].data);
    free(p->boundaries);
    free(p->weights);
    memset(p, 0, sizeof *p);
}

char *shale_key_escape(const void *key, size_t len)
{
    return manifest_key_escape(key, len);
}

uint8_t *shale_key_unescape(const char *text, size_t *len)
{
    return manifest_key_unescape(text, len);
}
