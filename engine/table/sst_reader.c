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
 * Open reads the footer, then filter + index + properties in one ranged
 * GET, verifying every checksum and bounds-checking every offset; after
 * that the reader is immutable, so any number of threads may use it.  Data
 * blocks are fetched on demand and kept decoded in the block cache.  Any
 * inconsistency is SHALE_CORRUPT naming the object and the offset.
 */
#include "table/block.h"
#include "table/bloom.h"
#include "table/sst.h"
#include "table/sst_format.h"
#include "util/coding.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef struct index_entry {
    const uint8_t *last_key;
    size_t klen;
    uint64_t off, size;
    uint64_t entries, kv_bytes;   /* format >= 2; else 0 */
} index_entry;

struct sst_reader {
    _Atomic int refs;
    char *name;                 /* "<store uri>/<key>" or the given name */
    shale_objstore *store;      /* NULL for an in-memory image */
    shale_objreader *rd;        /* the object, open for ranged reads (NULL for an image) */
    block_cache *cache;
    uint64_t file_id;
    uint8_t *image;             /* in-memory image, or NULL */
    bool own_image;
    uint64_t size;
    uint8_t *index_content;     /* decoded index (keys point into it) */
    index_entry *index;
    size_t nblocks;
    uint8_t *filter;            /* decoded filter, NULL if none */
    size_t filter_len;
    bool index_only;            /* opened without its filter (sst_reader_open_index) */
    uint32_t version;           /* format version from the footer */
    sst_info info;
};

static shale_status corrupt(const sst_reader *r, const char *what, uint64_t off)
{
    return shale_err(SHALE_CORRUPT, "%s: %s at offset %llu", r->name, what,
                     (unsigned long long)off);
}

/* Reads [off, off+len) of the object. */
static shale_status read_range(sst_reader *r, uint64_t off, uint64_t len, uint8_t **data,
                               bool *owned)
{
    if (off > r->size || len > r->size - off)
        return corrupt(r, "block extends past the end of the object", off);
    if (r->image) {
        *data = r->image + off;
        *owned = false;
        return SHALE_OK;
    }
    void *p = NULL;
    size_t got = 0;
    shale_status rc = shale_objreader_read(r->rd, off, len, &p, &got);
    if (rc == SHALE_INVALID_ARGUMENT)  /* offset past the end: truncated */
        return corrupt(r, "object shorter than expected (truncated?)", off);
    if (rc)
        return shale_err_prefix(rc, "%s", r->name);
    if (got != len) {
        free(p);
        return corrupt(r, "object shorter than its index says (truncated?)", off + got);
    }
    *data = p;
    *owned = true;
    return SHALE_OK;
}

static shale_status parse_index(sst_reader *r, const uint8_t *p, size_t len, uint64_t at)
{
    size_t cap = 16, n = 0, i = 0;
    index_entry *ix = malloc(cap * sizeof *ix);
    if (!ix)
        return SHALE_OOM();
    while (i < len) {
        uint64_t klen, off, size;
        size_t k;
        if (!(k = get_varint(p + i, len - i, &klen)) || klen > len - i - k)
            goto bad;
        i += k;
        const uint8_t *key = p + i;
        i += klen;
        if (!(k = get_varint(p + i, len - i, &off)))
            goto bad;
        i += k;
        if (!(k = get_varint(p + i, len - i, &size)))
            goto bad;
        i += k;
        uint64_t entries = 0, kv_bytes = 0;
        if (r->version >= 2) {
            if (!(k = get_varint(p + i, len - i, &entries)))
                goto bad;
            i += k;
            if (!(k = get_varint(p + i, len - i, &kv_bytes)))
                goto bad;
            i += k;
            if (!entries)
                goto bad;
        }
        if (off > r->size || size > r->size - off || size < BLOCK_TRAILER)
            goto bad;
        if (n == cap) {
            cap *= 2;
            index_entry *nx = realloc(ix, cap * sizeof *nx);
            if (!nx) {
                free(ix);
                return SHALE_OOM();
            }
            ix = nx;
        }
        ix[n++] = (index_entry){key, klen, off, size, entries, kv_bytes};
    }
    r->index = ix;
    r->nblocks = n;
    return SHALE_OK;
bad:
    free(ix);
    return corrupt(r, "malformed index entry", at + i);
}

