/*
 * test_sst.c -- the SST reader and builder on their own (docs/format.md
 * "SST format"): formats 1, 2 and 3 all read; format 3's open reads the
 * object's tail only (footer, top-level index, properties); a seek reads
 * one index partition; the filter is read on the first point lookup and
 * never by scans; readers of one SST with one identity share what was
 * loaded (the second open reads nothing); index-only opens read every
 * partition in one read and no filter; a damaged partition is
 * SHALE_CORRUPT naming its offset.  Requests are counted through the
 * process's store counters (never timed).
 */
#include "support/testutil.h"
#include "table/block.h"
#include "table/sst.h"
#include "table/sst_format.h"
#include "table/sst_table.h"
#include "util/coding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 20000

static size_t key_of(unsigned i, char *k)
{
    return (size_t)snprintf(k, 32, "key%08u", i);
}

static size_t val_of(unsigned i, char *v)
{
    return (size_t)snprintf(v, 64, "value-%u-%u", i, i * 7919u);
}

/* An SST of NKEYS keys (even i only: odd ones are absent) in the given
 * format, 256-byte blocks so that format 3 has many partitions. */
static void build_info(uint32_t format, shale_buf *out, uint32_t bloom, sst_info *info)
{
    sst_options so = {256, 0, bloom};
    sst_builder *b = sst_builder_new(&so);
    assert_non_null(b);
    TU_OK(sst_builder_set_format(b, format));
    for (unsigned i = 0; i < NKEYS; i += 2) {
        char k[32], v[64];
        size_t kl = key_of(i, k), vl = val_of(i, v);
        kv_entry e = {(const uint8_t *)k, kl, 1000 + i, KV_PUT, (const uint8_t *)v, vl};
        TU_OK(sst_builder_add(b, &e));
    }
    TU_OK(sst_builder_finish(b, out, info));
    sst_builder_free(b);
}

static void build(uint32_t format, shale_buf *out, uint32_t bloom)
{
    build_info(format, out, bloom, NULL);
}

/* Every key found with its value, every absent key not; a full scan; a
 * seek into the middle. */
static void check_reads(sst_reader *r)
{
    shale_buf scratch = SHALE_BUF_INIT;
    for (unsigned i = 0; i < NKEYS; i += 37) {
        char k[32], v[64];
        size_t kl = key_of(i, k), vl = val_of(i, v);
        kv_entry e;
        shale_status rc = sst_reader_get(r, (const uint8_t *)k, kl, UINT64_MAX, &e, &scratch);
        if (i % 2) {
            TU_RC(SHALE_NOT_FOUND, rc);
        } else {
            TU_OK(rc);
            assert_int_equal(e.vlen, vl);
            assert_memory_equal(e.val, v, vl);
        }
    }
    buf_free(&scratch);
    kv_iter *it = sst_iter_new(r);
    assert_non_null(it);
    unsigned n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it), n++) {
        kv_entry e;
        kv_iter_entry(it, &e);
        char k[32];
        size_t kl = key_of(2 * n, k);
        assert_int_equal(e.klen, kl);
        assert_memory_equal(e.key, k, kl);
    }
    TU_OK(kv_iter_status(it));
    assert_int_equal(n, NKEYS / 2);
    char k[32];
    size_t kl = key_of(NKEYS / 2 + 1, k);   /* absent: the next one is found */
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_true(kv_iter_valid(it));
    kv_entry e;
    kv_iter_entry(it, &e);
    kl = key_of(NKEYS / 2 + 2, k);
    assert_memory_equal(e.key, k, kl);
    kl = key_of(NKEYS + 5, k);              /* past the end */
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_false(kv_iter_valid(it));
    TU_OK(kv_iter_status(it));
    kv_iter_destroy(it);
    uint64_t blocks = 0;
    TU_OK(sst_reader_verify(r, &blocks));
    assert_true(blocks > 10);
}

static void test_every_format_reads(void **state)
{
    (void)state;
    for (uint32_t f = 1; f <= SST_FORMAT_VERSION; f++) {
        shale_buf img = SHALE_BUF_INIT;
        build(f, &img, 10);
        assert_int_equal(get_u32le(img.data + img.len - SST_FOOTER_SIZE + 48), f);
        sst_reader *r = NULL;
        TU_OK(sst_reader_open_mem("t.sst", img.data, img.len, false, &r));
        check_reads(r);
        assert_int_equal(sst_reader_info(r)->entries, NKEYS / 2);
        sst_reader_unref(r);
        buf_free(&img);
    }
    sst_builder *b = sst_builder_new(&(sst_options){4096, 0, 0});
    TU_RC(SHALE_INVALID_ARGUMENT, sst_builder_set_format(b, 4));
    sst_builder_free(b);
}

