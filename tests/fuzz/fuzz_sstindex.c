/*
 * fuzz_sstindex.c -- libFuzzer target for SST format 3's index decoders
 * (engine/table/sst_table.c: the top-level index and the index partitions;
 * docs/format.md "SST format").
 *
 * Random bytes seldom pass a block's XXH3 checksum, so fuzz_sst rarely
 * gets past it into the index decoders.  Here the input is the *content*
 * of one index partition and of the top-level index:
 *     u16 LE partition length | partition content | top-level content
 * and the target wraps them, with valid checksums, into a real SST (data
 * blocks and properties of a small built SST, footer recomputed).  Opening,
 * seeking, iterating, point lookups and verification must never crash or
 * read out of bounds; anything wrong is SHALE_CORRUPT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "table/block.h"
#include "table/sst.h"
#include "table/sst_format.h"
#include "util/coding.h"

/* A small valid format-3 SST without a filter: its data blocks end where
 * its index region starts. */
static shale_buf g_sst;
static uint64_t g_data_end, g_props_off, g_props_size;

static void init(void)
{
    if (g_sst.len)
        return;
    sst_options so = {256, 0, 0};
    sst_builder *b = sst_builder_new(&so);
    for (unsigned i = 0; b && i < 200; i++) {
        char k[16], v[16];
        size_t kl = (size_t)snprintf(k, sizeof k, "k%05u", i * 3);
        size_t vl = (size_t)snprintf(v, sizeof v, "v%u", i);
        kv_entry e = {(const uint8_t *)k, kl, 10 + i, KV_PUT, (const uint8_t *)v, vl};
        sst_builder_add(b, &e);
    }
    if (b)
        sst_builder_finish(b, &g_sst, NULL);
    sst_builder_free(b);
    if (g_sst.len < SST_FOOTER_SIZE)
        abort();
    const uint8_t *f = g_sst.data + g_sst.len - SST_FOOTER_SIZE;
    g_data_end = get_u64le(f);   /* filter offset = end of the data blocks */
    g_props_off = get_u64le(f + 32);
    g_props_size = get_u64le(f + 40);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 2)
        return 0;
    size_t plen = (size_t)data[0] | (size_t)data[1] << 8;
    if (plen > size - 2)
        plen = size - 2;
    const uint8_t *part = data + 2, *top = data + 2 + plen;
    size_t tlen = size - 2 - plen;
    shale_buf img = SHALE_BUF_INIT;
    buf_append(&img, g_sst.data, g_data_end);
    uint64_t io = img.len;
    block_store(part, plen, 0, &img);
    uint64_t to = img.len;
    block_store(top, tlen, 0, &img);
    uint64_t po = img.len, ts = po - to;
    buf_append(&img, g_sst.data + g_props_off, g_props_size);
    uint8_t f[SST_FOOTER_SIZE];
    put_u64le(f, io);
    put_u64le(f + 8, 0);
    put_u64le(f + 16, io);
    put_u64le(f + 24, po - io);
    put_u64le(f + 32, po);
    put_u64le(f + 40, g_props_size);
    put_u32le(f + 48, SST_FORMAT_VERSION);
    put_u32le(f + 52, (uint32_t)ts);
    put_u64le(f + 56, SST_MAGIC);
    put_u64le(f + 64, XXH3_64bits(f, 64));
    if (buf_append(&img, f, sizeof f)) {
        buf_free(&img);
        return 0;
    }
    sst_reader *r = NULL;
    if (sst_reader_open_mem("fuzz.sst", img.data, img.len, true, &r) != SHALE_OK)
        return 0;   /* the reader freed the image */
    kv_iter *it = sst_iter_new(r);
    if (it) {
        kv_iter_seek(it, (const uint8_t *)"k00150", 6);
        size_t n = 0;
        for (kv_iter_seek_first(it); kv_iter_valid(it) && n < 100000; kv_iter_next(it), n++) {
            kv_entry e;
            kv_iter_entry(it, &e);
        }
        kv_iter_seek(it, (const uint8_t *)"k", 1);
        kv_iter_seek(it, (const uint8_t *)"z", 1);
        kv_iter_destroy(it);
    }
    shale_buf scratch = SHALE_BUF_INIT;
    kv_entry e;
    sst_reader_get(r, (const uint8_t *)"k00300", 6, UINT64_MAX, &e, &scratch);
    buf_free(&scratch);
    sst_reader_verify(r, NULL);
    sst_reader_unref(r);
    return 0;
}