static shale_status parse_props(sst_reader *r, const uint8_t *p, size_t len, uint64_t at)
{
    uint64_t v[3], kl;
    size_t i = 0, k;
    for (int j = 0; j < 3; j++) {
        if (!(k = get_varint(p + i, len - i, &v[j])))
            return corrupt(r, "malformed properties", at);
        i += k;
    }
    r->info.entries = v[0];
    r->info.min_seq = v[1];
    r->info.max_seq = v[2];
    r->info.size = r->size;
    for (int j = 0; j < 2; j++) {
        if (!(k = get_varint(p + i, len - i, &kl)) || kl > len - i - k)
            return corrupt(r, "malformed properties key", at);
        i += k;
        uint8_t *key = malloc(kl ? kl : 1);
        if (!key)
            return SHALE_OOM();
        memcpy(key, p + i, kl);
        i += kl;
        if (j == 0) {
            r->info.first_key = key;
            r->info.first_klen = kl;
        } else {
            r->info.last_key = key;
            r->info.last_klen = kl;
        }
    }
    if (r->info.entries == 0) {
        free(r->info.first_key);
        free(r->info.last_key);
        r->info.first_key = r->info.last_key = NULL;
        r->info.first_klen = r->info.last_klen = 0;
    }
    return SHALE_OK;
}

static shale_status load_meta(sst_reader *r)
{
    if (r->size < SST_FOOTER_SIZE)
        return corrupt(r, "object too short for an SST footer", 0);
    uint64_t foff = r->size - SST_FOOTER_SIZE;
    uint8_t *f = NULL;
    bool owned = false;
    shale_status rc = read_range(r, foff, SST_FOOTER_SIZE, &f, &owned);
    if (rc)
        return rc;
    uint8_t footer[SST_FOOTER_SIZE];
    memcpy(footer, f, SST_FOOTER_SIZE);
    if (owned)
        free(f);
    if (get_u64le(footer + 56) != SST_MAGIC)
        return corrupt(r, "bad magic number in the footer (not an SST)", foff);
    if (get_u64le(footer + 64) != XXH3_64bits(footer, 64))
        return corrupt(r, "footer checksum mismatch", foff);
    uint32_t ver = get_u32le(footer + 48);
    if (ver < SST_FORMAT_VERSION_MIN || ver > SST_FORMAT_VERSION)
        return shale_err(SHALE_UNSUPPORTED, "%s: SST format version %u is not supported by "
                                            "this build (%d to %d)", r->name, ver,
                         SST_FORMAT_VERSION_MIN, SST_FORMAT_VERSION);
    r->version = ver;
    uint64_t fo = get_u64le(footer), fs = get_u64le(footer + 8), io = get_u64le(footer + 16),
             is = get_u64le(footer + 24), po = get_u64le(footer + 32),
             ps = get_u64le(footer + 40);
    if (fo > foff || fs > foff - fo || io != fo + fs || is > foff - io || po != io + is ||
        ps > foff - po || po + ps != foff || is < BLOCK_TRAILER || ps < BLOCK_TRAILER)
        return corrupt(r, "footer offsets are inconsistent", foff);
    uint8_t *meta = NULL;
    if (r->index_only) {
        /* Index and properties only: the filter is not read, and lookups
         * through this reader make no use of one. */
        fs = 0;
        fo = io;
    }
    if ((rc = read_range(r, fo, foff - fo, &meta, &owned)))
        return rc;
    uint8_t *content = NULL;
    size_t clen = 0;
    if (fs) {
        rc = block_load(r->name, fo, meta, fs, &r->filter, &r->filter_len);
        if (rc)
            goto out;
    }
    if ((rc = block_load(r->name, io, meta + fs, is, &r->index_content, &clen)) ||
        (rc = parse_index(r, r->index_content, clen, io)))
        goto out;
    if ((rc = block_load(r->name, po, meta + fs + is, ps, &content, &clen)))
        goto out;
    rc = parse_props(r, content, clen, po);
    if (!rc && r->info.entries && !r->nblocks)
        rc = corrupt(r, "entries but no data blocks", io);
out:
    free(content);
    if (owned)
        free(meta);
    return rc;
}

