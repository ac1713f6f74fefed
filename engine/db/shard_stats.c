/*
 * shard_stats.c -- shard facts and balanced split points from metadata
 * (shale_admin.h).
 *
 * Both walk the latest manifest's SSTs (L0 and sorted runs, in whatever
 * store each lives: a clone's are its parent's) through index-only readers
 * (sst_reader_open_index: footer, index and properties; no filter, no data
 * block).  The index of an SST of format 2 gives every data block's last
 * key, stored size, entries and key+value bytes; block i of an SST covers
 * the keys (last[i-1], last[i]] (the first one from the SST's first key).
 * A block counts when that interval meets the visible range [rs, re); one
 * that crosses a bound counts in proportion (frac_below()).
 *
 * Within a block, keys are taken as spread evenly over the key space it
 * covers, compared as numbers on the 8 bytes after the interval's common
 * prefix: so the weight below any key K is exact for whole blocks and an
 * interpolation inside the one block of each SST that holds K.  That
 * matters where SSTs overlap (L0s, or L0 over a run): without it each SST
 * adds up to a block of error at every boundary.
 *
 * Split points: the candidates are the blocks' last keys inside (rs, re);
 * below(K) grows with K, so the boundary for share i is found by binary
 * search for the candidate whose weight below is nearest i/ways of the
 * total.  Cost: O(blocks log blocks) to sort, O(ways log blocks * SSTs *
 * log blocks) to choose.
 */
#include "shale_admin.h"
#include "db/manifest.h"
#include "db/env.h"
#include "db/paths.h"
#include "db/view.h"
#include "table/kv.h"
#include "table/sst.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdlib.h>
#include <string.h>

/* One SST's blocks that may hold keys of the visible range, in key order:
 * block i covers (last[i-1], last[i]] (the first one [start, last[0]]),
 * and cum[i] is the weight of blocks 0..i, clipped at the range bounds. */
typedef struct sst_pts {
    size_t n;
    uint8_t **last;
    size_t *lastlen;
    uint8_t *start;         /* the key before block 0 (or the SST's first key) */
    size_t startlen;
    long double *cum;
} sst_pts;

typedef struct walk {
    const manifest *m;
    shale_split_by by;
    sst_pts *ssts;
    size_t nssts;
    /* Facts, clipped at the range bounds. */
    long double stored, kv_bytes, keys;
    uint64_t blocks;
} walk;

static bool bound_set(const uint8_t *k, size_t len)
{
    return k && len;
}

static uint8_t *dup_bytes(const uint8_t *k, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p && len)
        memcpy(p, k, len);
    return p;
}

/* 8 bytes of key after the first `skip`, big-endian, zero-padded. */
static long double key_num(const uint8_t *k, size_t len, size_t skip)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (skip + i < len ? k[skip + i] : 0);
    return (long double)v;
}

/* Decimal digits where the three keys differ, as in "user%08u": the same
 * number of digits from p on in all three (up to 18) -- taken as numbers,
 * since their bytes would spread them unevenly ("150" lies 35 % of the way
 * from "111" to "222", but 1.5 % of the way in bytes). */
static size_t digit_run(const uint8_t *k, size_t len, size_t p)
{
    size_t n = 0;
    while (p + n < len && n < 18 && k[p + n] >= '0' && k[p + n] <= '9')
        n++;
    return n;
}

static long double digits_value(const uint8_t *k, size_t p, size_t n)
{
    long double v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (k[p + i] - '0');
    return v;
}

static bool digits_num(const uint8_t *s, size_t sl, const uint8_t *e, size_t el,
                       const uint8_t *k, size_t kl, size_t p, long double *a, long double *b,
                       long double *x)
{
    size_t n = digit_run(s, sl, p);
    if (!n || digit_run(e, el, p) != n || digit_run(k, kl, p) != n)
        return false;
    /* The common prefix may end inside the number ("k0001" .. "k0002"):
     * start the number where its digits start. */
    size_t q = p;
    while (q > 0 && s[q - 1] >= '0' && s[q - 1] <= '9' && p - q < 18 - n)
        q--;
    n += p - q;
    *a = digits_value(s, q, n);
    *b = digits_value(e, q, n);
    *x = digits_value(k, q, n);
    return true;
}

