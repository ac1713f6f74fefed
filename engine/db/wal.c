/*
 * wal.c -- the WAL's format (wal.h): keys, encoding, reading a range.
 *
 * Replay reads ids replay_after_wal_id+1, +2, ... until the first missing
 * one.  Ids below the manifest's next_wal_sst_id were written by an earlier
 * writer and must exist; a missing one fails with SHALE_NOT_FOUND naming
 * the object, since silently stopping there would lose data.
 */
#include "db/wal.h"
#include "table/sst.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shale_status wal_log_enable(const char *wal_uri, const shale_objstore_options *o)
{
    if (o->fs_wal_log < 0)
        return SHALE_OK;
    if (!strncmp(wal_uri, "fault+", 6))
        wal_uri += 6;  /* the directory under the wrapper */
    if (strncmp(wal_uri, "file://", 7))
        return SHALE_OK;
    /* A handle of its own opened with the option makes the directory; the
     * database's handles see it on their next WAL call. */
    shale_objstore_options lo = *o;
    lo.fs_wal_log = 1;
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(wal_uri, &lo, &s);
    shale_objstore_close(s);
    return rc ? shale_err_prefix(rc, "turning the WAL log mode on") : SHALE_OK;
}

wal_buf *wal_buf_new(void)
{
    return calloc(1, sizeof(wal_buf));
}

void wal_buf_free(wal_buf *b)
{
    if (!b)
        return;
    free(b->recs);
    buf_free(&b->bytes);
    free(b);
}

shale_status wal_buf_add(wal_buf *b, const kv_entry *e)
{
    if (e->klen > UINT32_MAX || e->vlen > UINT32_MAX)
        return shale_err(SHALE_INVALID_ARGUMENT, "WAL entry of %zu + %zu bytes is too big",
                         e->klen, e->vlen);
    if (b->count == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        wal_rec *nr = realloc(b->recs, nc * sizeof *nr);
        if (!nr)
            return SHALE_OOM();
        b->recs = nr;
        b->cap = nc;
    }
    size_t off = b->bytes.len;
    shale_status rc = buf_reserve(&b->bytes, e->klen + e->vlen);
    if (rc)
        return rc;
    if (e->klen)
        memcpy(b->bytes.data + off, e->key, e->klen);
    if (e->vlen)
        memcpy(b->bytes.data + off + e->klen, e->val, e->vlen);
    b->bytes.len = off + e->klen + e->vlen;
    b->recs[b->count++] = (wal_rec){e->seq, off, (uint32_t)e->klen, (uint32_t)e->vlen, e->kind};
    return SHALE_OK;
}

static int entry_cmp(const void *a, const void *b)
{
    return kv_cmp(a, b);
}

/* The sort key of one entry: its first 16 key bytes as two big-endian
 * words (zero-padded), and where it is in the buffer. */
typedef struct sort_rec {
    uint64_t p0, p1;
    uint32_t idx;
} sort_rec;

static uint64_t be_prefix(const uint8_t *k, size_t klen, size_t at)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (at + i < klen ? k[at + i] : 0);
    return v;
}

static uint8_t digit_of(const sort_rec *r, int d)   /* d 0: the last key byte */
{
    return (uint8_t)(d < 8 ? r->p1 >> (8 * d) : r->p0 >> (8 * (d - 8)));
}

/* Sorts es[0..n) into internal order (kv_cmp: key ascending, seq
 * descending).  qsort with kv_cmp was 40 % of a raw WAL encode (perf on
 * 4 MiB buffers of 100 B values): an LSD radix sort on the 16-byte key
 * prefix instead, passes skipped where every key has the same byte (the
 * leading bytes of decimal keys), then kv_cmp only within runs of equal
 * prefix (keys written twice in one buffer, or longer shared prefixes).
 * NULL on out of memory. */