static void reader_free(sst_reader *r)
{
    shale_objreader_close(r->rd);
    free(r->name);
    if (r->own_image)
        free(r->image);
    free(r->index_content);
    free(r->index);
    free(r->filter);
    sst_info_free(&r->info);
    free(r);
}

static shale_status open_store_sst(shale_objstore *s, const char *key, uint64_t size,
                                   block_cache *cache, bool index_only, sst_reader **out);

shale_status sst_reader_open(shale_objstore *s, const char *key, uint64_t size,
                             block_cache *cache, sst_reader **out)
{
    return open_store_sst(s, key, size, cache, false, out);
}

shale_status sst_reader_open_index(shale_objstore *s, const char *key, uint64_t size,
                                   sst_reader **out)
{
    return open_store_sst(s, key, size, NULL, true, out);
}

size_t sst_reader_block_count(const sst_reader *r)
{
    return r->nblocks;
}

void sst_reader_block(const sst_reader *r, size_t i, sst_block_info *out)
{
    const index_entry *e = &r->index[i];
    out->last_key = e->last_key;
    out->klen = e->klen;
    out->stored_size = e->size;
    out->has_counts = r->version >= 2;
    out->entries = e->entries;
    out->kv_bytes = e->kv_bytes;
}

static shale_status open_store_sst(shale_objstore *s, const char *key, uint64_t size,
                                   block_cache *cache, bool index_only, sst_reader **out)
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
    r->file_id = block_cache_file_id(shale_objstore_uri(s), key);
    /* The manifest's size is a hint: backends other than file:// then make
     * no request to open.  Without one the open looks the object up (as a
     * HEAD did) and measures it. */
    shale_status rc = shale_objreader_open(s, key, size, &r->rd);
    if (rc)
        shale_err_prefix(rc, "opening SST %s", r->name);
    else
        r->size = size ? size : shale_objreader_size(r->rd);
    if (!rc)
        rc = load_meta(r);
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
    r->size = len;
    if (!(r->name = xstrdup(name))) {
        reader_free(r);
        return SHALE_OOM();
    }
    shale_status rc = load_meta(r);
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
    return &r->info;
}

const char *sst_reader_name(const sst_reader *r)
{
    return r->name;
}

