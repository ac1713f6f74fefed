/* block.c -- see block.h for the layout. */
#include "table/block.h"
#include "util/coding.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

/* One zstd context of each kind per thread.  ZSTD_compress() and
 * ZSTD_decompress() create and free a context on every call (hundreds of
 * KiB to allocate and clear at level 1): perf showed that as a large part
 * of flush, compaction and cache-miss time.  Contexts are freed when their
 * thread exits. */
static pthread_key_t g_cctx_key, g_dctx_key;
static pthread_once_t g_zstd_once = PTHREAD_ONCE_INIT;

static void cctx_free(void *p) { ZSTD_freeCCtx(p); }
static void dctx_free(void *p) { ZSTD_freeDCtx(p); }

static void zstd_keys_init(void)
{
    pthread_key_create(&g_cctx_key, cctx_free);
    pthread_key_create(&g_dctx_key, dctx_free);
}

/* This thread's compression context, or NULL if none can be made. */
static ZSTD_CCtx *thread_cctx(void)
{
    pthread_once(&g_zstd_once, zstd_keys_init);
    ZSTD_CCtx *c = pthread_getspecific(g_cctx_key);
    if (!c && (c = ZSTD_createCCtx()) && pthread_setspecific(g_cctx_key, c)) {
        ZSTD_freeCCtx(c);
        c = NULL;
    }
    return c;
}

static ZSTD_DCtx *thread_dctx(void)
{
    pthread_once(&g_zstd_once, zstd_keys_init);
    ZSTD_DCtx *d = pthread_getspecific(g_dctx_key);
    if (!d && (d = ZSTD_createDCtx()) && pthread_setspecific(g_dctx_key, d)) {
        ZSTD_freeDCtx(d);
        d = NULL;
    }
    return d;
}

void block_builder_init(block_builder *b)
{
    memset(b, 0, sizeof *b);
}

void block_builder_reset(block_builder *b)
{
    buf_reset(&b->data);
    buf_reset(&b->restarts);
    buf_reset(&b->last_key);
    b->since_restart = 0;
    b->count = 0;
}

void block_builder_free(block_builder *b)
{
    buf_free(&b->data);
    buf_free(&b->restarts);
    buf_free(&b->last_key);
}

shale_status block_builder_add(block_builder *b, const kv_entry *e)
{
    size_t shared = 0;
    shale_status rc;
    if (b->since_restart == 0 || b->since_restart >= BLOCK_RESTART_INTERVAL) {
        if ((rc = buf_append_u32le(&b->restarts, (uint32_t)b->data.len)))
            return rc;
        b->since_restart = 0;
    } else {
        size_t n = e->klen < b->last_key.len ? e->klen : b->last_key.len;
        while (shared < n && e->key[shared] == b->last_key.data[shared])
            shared++;
    }
    uint8_t seq[8];
    put_u64le(seq, e->seq);
    if ((rc = buf_append_varint(&b->data, shared)) ||
        (rc = buf_append_varint(&b->data, e->klen - shared)) ||
        (rc = buf_append_varint(&b->data, e->vlen)) ||
        (rc = buf_append(&b->data, e->key + shared, e->klen - shared)) ||
        (rc = buf_append(&b->data, seq, 8)) || (rc = buf_append_u8(&b->data, e->kind)) ||
        (rc = buf_append(&b->data, e->val, e->vlen)))
        return rc;
    buf_reset(&b->last_key);
    if ((rc = buf_append(&b->last_key, e->key, e->klen)))
        return rc;
    b->since_restart++;
    b->count++;
    return SHALE_OK;
}

size_t block_builder_size(const block_builder *b)
{
    return b->data.len + b->restarts.len + 4;
}

shale_status block_builder_finish(block_builder *b, shale_buf *out)
{
    shale_status rc = buf_append(out, b->data.data, b->data.len);
    if (!rc)
        rc = buf_append(out, b->restarts.data, b->restarts.len);
    if (!rc)
        rc = buf_append_u32le(out, (uint32_t)(b->restarts.len / 4));
    return rc;
}

