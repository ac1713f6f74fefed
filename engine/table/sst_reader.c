/*
 * sst_reader.c -- reads SSTs through the object store (ranged reads) or from
 * an in-memory image (see sst_format.h for the layout).
 *
 * A store-backed reader opens one shale_objreader for its object and keeps
 * it until freed; every footer, meta and data-block read goes through it.
 * On file:// that handle is an open descriptor, so a block read is a single
 * pread() (LevelDB's table cache keeps a file open per table for the same
 * reason); elsewhere it is a ranged GET on the key, as before.  So an open
 * reader holds a descriptor for as long as anything references it: the
 * table cache (view.c) while the SST is live, and iterators.
 *
 * Open reads the object's tail (footer, top-level index, properties; a
 * second GET if they did not fit) (sst_table.c: the filter and the index partitions wait until
 * a lookup or a seek needs them, and are then kept in the table, which
 * every reader of the same SST in the process may share), verifying every
 * checksum and bounds-checking every offset.  Any number of threads may
 * use a reader.  Data blocks are fetched on demand and kept decoded in the
 * block cache.  Any inconsistency is SHALE_CORRUPT naming the object and
 * the offset.
 */
#include "table/block.h"
#include "table/bloom.h"
#include "table/sst.h"
#include "table/sst_format.h"
#include "table/sst_table.h"
#include "util/coding.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct sst_reader {
    _Atomic int refs;
    char *name;                 /* "<store uri>/<key>" or the given name */
    shale_objstore *store;      /* NULL for an in-memory image */
    shale_objreader *rd;        /* the object, open for ranged reads (NULL for an image) */
    block_cache *cache;
    uint64_t file_id;
    uint8_t *image;             /* in-memory image, or NULL */
    bool own_image;
    bool index_only;            /* opened without its filter (sst_reader_open_index) */
    sst_src src;                /* this reader's bytes, for the table's loads */
    sst_table *t;               /* footer, index, filter: maybe shared */
};

static shale_status corrupt(const sst_reader *r, const char *what, uint64_t off)
{
    return sst_src_corrupt(&r->src, what, off);
}

static shale_status read_range(sst_reader *r, uint64_t off, uint64_t len, uint8_t **data,
                               bool *owned)
{
    return sst_src_read(&r->src, off, len, data, owned);
}

static void reader_free(sst_reader *r)
{
    sst_table_unref(r->t);
    shale_objreader_close(r->rd);
    free(r->name);
    if (r->own_image)
        free(r->image);
    free(r);
}

static shale_status open_store_sst(shale_objstore *s, const char *ident, const char *key,
                                   uint64_t size, uint64_t tail, block_cache *cache,
                                   bool index_only, sst_reader **out);

shale_status sst_reader_open(shale_objstore *s, const char *key, uint64_t size,
                             block_cache *cache, sst_reader **out)
{
    return open_store_sst(s, NULL, key, size, 0, cache, false, out);
}

shale_status sst_reader_open_shared(shale_objstore *s, const char *ident, const char *key,
                                    uint64_t size, block_cache *cache, sst_reader **out)
{
    return open_store_sst(s, ident, key, size, 0, cache, false, out);
}

shale_status sst_reader_open_tail(shale_objstore *s, const char *ident, const char *key,
                                  uint64_t size, uint64_t tail, block_cache *cache,
                                  sst_reader **out)
{
    return open_store_sst(s, ident, key, size, tail, cache, false, out);
}

shale_status sst_reader_open_index(shale_objstore *s, const char *key, uint64_t size,
                                   sst_reader **out)
{
    return open_store_sst(s, NULL, key, size, 0, NULL, true, out);
}

size_t sst_reader_block_count(const sst_reader *r)
{
    return r->t->nblocks;
}

void sst_reader_block(const sst_reader *r, size_t i, sst_block_info *out)
{
    const sst_table *t = r->t;
    size_t lo = 0, hi = t->nparts;   /* the last partition whose first block <= i */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->top[mid].first_block <= i)
            lo = mid;
        else
            hi = mid;
    }
    const sst_part *p = atomic_load_explicit(&t->parts[lo], memory_order_acquire);
    const sst_ientry *e = &p->e[i - t->top[lo].first_block];
    out->last_key = e->last_key;
    out->klen = e->klen;
    out->stored_size = e->size;
    out->has_counts = t->version >= 2;
    out->entries = e->entries;
    out->kv_bytes = e->kv_bytes;
}