static kv_entry *sort_entries(kv_entry *es, size_t n)
{
    if (n < 64 || n > UINT32_MAX) {
        if (n > 1)
            qsort(es, n, sizeof *es, entry_cmp);
        return es;
    }
    sort_rec *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    size_t (*hist)[256] = calloc(16, sizeof *hist);
    kv_entry *out = malloc(n * sizeof *out);
    if (!a || !b || !hist || !out) {
        free(a), free(b), free(hist), free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = (sort_rec){be_prefix(es[i].key, es[i].klen, 0),
                          be_prefix(es[i].key, es[i].klen, 8), (uint32_t)i};
        for (int d = 0; d < 16; d++)
            hist[d][digit_of(&a[i], d)]++;
    }
    for (int d = 0; d < 16; d++) {
        size_t *h = hist[d], sum = 0;
        if (h[digit_of(&a[0], d)] == n)
            continue;   /* every key has this byte: the pass changes nothing */
        for (int v = 0; v < 256; v++) {
            size_t c = h[v];
            h[v] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            b[h[digit_of(&a[i], d)]++] = a[i];
        sort_rec *t = a;
        a = b, b = t;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = es[a[i].idx];
    for (size_t i = 0; i < n;) {   /* equal prefixes: the whole comparison */
        size_t j = i + 1;
        while (j < n && a[j].p0 == a[i].p0 && a[j].p1 == a[i].p1)
            j++;
        if (j - i > 1)
            qsort(out + i, j - i, sizeof *out, entry_cmp);
        i = j;
    }
    free(a), free(b), free(hist);
    return out;
}

shale_status wal_encode(size_t block_size, int compression_level, const wal_buf *b,
                        shale_buf *out)
{
    /* WAL SSTs are read whole at replay and live until the next flush: no
     * bloom filter, and blocks compressed only at the level the caller
     * passes -- the writer passes 0 (raw) unless its WAL store is remote
     * (wal_writer.c): on a local disk zstd level 1 was half the WAL
     * thread's encode time for bytes that only pass through the page
     * cache; on S3 a raw WAL SST is about 4x the bytes per upload
     * (docs/benchmarks.md, 2026-12-02).  Either way an ordinary SST that
     * every reader reads (replay, clone, tailing readers). */
    sst_options so = {block_size, compression_level, 0};
    kv_entry *es = malloc((b->count ? b->count : 1) * sizeof *es);
    if (!es)
        return SHALE_OOM();
    for (size_t i = 0; i < b->count; i++) {
        const wal_rec *r = &b->recs[i];
        const uint8_t *k = b->bytes.data + r->off;
        es[i] = (kv_entry){k, r->klen, r->seq, r->kind, r->kind == KV_PUT ? k + r->klen : NULL,
                           r->vlen};
    }
    /* Seqs are distinct, so the order is total and the sort's stability
     * does not matter. */
    kv_entry *sorted = sort_entries(es, b->count);
    if (!sorted) {
        free(es);
        return SHALE_OOM();
    }
    kv_iter *it = array_iter_new(sorted, b->count);
    shale_status rc = it ? sst_build_from_iter(&so, it, out, NULL) : SHALE_OOM();
    kv_iter_destroy(it);
    if (sorted != es)
        free(sorted);
    free(es);
    return rc;
}

/* Feeds every entry of one WAL SST image to cb->entry. */
static shale_status replay_one(const char *key, uint8_t *data, size_t len,
                               const wal_replay_cb *cb)
{
    sst_reader *r = NULL;
    shale_status rc = sst_reader_open_mem(key, data, len, true, &r);
    if (rc)
        return rc;
    kv_iter *it = sst_iter_new(r);
    if (!it) {
        sst_reader_unref(r);
        return SHALE_OOM();
    }
    for (kv_iter_seek_first(it); kv_iter_valid(it) && !rc; kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        rc = cb->entry(cb->ctx, &e);
    }
    if (!rc)
        rc = kv_iter_status(it);
    kv_iter_destroy(it);
    sst_reader_unref(r);
    return rc;
}

shale_status wal_read_range(shale_objstore *w, const char *db_uri, const manifest *m,
                            uint64_t from, const wal_replay_cb *cb, uint64_t *first_free)
{
    uint64_t id = from <= m->replay_after_wal_id ? m->replay_after_wal_id + 1 : from;
    for (;; id++) {
        char key[PATH_KEY_MAX];
        wal_key(id, key, sizeof key);
        void *data = NULL;
        size_t len = 0;
        shale_status rc = shale_objstore_get(w, key, &data, &len);
        if (rc == SHALE_NOT_FOUND) {
            if (id < m->next_wal_sst_id)
                return shale_err(SHALE_NOT_FOUND,
                                 "%s: WAL SST %s/%s is needed for replay (replay_after_wal_id="
                                 "%llu, next_wal_sst_id=%llu) but is missing: wrong WAL store "
                                 "or lost data",
                                 db_uri, shale_objstore_uri(w), key,
                                 (unsigned long long)m->replay_after_wal_id,
                                 (unsigned long long)m->next_wal_sst_id);
            break;
        }
        if (rc)
            return shale_err_prefix(rc, "%s: replaying %s", db_uri, key);
        rc = replay_one(key, data, len, cb);
        if (!rc && cb->after_sst)
            rc = cb->after_sst(cb->ctx, id);
        if (rc)
            return shale_err_prefix(rc, "%s: replaying %s", db_uri, key);
    }
    *first_free = id;
    return SHALE_OK;
}