shale_status block_store(const uint8_t *content, size_t len, int zstd_level, shale_buf *out)
{
    size_t start = out->len;
    uint8_t type = 0;
    shale_status rc;
    if (len > BLOCK_MAX_CONTENT)
        return shale_err(SHALE_INVALID_ARGUMENT, "block of %zu bytes is too large", len);
    /* Negative levels are zstd's fast ones (literals left unencoded):
     * larger blocks, decoded about twice as fast. */
    if (zstd_level != 0 && len >= 64) {
        size_t bound = ZSTD_compressBound(len);
        if ((rc = buf_reserve(out, bound + BLOCK_TRAILER)))
            return rc;
        ZSTD_CCtx *cctx = thread_cctx();
        size_t z = cctx ? ZSTD_compressCCtx(cctx, out->data + start, bound, content, len,
                                            zstd_level)
                        : ZSTD_compress(out->data + start, bound, content, len, zstd_level);
        if (!ZSTD_isError(z) && z < len - len / 8) {
            out->len += z;
            type = 1;
        }
    }
    if (type == 0 && (rc = buf_append(out, content, len)))
        return rc;
    uint8_t t[5];
    t[0] = type;
    put_u32le(t + 1, (uint32_t)len);
    if ((rc = buf_append(out, t, 5)))
        return rc;
    uint64_t h = XXH3_64bits(out->data + start, out->len - start);
    return buf_append_u64le(out, h);
}

shale_status block_load(const char *name, uint64_t offset, const uint8_t *stored, size_t len,
                        uint8_t **content, size_t *content_len)
{
    *content = NULL;
    if (len < BLOCK_TRAILER)
        return shale_err(SHALE_CORRUPT, "%s: block at offset %llu is %zu bytes, shorter than "
                                        "its trailer", name, (unsigned long long)offset, len);
    uint64_t want = get_u64le(stored + len - 8);
    if (XXH3_64bits(stored, len - 8) != want)
        return shale_err(SHALE_CORRUPT, "%s: checksum mismatch in the block at offset %llu",
                         name, (unsigned long long)offset);
    uint8_t type = stored[len - BLOCK_TRAILER];
    uint32_t ulen = get_u32le(stored + len - BLOCK_TRAILER + 1);
    size_t plen = len - BLOCK_TRAILER;
    if (ulen > BLOCK_MAX_CONTENT || (type == 0 && ulen != plen) || type > 1)
        return shale_err(SHALE_CORRUPT, "%s: bad block trailer at offset %llu (type %u, "
                                        "length %u)", name, (unsigned long long)offset, type,
                         ulen);
    uint8_t *out = malloc(ulen ? ulen : 1);
    if (!out)
        return SHALE_OOM();
    if (type == 0) {
        memcpy(out, stored, ulen);
    } else {
        ZSTD_DCtx *dctx = thread_dctx();
        size_t got = dctx ? ZSTD_decompressDCtx(dctx, out, ulen, stored, plen)
                          : ZSTD_decompress(out, ulen, stored, plen);
        if (ZSTD_isError(got) || got != ulen) {
            free(out);
            return shale_err(SHALE_CORRUPT, "%s: block at offset %llu does not decompress",
                             name, (unsigned long long)offset);
        }
    }
    *content = out;
    *content_len = ulen;
    return SHALE_OK;
}

/* ---- iteration --------------------------------------------------------- */

static void corrupt(block_iter *it, const char *what)
{
    it->valid = false;
    if (!it->rc)
        it->rc = shale_err(SHALE_CORRUPT, "%s: %s in the block at offset %llu", it->name, what,
                           (unsigned long long)it->block_off);
}