/* Share of the keys in (s, e] that are below k, taking them as spread
 * evenly over the key space between s and e (compared as numbers on the
 * 8 bytes after their common prefix).  0 when k <= s, 1 when k > e. */
static long double frac_below(const uint8_t *s, size_t sl, const uint8_t *e, size_t el,
                              const uint8_t *k, size_t kl)
{
    if (kv_key_cmp(k, kl, s, sl) <= 0)
        return 0;
    if (kv_key_cmp(k, kl, e, el) > 0)
        return 1;
    size_t p = 0;
    while (p < sl && p < el && s[p] == e[p])
        p++;
    long double a, b, x;
    if (!digits_num(s, sl, e, el, k, kl, p, &a, &b, &x)) {
        a = key_num(s, sl, p);
        b = key_num(e, el, p);
        x = key_num(k, kl, p);
    }
    if (b <= a)
        return 1;
    long double f = (x - a) / (b - a);
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

/* round(entries * part / whole) without overflow for any SST size. */
static uint64_t share(uint64_t entries, uint64_t part, uint64_t whole)
{
    return (uint64_t)((long double)entries * (long double)part / (long double)whole + 0.5L);
}

static void sst_pts_free(sst_pts *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->last[i]);
    free(p->last);
    free(p->lastlen);
    free(p->start);
    free(p->cum);
}

/* One SST: its blocks that may hold keys of the visible range. */
static shale_status walk_sst(walk *w, db_env *env, const sst_handle *h)
{
    if (!h->entries)
        return SHALE_OK;
    const manifest *m = w->m;
    const uint8_t *rs = m->range_start, *re = m->range_end;
    size_t rsl = m->range_start_len, rel = m->range_end_len;
    shale_objstore *s = NULL;
    shale_status rc = db_env_store(env, h->store_uri, &s);
    if (rc)
        return rc;
    char key[PATH_KEY_MAX];
    sst_key(h->id, key, sizeof key);
    sst_reader *r = NULL;
    if ((rc = sst_reader_open_index(s, key, h->size, &r)))
        return rc;
    size_t nb = sst_reader_block_count(r);
    uint64_t stored_total = 0;
    for (size_t i = 0; i < nb; i++) {
        sst_block_info b;
        sst_reader_block(r, i, &b);
        stored_total += b.stored_size;
    }
    sst_pts *p = &w->ssts[w->nssts];
    memset(p, 0, sizeof *p);
    p->last = calloc(nb ? nb : 1, sizeof *p->last);
    p->lastlen = calloc(nb ? nb : 1, sizeof *p->lastlen);
    p->cum = calloc(nb ? nb : 1, sizeof *p->cum);
    if (!p->last || !p->lastlen || !p->cum) {
        sst_pts_free(p);
        sst_reader_unref(r);
        return SHALE_OOM();
    }
    w->nssts++;
    const uint8_t *prev = h->first_key;
    size_t prevlen = h->first_klen;
    uint64_t cum_stored = 0;
    long double cum = 0;
    for (size_t i = 0; !rc && i < nb; i++) {
        sst_block_info b;
        sst_reader_block(r, i, &b);
        const uint8_t *s0 = prev;
        size_t s0l = prevlen;
        prev = b.last_key;
        prevlen = b.klen;
        uint64_t before = cum_stored;
        cum_stored += b.stored_size;
        if ((bound_set(rs, rsl) && kv_key_cmp(b.last_key, b.klen, rs, rsl) < 0) ||
            (bound_set(re, rel) && kv_key_cmp(s0, s0l, re, rel) >= 0))
            continue;
        /* The part of the block inside [rs, re). */
        long double in = 1;
        if (bound_set(rs, rsl))
            in -= frac_below(s0, s0l, b.last_key, b.klen, rs, rsl);
        if (bound_set(re, rel))
            in -= 1 - frac_below(s0, s0l, b.last_key, b.klen, re, rel);
        if (in < 0)
            in = 0;
        uint64_t keys = b.has_counts ? b.entries
                        : stored_total ? share(h->entries, cum_stored, stored_total) -
                                         share(h->entries, before, stored_total) : 0;
        uint64_t kvb = b.has_counts ? b.kv_bytes : b.stored_size;
        w->stored += in * b.stored_size;
        w->kv_bytes += in * kvb;
        w->keys += in * keys;
        w->blocks++;
        if (p->n == 0 && !(p->start = dup_bytes(s0, s0l)))
            rc = SHALE_OOM();
        p->startlen = s0l;
        if (!rc && !(p->last[p->n] = dup_bytes(b.last_key, b.klen)))
            rc = SHALE_OOM();
        if (rc)
            break;
        p->lastlen[p->n] = b.klen;
        cum += in * (w->by == SHALE_SPLIT_BY_KEYS ? keys : kvb);
        p->cum[p->n++] = cum;
    }
    sst_reader_unref(r);
    return rc;
}