static shale_status open_store_sst(shale_objstore *s, const char *ident, const char *key,
                                   uint64_t size, uint64_t tail, block_cache *cache,
                                   bool index_only, sst_reader **out)
{
    *out = NULL;
    sst_reader *r = calloc(1, sizeof *r);
    if (!r)
        return SHALE_OOM();
    atomic_init(&r->refs, 1);
    r->index_only = index_only;
    size_t n = strlen(shale_objstore_uri(s)) + strlen(key) + 2;
    r->name = malloc(n);
    if (!r->name) {
        reader_free(r);
        return SHALE_OOM();
    }
    snprintf(r->name, n, "%s/%s", shale_objstore_uri(s), key);
    r->store = s;
    r->cache = cache;
    /* Data blocks are cached under the store's identity where there is
     * one, so two handles on one store share them too. */
    r->file_id = block_cache_file_id(ident ? ident : shale_objstore_uri(s), key);
    /* The manifest's size is a hint: backends other than file:// then make
     * no request to open.  Without one the open looks the object up (as a
     * HEAD did) and measures it. */
    shale_status rc = shale_objreader_open(s, key, size, &r->rd);
    if (rc) {
        shale_err_prefix(rc, "opening SST %s", r->name);
    } else {
        r->src = (sst_src){r->name, r->rd, NULL, size ? size : shale_objreader_size(r->rd)};
        rc = sst_table_open(&r->src, ident, key, index_only, tail, &r->t);
    }
    if (rc) {
        reader_free(r);
        return rc;
    }
    *out = r;
    return SHALE_OK;
}

shale_status sst_reader_open_mem(const char *name, uint8_t *data, size_t len, bool own,
                                 sst_reader **out)
{
    *out = NULL;
    sst_reader *r = calloc(1, sizeof *r);
    if (!r) {
        if (own)
            free(data);
        return SHALE_OOM();
    }
    atomic_init(&r->refs, 1);
    r->image = data;
    r->own_image = own;
    if (!(r->name = xstrdup(name))) {
        reader_free(r);
        return SHALE_OOM();
    }
    r->src = (sst_src){r->name, NULL, data, len};
    shale_status rc = sst_table_open(&r->src, NULL, name, false, 0, &r->t);
    if (rc) {
        reader_free(r);
        return rc;
    }
    *out = r;
    return SHALE_OK;
}