shale_status block_iter_init(block_iter *it, const char *name, uint64_t block_off,
                             const uint8_t *content, size_t len)
{
    memset(it, 0, sizeof *it);
    it->name = name;
    it->block_off = block_off;
    if (len < 4)
        return shale_err(SHALE_CORRUPT, "%s: block at offset %llu too short", name,
                         (unsigned long long)block_off);
    uint32_t n = get_u32le(content + len - 4);
    if ((uint64_t)n * 4 + 4 > len)
        return shale_err(SHALE_CORRUPT, "%s: restart count %u does not fit the block at "
                                        "offset %llu", name, n, (unsigned long long)block_off);
    it->nrestarts = n;
    it->restarts = content + len - 4 - (size_t)n * 4;
    it->data = content;
    it->data_len = len - 4 - (size_t)n * 4;
    for (uint32_t i = 0; i < n; i++)
        if (get_u32le(it->restarts + 4 * i) > it->data_len)
            return shale_err(SHALE_CORRUPT, "%s: restart point past the entries in the block "
                                            "at offset %llu", name,
                             (unsigned long long)block_off);
    return SHALE_OK;
}

void block_iter_free(block_iter *it)
{
    buf_free(&it->key);
}

/* Decodes the entry at `off`; `fresh` means the key starts over (restart). */
static void decode_at(block_iter *it, size_t off, bool fresh)
{
    if (off >= it->data_len) {
        it->valid = false;
        return;
    }
    const uint8_t *p = it->data + off, *end = it->data + it->data_len;
    uint64_t shared, unshared, vlen;
    size_t n;
    if (!(n = get_varint(p, (size_t)(end - p), &shared)))
        return corrupt(it, "bad entry header");
    p += n;
    if (!(n = get_varint(p, (size_t)(end - p), &unshared)))
        return corrupt(it, "bad entry header");
    p += n;
    if (!(n = get_varint(p, (size_t)(end - p), &vlen)))
        return corrupt(it, "bad entry header");
    p += n;
    if (fresh && shared)
        return corrupt(it, "shared key bytes at a restart point");
    if (shared > it->key.len || unshared > (uint64_t)(end - p) ||
        9 + vlen > (uint64_t)(end - p) - unshared)
        return corrupt(it, "entry overruns the block");
    it->key.len = (size_t)shared;
    if (buf_append(&it->key, p, (size_t)unshared)) {
        it->valid = false;
        it->rc = SHALE_OOM();
        return;
    }
    p += unshared;
    it->e.key = it->key.data;
    it->e.klen = it->key.len;
    it->e.seq = get_u64le(p);
    it->e.kind = p[8];
    if (it->e.kind > KV_PUT)
        return corrupt(it, "bad entry kind");
    p += 9;
    it->e.val = p;
    it->e.vlen = (size_t)vlen;
    it->cur_off = off;
    it->next_off = (size_t)(p + vlen - it->data);
    it->valid = true;
}

void block_iter_seek_first(block_iter *it)
{
    it->key.len = 0;
    decode_at(it, 0, true);
}

void block_iter_next(block_iter *it)
{
    if (!it->valid)
        return;
    decode_at(it, it->next_off, false);
}

void block_iter_seek(block_iter *it, const uint8_t *key, size_t klen)
{
    /* Binary search the last restart point whose key is < key. */
    uint32_t lo = 0, hi = it->nrestarts;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        it->key.len = 0;
        decode_at(it, get_u32le(it->restarts + 4 * mid), true);
        if (!it->valid)
            return;
        if (kv_key_cmp(it->e.key, it->e.klen, key, klen) < 0)
            lo = mid;
        else
            hi = mid;
    }
    it->key.len = 0;
    decode_at(it, it->nrestarts ? get_u32le(it->restarts + 4 * lo) : 0, true);
    while (it->valid && kv_key_cmp(it->e.key, it->e.klen, key, klen) < 0)
        block_iter_next(it);
}
