/*
 * sst_builder.c -- writes an SST image in memory (see sst_format.h).
 *
 * Data blocks are cut when they reach block_size, preferably between two
 * user keys; a key with very many versions may span blocks (the reader
 * handles that).  The bloom filter is built from one hash per distinct
 * user key.
 */
#include "table/block.h"
#include "table/bloom.h"
#include "table/sst.h"
#include "table/sst_format.h"
#include "table/sst_table.h"
#include "util/coding.h"
#include "util/status_int.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* A finished index partition (format 3), waiting for finish(). */
typedef struct part_meta {
    size_t coff, clen;          /* its content in sst_builder.parts */
    size_t koff, klen;          /* its last key in sst_builder.part_keys */
    uint64_t blocks, entries, kv_bytes, data_bytes;
} part_meta;

struct sst_builder {
    sst_options o;
    uint32_t format;
    block_builder bb;
    shale_buf out;          /* stored data blocks so far */
    shale_buf index;        /* index content (format 3: of the partition being built) */
    shale_buf parts;        /* format 3: finished partitions' contents */
    shale_buf part_keys;    /* format 3: their last keys */
    part_meta *pm;
    size_t npm, cappm;
    part_meta cur;          /* counters of the partition being built */
    shale_buf content;      /* scratch for a finished block's content */
    uint64_t *hashes;
    size_t nhash, caphash;
    shale_buf last_key;
    uint64_t last_seq;
    uint64_t entries, min_seq, max_seq;
    uint64_t block_kv_bytes;    /* key + value bytes of the block being built */
    shale_buf first_key;
    bool finished;
};

void sst_info_free(sst_info *i)
{
    if (!i)
        return;
    free(i->first_key);
    free(i->last_key);
    i->first_key = i->last_key = NULL;
}

sst_builder *sst_builder_new(const sst_options *o)
{
    sst_builder *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->o = *o;
    b->format = SST_FORMAT_VERSION;
    if (b->o.block_size < 256)
        b->o.block_size = 256;
    block_builder_init(&b->bb);
    return b;
}

void sst_builder_free(sst_builder *b)
{
    if (!b)
        return;
    block_builder_free(&b->bb);
    buf_free(&b->out);
    buf_free(&b->index);
    buf_free(&b->parts);
    buf_free(&b->part_keys);
    free(b->pm);
    buf_free(&b->content);
    buf_free(&b->last_key);
    buf_free(&b->first_key);
    free(b->hashes);
    free(b);
}

shale_status sst_builder_set_format(sst_builder *b, uint32_t format)
{
    if (format < SST_FORMAT_VERSION_MIN || format > SST_FORMAT_VERSION || b->entries)
        return shale_err(SHALE_INVALID_ARGUMENT, "sst_builder_set_format: cannot write format "
                                                 "%u (%d to %d, before the first entry)",
                         format, SST_FORMAT_VERSION_MIN, SST_FORMAT_VERSION);
    b->format = format;
    return SHALE_OK;
}

uint64_t sst_builder_entries(const sst_builder *b)
{
    return b->entries;
}

size_t sst_builder_size_estimate(const sst_builder *b)
{
    return b->out.len + block_builder_size(&b->bb) + b->index.len + b->parts.len +
           b->npm * (BLOCK_TRAILER + 48) + b->nhash * 2 + 128;
}

/* Format 3: ends the partition being built (its last key is the last
 * block's, still in bb.last_key or given). */
static shale_status cut_partition(sst_builder *b, const shale_buf *last_key)
{
    if (!b->index.len)
        return SHALE_OK;
    if (b->npm == b->cappm) {
        size_t cap = b->cappm ? b->cappm * 2 : 16;
        part_meta *n = realloc(b->pm, cap * sizeof *n);
        if (!n)
            return SHALE_OOM();
        b->pm = n;
        b->cappm = cap;
    }
    part_meta m = b->cur;
    m.coff = b->parts.len;
    m.clen = b->index.len;
    m.koff = b->part_keys.len;
    m.klen = last_key->len;
    shale_status rc = buf_append(&b->parts, b->index.data, b->index.len);
    if (!rc)
        rc = buf_append(&b->part_keys, last_key->data, last_key->len);
    if (rc)
        return rc;
    b->pm[b->npm++] = m;
    memset(&b->cur, 0, sizeof b->cur);
    buf_reset(&b->index);
    return SHALE_OK;
}