void sst_reader_ref(sst_reader *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void sst_reader_unref(sst_reader *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        reader_free(r);
}

const sst_info *sst_reader_info(const sst_reader *r)
{
    return &r->t->info;
}

const char *sst_reader_name(const sst_reader *r)
{
    return r->name;
}

/* The filter's verdict, loading the filter on first use: *may false only
 * if it proves key absent. */
static shale_status filter_check(sst_reader *r, const uint8_t *key, size_t klen, bool *may)
{
    *may = true;
    if (r->index_only)
        return SHALE_OK;
    const sst_filter *f = NULL;
    shale_status rc = sst_table_filter(r->t, &r->src, &f);
    if (!rc && f)
        *may = bloom_may_contain(f->data, f->len, bloom_hash(key, klen));
    return rc;
}

bool sst_reader_may_contain(sst_reader *r, const uint8_t *key, size_t klen)
{
    bool may = true;
    (void)filter_check(r, key, klen, &may);   /* an error: sst_reader_get says it */
    return may;
}

/* ---- data blocks ----------------------------------------------------------- */

typedef struct block_ref {
    const cached_block *cb;     /* from the cache, or */
    uint8_t *owned;             /* decoded here */
    const uint8_t *data;
    size_t len;
} block_ref;

static void block_release(sst_reader *r, block_ref *b)
{
    if (b->cb)
        block_cache_release(r->cache, b->cb);
    free(b->owned);
    memset(b, 0, sizeof *b);
}

/* Set on a thread whose reads must not fill the block cache (see sst.h). */
static _Thread_local bool no_cache_fill;

void sst_thread_fill_cache(bool fill)
{
    no_cache_fill = !fill;
}

/* Set on a thread whose seeks read ahead (see sst.h). */
static _Thread_local uint32_t seek_read;

void sst_thread_seek_read(uint32_t bytes)
{
    seek_read = bytes;
}

/* Set on a thread whose scans read whole ranges (sst_thread_scan_readahead):
 * the seek's read and every window after it are this big, no ramp.  Apart
 * from seek_read, which a prefetch on the same thread sets and clears. */
static _Thread_local uint32_t scan_ra;

/* Decodes the stored bytes of block ix (checksum, decompression) and puts
 * the result in the cache.  stored stays the caller's. */
static shale_status block_decode(sst_reader *r, const sst_ientry *ix, const uint8_t *stored,
                                 block_ref *b)
{
    uint8_t *content = NULL;
    size_t clen = 0;
    shale_status rc = block_load(r->name, ix->off, stored, ix->size, &content, &clen);
    if (rc)
        return rc;
    bool fill = r->cache && !no_cache_fill;
    if (fill && (b->cb = block_cache_insert(r->cache, r->file_id, ix->off, content, clen))) {
        b->data = b->cb->data;
        b->len = b->cb->len;
        return SHALE_OK;
    }
    if (fill)
        return SHALE_OOM();  /* insert freed content */
    b->owned = content;
    b->data = content;
    b->len = clen;
    return SHALE_OK;
}

static bool block_cached(sst_reader *r, const sst_ientry *ix, block_ref *b)
{
    memset(b, 0, sizeof *b);
    if (r->cache && (b->cb = block_cache_lookup(r->cache, r->file_id, ix->off))) {
        b->data = b->cb->data;
        b->len = b->cb->len;
        return true;
    }
    return false;
}

static shale_status block_get(sst_reader *r, const sst_ientry *ix, block_ref *b)
{
    if (block_cached(r, ix, b))
        return SHALE_OK;
    uint8_t *stored = NULL;
    bool owned = false;
    shale_status rc = read_range(r, ix->off, ix->size, &stored, &owned);
    if (rc)
        return rc;
    rc = block_decode(r, ix, stored, b);
    if (owned)
        free(stored);
    return rc;
}

/* ---- iterator ------------------------------------------------------------- */

/* Readahead: an iterator that moves from block to block fetches the blocks
 * ahead of it in one ranged read, starting at RA_MIN bytes and doubling up
 * to RA_MAX while it keeps going.  Without it a scan costs one request per
 * 4 KiB block: on S3 that is a round trip each, and on a file store a
 * pread each.  A seek drops back to single blocks, and so does the next
 * block, so point lookups and short range reads fetch no more than they
 * use.  A window
 * that reaches the end of its index partition loads the rest of them. */
#define RA_MIN (64u << 10)
#define RA_MAX (1u << 20)

void sst_thread_scan_readahead(uint32_t bytes)
{
    scan_ra = bytes > RA_MAX ? RA_MAX : bytes;
}

typedef struct sst_iter {
    kv_iter base;
    sst_reader *r;
    size_t pidx, bidx;       /* partition, block in it */
    const sst_part *part;    /* partition pidx (loaded), or NULL */
    block_ref blk;
    block_iter bi;
    bool have_block;
    shale_status rc;
    uint8_t *ra;             /* stored bytes of [ra_off, ra_off + ra_len) */
    uint64_t ra_off, ra_len;
    uint32_t ra_size;        /* next window; 0 = not reading sequentially */
    uint32_t seq_run;        /* blocks read in sequence since the last seek */
} sst_iter;

/* Block bidx of the current partition; sequential says it follows the
 * last one. */
static shale_status si_block_get(sst_iter *it, bool sequential, block_ref *b)
{
    sst_reader *r = it->r;
    const sst_part *p = it->part;
    const sst_ientry *ix = &p->e[it->bidx];
    /* The first block after a seek, and the one after it, are read alone:
     * a short range read (Verify's 16-key windows) that crosses one block
     * boundary reads 4 KiB more, not a 64 KiB window. */
    it->seq_run = sequential ? it->seq_run + 1 : 0;
    bool in_ra = it->ra && ix->off >= it->ra_off && ix->off + ix->size <= it->ra_off + it->ra_len;
    /* A seek on a thread that reads ahead from seeks (sst.h). */
    uint32_t sread = seek_read ? seek_read : scan_ra;
    bool seek_ahead = !sequential && sread && r->store;
    if (!seek_ahead && (it->seq_run < 2 || !r->store)) {
        it->ra_size = 0;
        if (!in_ra)
            return block_get(r, ix, b);
        if (block_cached(r, ix, b))   /* else: read with the seek's block */
            return SHALE_OK;
        return block_decode(r, ix, it->ra + (ix->off - it->ra_off), b);
    }
    if (block_cached(r, ix, b))
        return SHALE_OK;
    if (seek_ahead || !in_ra) {
        it->ra_size = seek_ahead ? sread
                      : it->ra_size ? (it->ra_size >= RA_MAX / 2 ? RA_MAX : it->ra_size * 2)
                                    : scan_ra > RA_MIN ? scan_ra : RA_MIN;
        uint64_t end = ix->off + ix->size;
        const sst_part *q = p;
        size_t j = it->bidx + 1, qi = it->pidx;
        for (;;) {
            if (j == q->n) {
                /* The window goes on into the next partitions: a scan that
                 * got here reads the rest of the index too, in one read
                 * (about 1 % of the data it is reading).  A seek's read
                 * ahead stops at its partition's end. */
                if (seek_ahead || qi + 1 >= r->t->nparts)
                    break;
                if (!atomic_load_explicit(&r->t->parts[qi + 1], memory_order_acquire))
                    (void)sst_table_load_all(r->t, &r->src, qi + 1);   /* else: the window ends */
                if (!(q = atomic_load_explicit(&r->t->parts[++qi], memory_order_acquire)))
                    break;
                j = 0;
                continue;
            }
            if (q->e[j].off < end || q->e[j].off + q->e[j].size - ix->off > it->ra_size)
                break;
            end = q->e[j].off + q->e[j].size;
            j++;
        }
        free(it->ra);
        it->ra = NULL;
        uint8_t *buf = NULL;
        bool owned = false;
        shale_status rc = read_range(r, ix->off, end - ix->off, &buf, &owned);
        if (rc)
            return rc;
        it->ra = buf;  /* owned: the reader has a store */
        it->ra_off = ix->off;
        it->ra_len = end - ix->off;
    }
    return block_decode(r, ix, it->ra + (ix->off - it->ra_off), b);
}

static void si_drop_block(sst_iter *it)
{
    if (it->have_block) {
        block_iter_free(&it->bi);
        block_release(it->r, &it->blk);
        it->have_block = false;
    }
}

/* Positions on block bidx of partition pidx (moving on to the next
 * partition past the end of this one), loading the partition if needed. */
static bool si_load(sst_iter *it, size_t pidx, size_t bidx)
{
    bool sequential = it->have_block &&
                      (pidx == it->pidx ? bidx == it->bidx + 1 : pidx == it->pidx + 1 && !bidx);
    si_drop_block(it);
    sst_table *t = it->r->t;
    for (;;) {
        if (pidx >= t->nparts) {
            it->pidx = t->nparts;
            it->part = NULL;
            return false;
        }
        if (!it->part || it->pidx != pidx) {
            it->part = NULL;
            shale_status rc = sst_table_part(t, &it->r->src, pidx, &it->part);
            if (rc) {
                it->rc = rc;
                return false;
            }
            it->pidx = pidx;
        }
        if (bidx < it->part->n)
            break;
        pidx++;
        bidx = 0;
    }
    it->bidx = bidx;
    shale_status rc = si_block_get(it, sequential, &it->blk);
    if (!rc) {
        rc = block_iter_init(&it->bi, it->r->name, it->part->e[bidx].off, it->blk.data,
                             it->blk.len);
        if (rc)
            block_release(it->r, &it->blk);
    }
    if (rc) {
        it->rc = rc;
        return false;
    }
    it->have_block = true;
    return true;
}

/* Moves past exhausted blocks. */
static void si_settle(sst_iter *it)
{
    while (it->have_block && !it->bi.valid) {
        if (it->bi.rc) {
            it->rc = it->bi.rc;
            return;
        }
        if (!si_load(it, it->pidx, it->bidx + 1))
            return;
        block_iter_seek_first(&it->bi);
    }
}

static void si_seek_first(kv_iter *k)
{
    sst_iter *it = (sst_iter *)k;
    it->rc = SHALE_OK;
    if (si_load(it, 0, 0)) {
        block_iter_seek_first(&it->bi);
        si_settle(it);
    }
}

/* Loads the partition that may hold key; *bidx its first block whose last
 * key >= key.  False at the end or on an error (it->rc). */
static bool si_find(sst_iter *it, const uint8_t *key, size_t klen, size_t *pidx, size_t *bidx)
{
    sst_table *t = it->r->t;
    *pidx = sst_table_find_part(t, key, klen);
    *bidx = 0;
    if (*pidx >= t->nparts)
        return false;
    if (!it->part || it->pidx != *pidx) {
        it->part = NULL;
        shale_status rc = sst_table_part(t, &it->r->src, *pidx, &it->part);
        if (rc) {
            it->rc = rc;
            return false;
        }
        it->pidx = *pidx;
    }
    *bidx = sst_part_find(it->part, key, klen);
    return true;
}

static void si_seek(kv_iter *k, const uint8_t *key, size_t klen)
{
    sst_iter *it = (sst_iter *)k;
    it->rc = SHALE_OK;
    size_t p, b;
    if (!si_find(it, key, klen, &p, &b)) {
        si_drop_block(it);
        return;
    }
    if (si_load(it, p, b)) {
        block_iter_seek(&it->bi, key, klen);
        si_settle(it);
    }
}

static void si_next(kv_iter *k)
{
    sst_iter *it = (sst_iter *)k;
    block_iter_next(&it->bi);
    si_settle(it);
}

static bool si_valid(const kv_iter *k)
{
    const sst_iter *it = (const sst_iter *)k;
    return !it->rc && it->have_block && it->bi.valid;
}

static void si_entry(const kv_iter *k, kv_entry *e)
{
    *e = ((const sst_iter *)k)->bi.e;
}

static shale_status si_status(const kv_iter *k)
{
    const sst_iter *it = (const sst_iter *)k;
    return it->rc ? it->rc : it->have_block ? it->bi.rc : SHALE_OK;
}

static void si_destroy(kv_iter *k)
{
    sst_iter *it = (sst_iter *)k;
    si_drop_block(it);
    free(it->ra);
    sst_reader_unref(it->r);
    free(it);
}

static const kv_iter_ops sst_iter_ops = {si_seek_first, si_seek, si_next, si_valid,
                                         si_entry, si_status, si_destroy};

kv_iter *sst_iter_new(sst_reader *r)
{
    sst_iter *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->base.ops = &sst_iter_ops;
    sst_reader_ref(r);
    it->r = r;
    return &it->base;
}

shale_status sst_reader_get(sst_reader *r, const uint8_t *key, size_t klen, uint64_t max_seq,
                            kv_entry *e, shale_buf *scratch)
{
    bool may = true;
    shale_status rc = filter_check(r, key, klen, &may);
    if (rc)
        return rc;
    if (!may)
        return SHALE_NOT_FOUND;
    sst_iter it;
    memset(&it, 0, sizeof it);
    it.base.ops = &sst_iter_ops;
    it.r = r;
    si_seek(&it.base, key, klen);
    rc = SHALE_NOT_FOUND;
    while (si_valid(&it.base)) {
        const kv_entry *c = &it.bi.e;
        if (kv_key_cmp(c->key, c->klen, key, klen))
            break;
        if (c->seq <= max_seq) {
            buf_reset(scratch);
            if ((rc = buf_append(scratch, c->key, c->klen)) ||
                (rc = buf_append(scratch, c->val, c->vlen)))
                break;
            *e = *c;
            e->key = scratch->data;
            e->val = c->kind == KV_PUT ? scratch->data + c->klen : NULL;
            rc = SHALE_OK;
            break;
        }
        si_next(&it.base);
    }
    if (rc == SHALE_NOT_FOUND && it.rc)
        rc = it.rc;
    si_drop_block(&it);
    return rc;
}

shale_status sst_reader_verify(sst_reader *r, uint64_t *blocks)
{
    uint64_t n = 0, entries = 0;
    sst_table *t = r->t;
    shale_status rc = SHALE_OK;
    for (size_t pi = 0; pi < t->nparts && !rc; pi++) {
        const sst_part *p = NULL;
        if ((rc = sst_table_part(t, &r->src, pi, &p)))
            break;
        uint64_t pentries = 0, pkv = 0, pdata = 0;
        for (size_t i = 0; i < p->n && !rc; i++) {
            const sst_ientry *ix = &p->e[i];
            uint8_t *stored = NULL, *content = NULL;
            bool owned = false;
            size_t clen = 0;
            rc = read_range(r, ix->off, ix->size, &stored, &owned);
            if (!rc)
                rc = block_load(r->name, ix->off, stored, ix->size, &content, &clen);
            if (owned)
                free(stored);
            block_iter bi;
            if (!rc && !(rc = block_iter_init(&bi, r->name, ix->off, content, clen))) {
                for (block_iter_seek_first(&bi); bi.valid; block_iter_next(&bi))
                    entries++;
                rc = bi.rc;
                block_iter_free(&bi);
            }
            free(content);
            pentries += ix->entries;
            pkv += ix->kv_bytes;
            pdata += ix->size;
            n++;
        }
        /* Format 3: the top level's totals are what split facts use. */
        const sst_top *tp = &t->top[pi];
        if (!rc && t->version >= SST_FORMAT_PARTITIONED &&
            (tp->entries != pentries || tp->kv_bytes != pkv || tp->data_bytes != pdata))
            rc = corrupt(r, "top-level index totals differ from the partition's", tp->off);
    }
    if (!rc && entries != t->info.entries)
        rc = corrupt(r, "entry count differs from the properties block", 0);
    if (blocks)
        *blocks = n;
    return rc;
}