static shale_status walk_all(walk *w, db_env *env)
{
    const manifest *m = w->m;
    size_t n = m->l0_count;
    for (size_t r = 0; r < m->run_count; r++)
        n += m->runs[r].count;
    w->ssts = calloc(n ? n : 1, sizeof *w->ssts);
    if (!w->ssts)
        return SHALE_OOM();
    shale_status rc = SHALE_OK;
    for (size_t i = 0; !rc && i < m->l0_count; i++)
        rc = walk_sst(w, env, &m->l0[i]);
    for (size_t r = 0; !rc && r < m->run_count; r++)
        for (size_t i = 0; !rc && i < m->runs[r].count; i++)
            rc = walk_sst(w, env, &m->runs[r].ssts[i]);
    return rc;
}

static void walk_free(walk *w)
{
    for (size_t i = 0; i < w->nssts; i++)
        sst_pts_free(&w->ssts[i]);
    free(w->ssts);
}

/* Weight of the keys below k in one SST: the blocks ending below k, and
 * the interpolated part of the block that holds k. */
static long double sst_below(const sst_pts *p, const uint8_t *k, size_t kl)
{
    size_t lo = 0, hi = p->n;   /* first block whose last key >= k */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_key_cmp(p->last[mid], p->lastlen[mid], k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->n)
        return p->n ? p->cum[p->n - 1] : 0;
    long double before = lo ? p->cum[lo - 1] : 0;
    const uint8_t *s = lo ? p->last[lo - 1] : p->start;
    size_t sl = lo ? p->lastlen[lo - 1] : p->startlen;
    return before + (p->cum[lo] - before) * frac_below(s, sl, p->last[lo], p->lastlen[lo], k, kl);
}

static long double below(const walk *w, const shale_key *k)
{
    long double t = 0;
    for (size_t i = 0; i < w->nssts; i++)
        t += sst_below(&w->ssts[i], k->data, k->len);
    return t;
}

/* The database's stores (one env, with the caller's options) and its
 * latest manifest. */
static shale_status load(const char *uri, const shale_options *opts, db_env **env,
                         manifest **m)
{
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is NULL");
    shale_status rc = db_env_open(uri, opts, env);
    if (!rc)
        rc = manifest_store_load_latest(db_env_main(*env), 0, m);
    if (!rc && !(*m)->initialized)
        rc = shale_err(SHALE_INVALID_ARGUMENT, "%s: the database is a clone still being made "
                                               "(initialized = false)", uri);
    return rc;
}