/* The index searches compare 8-byte prefixes after the bytes a partition's
 * keys share (sst_table.h sst_keys) and the keys only on a tie: keys that
 * share more than 8 bytes, that are proper prefixes of others, that hold
 * zero bytes (a padded prefix ties with a shorter key), and probes below,
 * between, inside the shared bytes and above every key all seek to the
 * first key >= the probe, in every format. */
static size_t tricky_key(unsigned i, uint8_t *k)
{
    /* Groups of 64 keys under one 20-byte prefix; inside a group a
     * 1-to-4-byte tail, of which the shorter ones prefix the longer and
     * zero bytes occur. */
    memcpy(k, "shared-prefix-000000", 20);
    unsigned g = i / 64, j = i % 64;
    k[14] = (uint8_t)('0' + g / 10), k[15] = (uint8_t)('0' + g % 10);
    size_t n = 20;
    k[n++] = (uint8_t)(j / 16);          /* 0..3: zero bytes included */
    if (j % 16 >= 4)
        k[n++] = (uint8_t)((j % 16) / 4 - 1);   /* 0..2 */
    if (j % 4 >= 2)
        k[n++] = 0;
    if (j % 2)
        k[n++] = 0xff;
    return n;
}

static int ucmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static void test_index_search_keys(void **state)
{
    (void)state;
    enum { N = 64 * 40 };
    static uint8_t keys[N][32];
    static size_t lens[N];
    size_t n = 0;
    for (unsigned i = 0; i < N; i++) {
        uint8_t k[32];
        size_t kl = tricky_key(i, k);
        /* tricky_key may repeat a key; keep them sorted and distinct */
        if (n && ucmp(keys[n - 1], lens[n - 1], k, kl) >= 0) {
            bool dup = false;
            for (size_t m = 0; m < n && !dup; m++)
                dup = !ucmp(keys[m], lens[m], k, kl);
            if (dup)
                continue;
        }
        memcpy(keys[n], k, kl);
        lens[n++] = kl;
    }
    /* sort (insertion: n is small) */
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && ucmp(keys[b - 1], lens[b - 1], keys[b], lens[b]) > 0; b--) {
            uint8_t t[32];
            size_t tl = lens[b];
            memcpy(t, keys[b], 32);
            memcpy(keys[b], keys[b - 1], 32);
            memcpy(keys[b - 1], t, 32);
            lens[b] = lens[b - 1];
            lens[b - 1] = tl;
        }
    for (uint32_t f = 1; f <= SST_FORMAT_VERSION; f++) {
        sst_options so = {128, 0, 10};
        sst_builder *b = sst_builder_new(&so);
        assert_non_null(b);
        TU_OK(sst_builder_set_format(b, f));
        for (size_t i = 0; i < n; i++) {
            kv_entry e = {keys[i], lens[i], 5, KV_PUT, (const uint8_t *)"v", 1};
            TU_OK(sst_builder_add(b, &e));
        }
        shale_buf img = SHALE_BUF_INIT;
        TU_OK(sst_builder_finish(b, &img, NULL));
        sst_builder_free(b);
        sst_reader *r = NULL;
        TU_OK(sst_reader_open_mem("k.sst", img.data, img.len, false, &r));
        assert_true(sst_reader_block_count(r) > 100);
        kv_iter *it = sst_iter_new(r);
        assert_non_null(it);
        shale_buf scratch = SHALE_BUF_INIT;
        /* Probes: every key, every key cut short by one byte, every key
         * with a zero byte and a 0xff byte appended, below and above all. */
        for (size_t i = 0; i < n; i++) {
            for (int v = 0; v < 4; v++) {
                uint8_t p[40];
                size_t pl = lens[i];
                memcpy(p, keys[i], pl);
                if (v == 1 && pl)
                    pl--;
                else if (v == 2)
                    p[pl++] = 0;
                else if (v == 3)
                    p[pl++] = 0xff;
                size_t want = 0;
                while (want < n && ucmp(keys[want], lens[want], p, pl) < 0)
                    want++;
                kv_iter_seek(it, p, pl);
                TU_OK(kv_iter_status(it));
                if (want == n) {
                    assert_false(kv_iter_valid(it));
                    continue;
                }
                assert_true(kv_iter_valid(it));
                kv_entry e;
                kv_iter_entry(it, &e);
                assert_int_equal(e.klen, lens[want]);
                assert_memory_equal(e.key, keys[want], lens[want]);
                if (v == 0)
                    TU_OK(sst_reader_get(r, p, pl, UINT64_MAX, &e, &scratch));
            }
        }
        const uint8_t lo[] = "a", mid[] = "shared-prefix-0", hi[] = "zz";
        kv_iter_seek(it, lo, 1);
        assert_true(kv_iter_valid(it));
        kv_iter_seek(it, mid, sizeof mid - 1);   /* inside the shared bytes */
        assert_true(kv_iter_valid(it));
        kv_entry e;
        kv_iter_entry(it, &e);
        assert_memory_equal(e.key, keys[0], lens[0]);
        kv_iter_seek(it, hi, 2);
        assert_false(kv_iter_valid(it));
        TU_RC(SHALE_NOT_FOUND, sst_reader_get(r, hi, 2, UINT64_MAX, &e, &scratch));
        buf_free(&scratch);
        kv_iter_destroy(it);
        sst_reader_unref(r);
        buf_free(&img);
    }
}