static shale_status flush_block(sst_builder *b)
{
    if (b->bb.count == 0)
        return SHALE_OK;
    buf_reset(&b->content);
    shale_status rc = block_builder_finish(&b->bb, &b->content);
    uint64_t off = b->out.len;
    if (!rc)
        rc = block_store(b->content.data, b->content.len, b->o.compression_level, &b->out);
    if (!rc)
        rc = buf_append_varint(&b->index, b->bb.last_key.len);
    if (!rc)
        rc = buf_append(&b->index, b->bb.last_key.data, b->bb.last_key.len);
    if (!rc)
        rc = buf_append_varint(&b->index, off);
    if (!rc)
        rc = buf_append_varint(&b->index, b->out.len - off);
    /* Format 2: what the block holds, so that shard facts and split points
     * need no data block (shard_stats.c). */
    if (!rc && b->format >= 2)
        rc = buf_append_varint(&b->index, b->bb.count);
    if (!rc && b->format >= 2)
        rc = buf_append_varint(&b->index, b->block_kv_bytes);
    b->cur.blocks++;
    b->cur.entries += b->bb.count;
    b->cur.kv_bytes += b->block_kv_bytes;
    b->cur.data_bytes += b->out.len - off;
    b->block_kv_bytes = 0;
    if (!rc && b->format >= SST_FORMAT_PARTITIONED && b->index.len >= SST_PARTITION_BYTES)
        rc = cut_partition(b, &b->bb.last_key);
    block_builder_reset(&b->bb);
    return rc;
}

shale_status sst_builder_add(sst_builder *b, const kv_entry *e)
{
    if (b->finished)
        return shale_err(SHALE_INVALID_ARGUMENT, "sst_builder_add after finish");
    bool same_key = false;
    if (b->entries) {
        kv_entry prev = {b->last_key.data, b->last_key.len, b->last_seq, 0, NULL, 0};
        int c = kv_cmp(&prev, e);
        if (c >= 0)
            return shale_err(SHALE_INVALID_ARGUMENT,
                             "sst_builder_add: entries out of order (key asc, seq desc)");
        same_key = !kv_key_cmp(prev.key, prev.klen, e->key, e->klen);
    }
    shale_status rc;
    size_t cur = block_builder_size(&b->bb);
    if (cur >= b->o.block_size && (!same_key || cur >= 4 * b->o.block_size) &&
        (rc = flush_block(b)))
        return rc;
    if ((rc = block_builder_add(&b->bb, e)))
        return rc;
    b->block_kv_bytes += e->klen + e->vlen;
    if (!same_key && b->o.bloom_bits_per_key) {
        if (b->nhash == b->caphash) {
            size_t cap = b->caphash ? b->caphash * 2 : 256;
            uint64_t *n = realloc(b->hashes, cap * sizeof *n);
            if (!n)
                return SHALE_OOM();
            b->hashes = n;
            b->caphash = cap;
        }
        b->hashes[b->nhash++] = bloom_hash(e->key, e->klen);
    }
    if (b->entries == 0 && (rc = buf_append(&b->first_key, e->key, e->klen)))
        return rc;
    buf_reset(&b->last_key);
    if ((rc = buf_append(&b->last_key, e->key, e->klen)))
        return rc;
    b->last_seq = e->seq;
    if (b->entries == 0 || e->seq < b->min_seq)
        b->min_seq = e->seq;
    if (e->seq > b->max_seq)
        b->max_seq = e->seq;
    b->entries++;
    return SHALE_OK;
}

static uint8_t *copy_key(const shale_buf *k, size_t *len)
{
    *len = k->len;
    uint8_t *p = malloc(k->len ? k->len : 1);
    if (p && k->len)
        memcpy(p, k->data, k->len);
    return p;
}