static void close_all(db_env *env, manifest *m)
{
    manifest_free(m);
    db_env_unref(env);
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
    db_env *env = NULL;
    manifest *m = NULL;
    shale_status rc = load(uri, opts, &env, &m);
    walk w = {0};
    if (!rc) {
        w.m = m;
        rc = walk_all(&w, env);
    }
    if (!rc) {
        out->manifest_id = m->id;
        out->bytes = (uint64_t)(w.stored + 0.5L);
        out->kv_bytes = (uint64_t)(w.kv_bytes + 0.5L);
        out->approx_keys = (uint64_t)(w.keys + 0.5L);
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
    close_all(env, m);
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

static int key_cmp(const void *a, const void *b)
{
    const shale_key *x = a, *y = b;
    return kv_key_cmp(x->data, x->len, y->data, y->len);
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
    db_env *env = NULL;
    manifest *m = NULL;
    shale_status rc = load(uri, opts, &env, &m);
    walk w = {0};
    w.by = by;
    shale_key *cand = NULL;
    size_t nc = 0;
    if (!rc) {
        w.m = m;
        rc = walk_all(&w, env);
    }
    if (rc)
        goto out;
    /* Candidates: every block's last key inside (rs, re), sorted, once. */
    size_t maxc = 0;
    for (size_t i = 0; i < w.nssts; i++)
        maxc += w.ssts[i].n;
    cand = calloc(maxc ? maxc : 1, sizeof *cand);
    if (!cand) {
        rc = SHALE_OOM();
        goto out;
    }
    for (size_t i = 0; i < w.nssts; i++)
        for (size_t b = 0; b < w.ssts[i].n; b++) {
            shale_key k = {w.ssts[i].last[b], w.ssts[i].lastlen[b]};
            if (!k.len || (bound_set(m->range_start, m->range_start_len) &&
                           kv_key_cmp(k.data, k.len, m->range_start, m->range_start_len) <= 0) ||
                (bound_set(m->range_end, m->range_end_len) &&
                 kv_key_cmp(k.data, k.len, m->range_end, m->range_end_len) >= 0))
                continue;
            cand[nc++] = k;   /* borrowed from w */
        }
    qsort(cand, nc, sizeof *cand, key_cmp);
    size_t u = 0;
    for (size_t i = 0; i < nc; i++)
        if (!u || key_cmp(&cand[u - 1], &cand[i]))
            cand[u++] = cand[i];
    nc = u;
    long double total = 0;
    for (size_t i = 0; i < w.nssts; i++)
        total += w.ssts[i].n ? w.ssts[i].cum[w.ssts[i].n - 1] : 0;
    out->ways = ways;
    out->by = by;
    out->total = (uint64_t)(total + 0.5L);
    out->boundaries = calloc(ways - 1, sizeof *out->boundaries);
    out->weights = calloc(ways, sizeof *out->weights);
    if (!out->boundaries || !out->weights) {
        rc = SHALE_OOM();
        goto out;
    }
    /* For share b, the candidate whose weight below it is nearest b/ways of
     * the total (below() grows with the key: binary search), past the
     * previous boundary. */
    size_t next = 0;
    long double left = 0;
    for (uint32_t b = 1; b < ways; b++) {
        long double target = total * b / ways;
        size_t lo = next, hi = nc;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (below(&w, &cand[mid]) < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t pick = lo;
        if (pick > next &&
            (pick == nc || target - below(&w, &cand[pick - 1]) < below(&w, &cand[pick]) - target))
            pick--;
        if (pick >= nc) {
            rc = shale_err(SHALE_INVALID_ARGUMENT,
                           "%s: too little data to split %u ways: %zu data blocks give no "
                           "boundary for share %u", uri, ways, nc, b);
            goto out;
        }
        if ((rc = key_copy(&out->boundaries[b - 1], cand[pick].data, cand[pick].len)))
            goto out;
        long double at = below(&w, &cand[pick]);
        out->weights[b - 1] = (uint64_t)(at - left + 0.5L);
        left = at;
        next = pick + 1;
    }
    out->weights[ways - 1] = (uint64_t)(total - left + 0.5L);
out:
    free(cand);
    walk_free(&w);
    close_all(env, m);
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