bool sst_reader_may_contain(const sst_reader *r, const uint8_t *key, size_t klen)
{
    if (!r->filter)
        return true;
    return bloom_may_contain(r->filter, r->filter_len, bloom_hash(key, klen));
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

/* Decodes the stored bytes of block idx (checksum, decompression) and puts
 * the result in the cache.  stored stays the caller's. */
static shale_status block_decode(sst_reader *r, size_t idx, const uint8_t *stored, block_ref *b)
{
    const index_entry *ix = &r->index[idx];
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

static bool block_cached(sst_reader *r, size_t idx, block_ref *b)
{
    memset(b, 0, sizeof *b);
    if (r->cache && (b->cb = block_cache_lookup(r->cache, r->file_id, r->index[idx].off))) {
        b->data = b->cb->data;
        b->len = b->cb->len;
        return true;
    }
    return false;
}

static shale_status block_get(sst_reader *r, size_t idx, block_ref *b)
{
    if (block_cached(r, idx, b))
        return SHALE_OK;
    const index_entry *ix = &r->index[idx];
    uint8_t *stored = NULL;
    bool owned = false;
    shale_status rc = read_range(r, ix->off, ix->size, &stored, &owned);
    if (rc)
        return rc;
    rc = block_decode(r, idx, stored, b);
    if (owned)
        free(stored);
    return rc;
}

/* First block whose last key >= key (nblocks if none). */
static size_t find_block(const sst_reader *r, const uint8_t *key, size_t klen)
{
    size_t lo = 0, hi = r->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_key_cmp(r->index[mid].last_key, r->index[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- iterator ------------------------------------------------------------- */

/* Readahead: an iterator that moves from block to block fetches the blocks
 * ahead of it in one ranged read, starting at RA_MIN bytes and doubling up
 * to RA_MAX while it keeps going.  Without it a scan costs one request per
 * 4 KiB block: on S3 that is a round trip each, and on a file store a
 * pread each.  A seek drops back to single blocks, so point
 * lookups and short range reads fetch no more than they use. */
#define RA_MIN (64u << 10)
#define RA_MAX (1u << 20)

typedef struct sst_iter {
    kv_iter base;
    sst_reader *r;
    size_t bidx;
    block_ref blk;
    block_iter bi;
    bool have_block;
    shale_status rc;
    uint8_t *ra;             /* stored bytes of [ra_off, ra_off + ra_len) */
    uint64_t ra_off, ra_len;
    uint32_t ra_size;        /* next window; 0 = not reading sequentially */
} sst_iter;

/* Block idx for an iterator; sequential says it follows the last one. */
static shale_status si_block_get(sst_iter *it, size_t idx, bool sequential, block_ref *b)
{
    sst_reader *r = it->r;
    if (!sequential || !r->store) {
        it->ra_size = 0;
        return block_get(r, idx, b);
    }
    if (block_cached(r, idx, b))
        return SHALE_OK;
    const index_entry *ix = &r->index[idx];
    if (!it->ra || ix->off < it->ra_off || ix->off + ix->size > it->ra_off + it->ra_len) {
        it->ra_size = it->ra_size ? (it->ra_size >= RA_MAX / 2 ? RA_MAX : it->ra_size * 2)
                                  : RA_MIN;
        uint64_t end = ix->off + ix->size;
        for (size_t j = idx + 1; j < r->nblocks && r->index[j].off >= end &&
                                 r->index[j].off + r->index[j].size - ix->off <= it->ra_size;
             j++)
            end = r->index[j].off + r->index[j].size;
        free(it->ra);
        it->ra = NULL;
        uint8_t *p = NULL;
        bool owned = false;
        shale_status rc = read_range(r, ix->off, end - ix->off, &p, &owned);
        if (rc)
            return rc;
        it->ra = p;  /* owned: the reader has a store */
        it->ra_off = ix->off;
        it->ra_len = end - ix->off;
    }
    return block_decode(r, idx, it->ra + (ix->off - it->ra_off), b);
}

static void si_drop_block(sst_iter *it)
{
    if (it->have_block) {
        block_iter_free(&it->bi);
        block_release(it->r, &it->blk);
        it->have_block = false;
    }
}

static bool si_load(sst_iter *it, size_t idx)
{
    bool sequential = it->have_block && idx == it->bidx + 1;
    si_drop_block(it);
    it->bidx = idx;
    if (idx >= it->r->nblocks)
        return false;
    shale_status rc = si_block_get(it, idx, sequential, &it->blk);
    if (!rc) {
        rc = block_iter_init(&it->bi, it->r->name, it->r->index[idx].off, it->blk.data,
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
        if (!si_load(it, it->bidx + 1))
            return;
        block_iter_seek_first(&it->bi);
    }
}

static void si_seek_first(kv_iter *k)
{
    sst_iter *it = (sst_iter *)k;
    it->rc = SHALE_OK;
    if (si_load(it, 0)) {
        block_iter_seek_first(&it->bi);
        si_settle(it);
    }
}

static void si_seek(kv_iter *k, const uint8_t *key, size_t klen)
{
    sst_iter *it = (sst_iter *)k;
    it->rc = SHALE_OK;
    if (si_load(it, find_block(it->r, key, klen))) {
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
    if (!sst_reader_may_contain(r, key, klen))
        return SHALE_NOT_FOUND;
    sst_iter it;
    memset(&it, 0, sizeof it);
    it.base.ops = &sst_iter_ops;
    it.r = r;
    si_seek(&it.base, key, klen);
    shale_status rc = SHALE_NOT_FOUND;
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
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < r->nblocks && !rc; i++) {
        uint8_t *stored = NULL, *content = NULL;
        bool owned = false;
        size_t clen = 0;
        rc = read_range(r, r->index[i].off, r->index[i].size, &stored, &owned);
        if (!rc)
            rc = block_load(r->name, r->index[i].off, stored, r->index[i].size, &content, &clen);
        if (owned)
            free(stored);
        block_iter bi;
        if (!rc && !(rc = block_iter_init(&bi, r->name, r->index[i].off, content, clen))) {
            for (block_iter_seek_first(&bi); bi.valid; block_iter_next(&bi))
                entries++;
            rc = bi.rc;
            block_iter_free(&bi);
        }
        free(content);
        n++;
    }
    if (!rc && entries != r->info.entries)
        rc = corrupt(r, "entry count differs from the properties block", 0);
    if (blocks)
        *blocks = n;
    return rc;
}