shale_status sst_builder_finish(sst_builder *b, shale_buf *out, sst_info *info)
{
    shale_buf meta = SHALE_BUF_INIT, props = SHALE_BUF_INIT;
    shale_status rc = flush_block(b);
    b->finished = true;
    uint64_t filter_off = b->out.len, filter_size = 0, index_off, index_size, props_off,
             props_size;
    if (!rc && b->nhash) {
        rc = bloom_build(b->hashes, b->nhash, b->o.bloom_bits_per_key, &meta);
        if (!rc)
            rc = block_store(meta.data, meta.len, 0, &b->out);
        filter_size = b->out.len - filter_off;
    }
    index_off = b->out.len;
    uint64_t top_size = 0, top_off = index_off;
    if (!rc && b->format >= SST_FORMAT_PARTITIONED) {
        /* The partitions, then the top-level index over them (its last
         * partition's key is the SST's last key). */
        rc = cut_partition(b, &b->last_key);
        shale_buf top = SHALE_BUF_INIT;
        for (size_t i = 0; !rc && i < b->npm; i++) {
            const part_meta *m = &b->pm[i];
            uint64_t off = b->out.len;
            rc = block_store(b->parts.data + m->coff, m->clen, 0, &b->out);
            if (!rc)
                rc = buf_append_varint(&top, m->klen);
            if (!rc)
                rc = buf_append(&top, b->part_keys.data + m->koff, m->klen);
            uint64_t v[6] = {off, b->out.len - off, m->blocks, m->entries, m->kv_bytes,
                             m->data_bytes};
            for (int j = 0; !rc && j < 6; j++)
                rc = buf_append_varint(&top, v[j]);
        }
        top_off = b->out.len;
        if (!rc)
            rc = block_store(top.data, top.len, 0, &b->out);
        top_size = b->out.len - top_off;
        buf_free(&top);
    } else if (!rc) {
        rc = block_store(b->index.data, b->index.len, 0, &b->out);
    }
    index_size = b->out.len - index_off;
    props_off = b->out.len;
    if (!rc) {
        buf_append_varint(&props, b->entries);
        buf_append_varint(&props, b->min_seq);
        buf_append_varint(&props, b->max_seq);
        buf_append_varint(&props, b->first_key.len);
        buf_append(&props, b->first_key.data, b->first_key.len);
        buf_append_varint(&props, b->last_key.len);
        rc = buf_append(&props, b->last_key.data, b->last_key.len);
    }
    if (!rc)
        rc = block_store(props.data, props.len, 0, &b->out);
    props_size = b->out.len - props_off;
    if (!rc) {
        uint8_t f[SST_FOOTER_SIZE];
        put_u64le(f, filter_off);
        put_u64le(f + 8, filter_size);
        put_u64le(f + 16, index_off);
        put_u64le(f + 24, index_size);
        put_u64le(f + 32, props_off);
        put_u64le(f + 40, props_size);
        put_u32le(f + 48, b->format);
        put_u32le(f + 52, (uint32_t)top_size);   /* format 3; 0 before */
        if (top_size > UINT32_MAX)
            rc = shale_err(SHALE_INVALID_ARGUMENT, "SST top-level index of %llu bytes: at "
                                                   "most 4 GiB", (unsigned long long)top_size);
        put_u64le(f + 56, SST_MAGIC);
        put_u64le(f + 64, XXH3_64bits(f, 64));
        rc = buf_append(&b->out, f, sizeof f);
    }
    size_t size = b->out.len;
    if (!rc && out->len == 0) {
        /* Hand the image over instead of copying it: a copy doubled a
         * flush's or compaction's memory for a moment (issue 19). */
        buf_free(out);
        *out = b->out;
        b->out = (shale_buf)SHALE_BUF_INIT;
    } else if (!rc) {
        rc = buf_append(out, b->out.data, b->out.len);
    }
    if (!rc && info) {
        memset(info, 0, sizeof *info);
        info->entries = b->entries;
        info->size = size;
        info->min_seq = b->min_seq;
        info->max_seq = b->max_seq;
        /* What an open reads: the whole index as well when it all fits in
         * the 16 KiB an open read before (a small SST: one request, not
         * two), else only the top level, properties and footer. */
        info->tail = size - index_off <= SST_TAIL_READ ? size - index_off : size - top_off;
        if (b->entries) {
            info->first_key = copy_key(&b->first_key, &info->first_klen);
            info->last_key = copy_key(&b->last_key, &info->last_klen);
            if (!info->first_key || !info->last_key) {
                sst_info_free(info);
                rc = SHALE_OOM();
            }
        }
    }
    buf_free(&meta);
    buf_free(&props);
    return rc;
}

shale_status sst_build_from_iter(const sst_options *o, kv_iter *it, shale_buf *out,
                                 sst_info *info)
{
    sst_builder *b = sst_builder_new(o);
    if (!b)
        return SHALE_OOM();
    shale_status rc = SHALE_OK;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && !rc; kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        rc = sst_builder_add(b, &e);
    }
    if (!rc)
        rc = kv_iter_status(it);
    if (!rc)
        rc = sst_builder_finish(b, out, info);
    sst_builder_free(b);
    return rc;
}