/* Negative compression levels (zstd's fast ones, the default -1) store a
 * compressible block as zstd (type 1), smaller than its content, and it
 * loads back; level 0 stores it raw. */
static void test_fast_levels(void **state)
{
    (void)state;
    uint8_t content[4096];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (uint8_t)(i % 100 < 50 ? 'a' + (i * 7919u) % 26 : 'x');
    int levels[] = {-1, -5, 1, 0};
    for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
        shale_buf out = SHALE_BUF_INIT;
        TU_OK(block_store(content, sizeof content, levels[l], &out));
        uint8_t type = out.data[out.len - BLOCK_TRAILER];
        assert_int_equal(type, levels[l] ? 1 : 0);
        if (levels[l])
            assert_true(out.len < sizeof content / 2);
        uint8_t *back = NULL;
        size_t blen = 0;
        TU_OK(block_load("t", 0, out.data, out.len, &back, &blen));
        assert_int_equal(blen, sizeof content);
        assert_memory_equal(back, content, sizeof content);
        free(back);
        buf_free(&out);
    }
}

/* An SST image put at key in a fresh mem:// store. */
static shale_objstore *store_with(const char *name, uint32_t format, const char *key,
                                  uint64_t *size)
{
    char *uri = tu_mem_uri(name);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    free(uri);
    shale_buf img = SHALE_BUF_INIT;
    build(format, &img, 10);
    TU_OK(shale_objstore_put(s, key, img.data, img.len));
    *size = img.len;
    buf_free(&img);
    return s;
}

typedef struct counted {
    shale_objstats os;
    sst_table_stats ts;
} counted;

static void snap(counted *c)
{
    shale_objstore_global_stats(&c->os);
    sst_table_stats_get(&c->ts);
}

static uint64_t ranged(const counted *a, const counted *b)
{
    return b->os.requests[SHALE_OP_GET_RANGE][0] - a->os.requests[SHALE_OP_GET_RANGE][0];
}

/* Format 3 through a store: open = footer + (top-level index and
 * properties); the filter is read by the first get only; a seek reads one
 * partition and one data block; a scan never reads the filter. */
static void test_lazy_reads(void **state)
{
    (void)state;
    uint64_t size;
    shale_objstore *s = store_with("lazy", SST_FORMAT_VERSION, "a.sst", &size);
    counted c0, c1, c2, c3, c4;
    snap(&c0);
    sst_reader *r = NULL;
    TU_OK(sst_reader_open(s, "a.sst", size, NULL, &r));
    snap(&c1);
    /* One read of the tail: footer, top-level index, properties (and the
     * last partitions, which it holds whole); not the filter, not the
     * other partitions: the SST's index is some 1700 blocks' entries
     * (34 KB) and its filter 12 KB, before the tail. */
    assert_int_equal(ranged(&c0, &c1), 1);
    assert_true(c1.os.bytes_read - c0.os.bytes_read <= SST_TAIL_READ);
    assert_int_equal(c1.ts.filter_loads, c0.ts.filter_loads);

    kv_iter *it = sst_iter_new(r);
    char k[32];
    size_t kl = key_of(NKEYS / 4, k);   /* a partition before the tail */
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_true(kv_iter_valid(it));
    snap(&c2);
    assert_int_equal(ranged(&c1, &c2), 2);   /* one partition, one block */
    assert_int_equal(c2.ts.lazy_reads - c1.ts.lazy_reads, 1);
    assert_int_equal(c2.ts.filter_loads, c1.ts.filter_loads);
    /* The last partition came with the tail: a seek to the last key reads
     * its data block only. */
    counted c5;
    kl = key_of(NKEYS - 2, k);
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_true(kv_iter_valid(it));
    snap(&c5);
    assert_int_equal(ranged(&c2, &c5), 1);
    assert_int_equal(c5.ts.lazy_reads, c2.ts.lazy_reads);
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        ;
    TU_OK(kv_iter_status(it));
    kv_iter_destroy(it);
    snap(&c3);
    assert_int_equal(c3.ts.filter_loads, c1.ts.filter_loads);   /* a scan: no filter */

    shale_buf scratch = SHALE_BUF_INIT;
    kv_entry e;
    kl = key_of(1, k);   /* absent: the filter says so */
    TU_RC(SHALE_NOT_FOUND, sst_reader_get(r, (const uint8_t *)k, kl, UINT64_MAX, &e, &scratch));
    kl = key_of(3, k);
    TU_RC(SHALE_NOT_FOUND, sst_reader_get(r, (const uint8_t *)k, kl, UINT64_MAX, &e, &scratch));
    snap(&c4);
    assert_int_equal(c4.ts.filter_loads - c3.ts.filter_loads, 1);   /* once */
    buf_free(&scratch);
    sst_reader_unref(r);
    shale_objstore_close(s);
}

