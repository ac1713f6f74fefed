/*
 * fuzz_sst.c -- libFuzzer target: an arbitrary byte string as an SST image
 * (the format WAL SSTs and compacted SSTs share).  Opening, iterating,
 * point lookups and verification must never crash or read out of bounds;
 * anything wrong is SHALE_CORRUPT / SHALE_UNSUPPORTED.
 */
#include <stdlib.h>
#include <string.h>
#include "table/sst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    sst_reader *r = NULL;
    if (sst_reader_open_mem("fuzz.sst", copy, size, true, &r) != SHALE_OK)
        return 0;
    kv_iter *it = sst_iter_new(r);
    if (it) {
        size_t n = 0;
        for (kv_iter_seek_first(it); kv_iter_valid(it) && n < 100000; kv_iter_next(it), n++) {
            kv_entry e;
            kv_iter_entry(it, &e);
        }
        kv_iter_seek(it, (const uint8_t *)"k", 1);
        kv_iter_destroy(it);
    }
    shale_buf scratch = SHALE_BUF_INIT;
    kv_entry e;
    sst_reader_get(r, (const uint8_t *)"key", 3, UINT64_MAX, &e, &scratch);
    buf_free(&scratch);
    sst_reader_may_contain(r, (const uint8_t *)"key", 3);
    sst_reader_verify(r, NULL);
    sst_reader_unref(r);
    return 0;
}