/* The builder's tail (what the manifest records) is the top-level index
 * (formats 1-2: the index), properties and footer, as the footer places
 * them; an open given it reads exactly that, in one request, where the
 * default reads 16 KiB.  A tail too short (or 0: a manifest without one)
 * still opens, with the read it lacked. */
static void test_open_reads_the_recorded_tail(void **state)
{
    (void)state;
    for (uint32_t format = 1; format <= SST_FORMAT_VERSION; format++) {
        char *uri = tu_mem_uri("tail");
        shale_objstore *s = NULL;
        TU_OK(shale_objstore_open(uri, NULL, &s));
        free(uri);
        shale_buf img = SHALE_BUF_INIT;
        sst_info info;
        build_info(format, &img, 10, &info);
        TU_OK(shale_objstore_put(s, "t.sst", img.data, img.len));
        const uint8_t *f = img.data + img.len - SST_FOOTER_SIZE;
        uint64_t io = 0, ps = 0;
        for (int b = 7; b >= 0; b--) {
            io = io << 8 | f[16 + b];
            ps = ps << 8 | f[40 + b];
        }
        uint32_t ts = (uint32_t)f[52] | (uint32_t)f[53] << 8 | (uint32_t)f[54] << 16 |
                      (uint32_t)f[55] << 24;
        uint64_t want = format >= SST_FORMAT_PARTITIONED ? ts + ps + SST_FOOTER_SIZE
                                                         : img.len - io;
        assert_int_equal(info.tail, want);
        assert_true(info.tail < img.len);
        if (format >= SST_FORMAT_PARTITIONED)
            assert_true(info.tail < SST_TAIL_READ);
        uint64_t tails[3] = {info.tail, SST_FOOTER_SIZE + 1, 0};
        for (int i = 0; i < 3; i++) {
            counted c0, c1;
            snap(&c0);
            sst_reader *r = NULL;
            TU_OK(sst_reader_open_tail(s, NULL, "t.sst", img.len, tails[i], NULL, &r));
            snap(&c1);
            uint64_t bytes = c1.os.bytes_read - c0.os.bytes_read;
            if (i == 0) {
                assert_int_equal(ranged(&c0, &c1), 1);
                assert_int_equal(bytes, info.tail);
            } else if (i == 1) {
                assert_int_equal(ranged(&c0, &c1), 2);   /* the tail it lacked */
            } else {
                assert_true(bytes >= SST_TAIL_READ);
            }
            check_reads(r);
            sst_reader_unref(r);
        }
        sst_info_free(&info);
        buf_free(&img);
        shale_objstore_close(s);
    }
}

/* Two readers of one SST with one identity, through two store handles: the
 * second open reads nothing, and a partition the first loaded is not read
 * again.  Without an identity each reads its own. */
static void test_shared_tables(void **state)
{
    (void)state;
    uint64_t size;
    shale_objstore *s = store_with("shared", SST_FORMAT_VERSION, "b.sst", &size);
    char *uri = tu_mem_uri("shared");
    shale_objstore *s2 = NULL;
    TU_OK(shale_objstore_open(shale_objstore_uri(s), NULL, &s2));
    free(uri);
    counted c0, c1, c2, c3;
    snap(&c0);
    sst_reader *a = NULL, *b = NULL, *p = NULL;
    TU_OK(sst_reader_open_shared(s, "ident://x", "b.sst", size, NULL, &a));
    kv_iter *it = sst_iter_new(a);
    char k[32];
    size_t kl = key_of(100, k);
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_true(kv_iter_valid(it));
    kv_iter_destroy(it);
    snap(&c1);
    TU_OK(sst_reader_open_shared(s2, "ident://x", "b.sst", size, NULL, &b));
    snap(&c2);
    assert_int_equal(ranged(&c1, &c2), 0);
    assert_int_equal(c2.ts.shared_hits - c1.ts.shared_hits, 1);
    it = sst_iter_new(b);
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_true(kv_iter_valid(it));
    kv_iter_destroy(it);
    snap(&c3);
    assert_int_equal(ranged(&c2, &c3), 1);   /* the data block only (no cache) */
    assert_int_equal(c3.ts.part_loads, c2.ts.part_loads);
    check_reads(b);
    /* A private reader reads its own footer and index. */
    snap(&c1);
    TU_OK(sst_reader_open(s2, "b.sst", size, NULL, &p));
    snap(&c2);
    assert_int_equal(ranged(&c1, &c2), 1);
    sst_reader_unref(p);
    /* The table lives while a reader does; the last one takes it away. */
    sst_table_stats t0, t1;
    sst_table_stats_get(&t0);
    sst_reader_unref(a);
    sst_reader_unref(b);
    sst_table_stats_get(&t1);
    assert_int_equal(t0.tables - t1.tables, 1);
    shale_objstore_close(s2);
    shale_objstore_close(s);
}

/* Index-only opens (split points): two ranged reads whatever the format,
 * no filter; every block listed with its counts from format 2 on. */
static void test_index_only(void **state)
{
    (void)state;
    for (uint32_t f = 1; f <= SST_FORMAT_VERSION; f++) {
        char name[32];
        snprintf(name, sizeof name, "idx%u", f);
        uint64_t size;
        shale_objstore *s = store_with(name, f, "c.sst", &size);
        counted c0, c1;
        snap(&c0);
        sst_reader *r = NULL;
        TU_OK(sst_reader_open_index(s, "c.sst", size, &r));
        snap(&c1);
        assert_int_equal(ranged(&c0, &c1), 2);
        assert_int_equal(c1.ts.filter_loads, c0.ts.filter_loads);
        if (f == SST_FORMAT_VERSION)   /* many partitions, all read at once */
            assert_true(c1.ts.part_loads - c0.ts.part_loads >= 4);
        size_t nb = sst_reader_block_count(r);
        assert_true(nb > 10);
        uint64_t entries = 0;
        for (size_t i = 0; i < nb; i++) {
            sst_block_info bi;
            sst_reader_block(r, i, &bi);
            assert_int_equal(bi.has_counts, f >= 2);
            entries += bi.entries;
            if (i + 1 == nb) {
                char k[32];
                size_t kl = key_of(NKEYS - 2, k);
                assert_int_equal(bi.klen, kl);
                assert_memory_equal(bi.last_key, k, kl);
            }
        }
        assert_int_equal(entries, f >= 2 ? NKEYS / 2 : 0);
        sst_reader_unref(r);
        shale_objstore_close(s);
    }
}

/* A flipped byte in an index partition: open still works (it does not read
 * it); the seek into it is SHALE_CORRUPT naming the partition's offset. */
static void test_corrupt_partition(void **state)
{
    (void)state;
    shale_buf img = SHALE_BUF_INIT;
    build(SST_FORMAT_VERSION, &img, 10);
    const uint8_t *f = img.data + img.len - SST_FOOTER_SIZE;
    uint64_t io = get_u64le(f + 16);   /* the first partition */
    img.data[io + 5] ^= 0x40;
    sst_reader *r = NULL;
    TU_OK(sst_reader_open_mem("bad.sst", img.data, img.len, false, &r));
    kv_iter *it = sst_iter_new(r);
    char k[32];
    size_t kl = key_of(0, k);
    kv_iter_seek(it, (const uint8_t *)k, kl);
    assert_false(kv_iter_valid(it));
    TU_RC(SHALE_CORRUPT, kv_iter_status(it));
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)io);
    assert_non_null(strstr(shale_errmsg(), "bad.sst"));
    assert_non_null(strstr(shale_errmsg(), want));
    kv_iter_destroy(it);
    TU_RC(SHALE_CORRUPT, sst_reader_verify(r, NULL));
    sst_reader_unref(r);
    buf_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format_reads),
        cmocka_unit_test(test_index_search_keys),
        cmocka_unit_test(test_fast_levels),
        cmocka_unit_test(test_lazy_reads),
        cmocka_unit_test(test_shared_tables),
        cmocka_unit_test(test_open_reads_the_recorded_tail),
        cmocka_unit_test(test_index_only),
        cmocka_unit_test(test_corrupt_partition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
