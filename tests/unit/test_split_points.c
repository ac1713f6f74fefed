/*
 * test_split_points.c -- shard facts and balanced split points
 * (shale_admin.h, engine/db/shard_stats.c).
 *
 * The balance is checked the way a user would see it: clone the shard into
 * one child per range the split points give, scan every child, add up its
 * keys' and values' bytes, and require the largest child within 5 % of the
 * smallest.  On a uniform shard and on a skewed one (a tenth of the keys
 * holding most of the bytes), 2, 4 and 8 ways.  Plus: the points respect a
 * clone's visible range, are stable, and reading them reads no data block
 * (requests and bytes counted).
 */
#include "support/dbtest.h"
#include "shale_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 40000u

static int kv_cmp_bytes(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Values of incompressible bytes, so that stored and logical bytes agree
 * (the split balances what is stored). */
static void fill_random(uint8_t *v, size_t n, uint64_t *st)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)tu_rand(st);
}

/* A shard of NKEYS keys: uniform (every value 100 B) or skewed (keys of
 * the tenth [45 %, 55 %) get 2000 B, the others 20 B), flushed to SSTs:
 * several L0s and sorted runs. */
static char *make_shard(const char *dir, bool skewed)
{
    char *uri = tu_file_uri(dir, "parent");
    shale_options o;
    shale_options_init(&o);
    o.memtable_bytes = 2u << 20;
    o.wal_flush_bytes = 1u << 20;
    o.compression_level = 0;
    o.await_durable = false;   /* a bulk load; close makes it durable */
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    uint64_t st = 42;
    uint8_t *val = malloc(2000);
    /* Written in a shuffled order so every SST covers much of the range. */
    for (unsigned n = 0; n < NKEYS; n++) {
        unsigned i = (unsigned)((n * 7919ull) % NKEYS);
        char k[32];
        size_t kl = dt_key(k, sizeof k, i);
        size_t vl = 100;
        if (skewed)
            vl = (i >= NKEYS * 45 / 100 && i < NKEYS * 55 / 100) ? 2000 : 20;
        fill_random(val, vl, &st);
        TU_OK(shale_put(db, k, kl, val, vl));
        /* The skewed shard gets a sorted run under later L0s. */
        if (skewed && n == NKEYS / 2)
            TU_OK(shale_compact(db, true));
    }
    free(val);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_close(db));
    return uri;
}

/* Logical bytes (keys + values) and keys of a store, by scanning it. */
static void scan_bytes(const char *uri, uint64_t *bytes, uint64_t *keys)
{
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(uri, NULL, NULL, &r));
    shale_iter *it = NULL;
    TU_OK(shale_reader_scan(r, NULL, 0, NULL, 0, &it));
    *bytes = *keys = 0;
    for (; shale_iter_valid(it); shale_iter_next(it)) {
        size_t kl, vl;
        shale_iter_key(it, &kl);
        shale_iter_value(it, &vl);
        *bytes += kl + vl;
        (*keys)++;
    }
    TU_OK(shale_iter_status(it));
    shale_iter_free(it);
    shale_reader_close(r);
}

/* Clones one child per range of sp from one checkpoint of parent, and
 * checks the children by scanning: every key once, and the measure within
 * 5 % between the largest and the smallest child. */
static void check_balance(const char *dir, const char *parent, const shale_split_points *sp,
                          const char *tag)
{
    shale_checkpoint cp;
    TU_OK(shale_admin_checkpoint_create(parent, NULL, 0, NULL, &cp));
    uint64_t minv = UINT64_MAX, maxv = 0, total_keys = 0;
    for (uint32_t c = 0; c < sp->ways; c++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s-%u-child%u", tag, sp->ways, c);
        char *child = tu_file_uri(dir, sub);
        shale_clone_spec spec = {0};
        spec.parent_uri = parent;
        spec.parent_checkpoint_id = cp.id;
        spec.child_uri = child;
        if (c > 0) {
            spec.range_start = sp->boundaries[c - 1].data;
            spec.range_start_len = sp->boundaries[c - 1].len;
        }
        if (c + 1 < sp->ways) {
            spec.range_end = sp->boundaries[c].data;
            spec.range_end_len = sp->boundaries[c].len;
        }
        TU_OK(shale_clone(&spec, NULL, NULL));
        uint64_t bytes, keys;
        scan_bytes(child, &bytes, &keys);
        uint64_t v = sp->by == SHALE_SPLIT_BY_KEYS ? keys : bytes;
        if (v < minv)
            minv = v;
        if (v > maxv)
            maxv = v;
        total_keys += keys;
        free(child);
    }
    assert_int_equal(total_keys, NKEYS);
    double spread = (double)(maxv - minv) / (double)minv;
    print_message("%s %u ways by %s: children %llu..%llu (spread %.2f %%)\n", tag, sp->ways,
                  sp->by == SHALE_SPLIT_BY_KEYS ? "keys" : "bytes", (unsigned long long)minv,
                  (unsigned long long)maxv, spread * 100);
    assert_true(spread <= 0.05);
}

static void balanced(const char *name, bool skewed)
{
    char *dir = tu_tmpdir(name);
    char *parent = make_shard(dir, skewed);
    shale_shard_info in;
    TU_OK(shale_shard_info_get(parent, NULL, &in));
    assert_true(in.sst_count >= 2);
    if (skewed)
        assert_true(in.sorted_run_count >= 1 && in.l0_count >= 1);
    assert_int_equal(in.approx_keys, NKEYS);
    shale_shard_info_clear(&in);
    const uint32_t ways[] = {2, 4, 8};
    for (size_t i = 0; i < 3; i++) {
        shale_split_points sp;
        TU_OK(shale_split_points_get(parent, NULL, ways[i], SHALE_SPLIT_BY_BYTES, &sp));
        assert_int_equal(sp.ways, ways[i]);
        for (uint32_t b = 1; b + 1 < sp.ways; b++)
            assert_true(memcmp(sp.boundaries[b - 1].data, sp.boundaries[b].data,
                               sp.boundaries[b].len) < 0);
        check_balance(dir, parent, &sp, skewed ? "skewed" : "uniform");
        shale_split_points_clear(&sp);
    }
    free(parent);
    tu_rmtree(dir);
    free(dir);
}

static void test_uniform_by_bytes(void **state)
{
    (void)state;
    balanced("sp_uniform", false);
}

static void test_skewed_by_bytes(void **state)
{
    (void)state;
    balanced("sp_skewed", true);
}

/* By keys on the skewed shard: the big-value tenth would take most of the
 * bytes, but the keys split evenly. */
static void test_uniform_by_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("sp_keys");
    char *parent = make_shard(dir, false);
    shale_split_points sp;
    TU_OK(shale_split_points_get(parent, NULL, 4, SHALE_SPLIT_BY_KEYS, &sp));
    check_balance(dir, parent, &sp, "keys");
    shale_split_points_clear(&sp);
    free(parent);
    tu_rmtree(dir);
    free(dir);
}

/* A clone's points lie inside its visible range and balance its part. */
static void test_respects_visible_range(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("sp_range");
    char *parent = make_shard(dir, false);
    char *mid = tu_file_uri(dir, "mid");
    char lo[32], hi[32];
    size_t lol = dt_key(lo, sizeof lo, NKEYS / 4), hil = dt_key(hi, sizeof hi, NKEYS / 2);
    shale_clone_spec spec = {0};
    spec.parent_uri = parent;
    spec.child_uri = mid;
    spec.range_start = lo;
    spec.range_start_len = lol;
    spec.range_end = hi;
    spec.range_end_len = hil;
    TU_OK(shale_clone(&spec, NULL, NULL));
    shale_shard_info in;
    TU_OK(shale_shard_info_get(mid, NULL, &in));
    assert_int_equal(in.range_start.len, lol);
    assert_memory_equal(in.range_start.data, lo, lol);
    /* About a quarter of the parent's keys (blocks at the bounds count
     * whole). */
    assert_true(in.approx_keys > NKEYS / 4 - NKEYS / 50 && in.approx_keys < NKEYS / 4 + NKEYS / 50);
    shale_shard_info_clear(&in);
    shale_split_points sp;
    TU_OK(shale_split_points_get(mid, NULL, 4, SHALE_SPLIT_BY_BYTES, &sp));
    for (uint32_t b = 0; b + 1 < sp.ways; b++) {
        assert_true(kv_cmp_bytes(sp.boundaries[b].data, sp.boundaries[b].len, lo, lol) > 0);
        assert_true(kv_cmp_bytes(sp.boundaries[b].data, sp.boundaries[b].len, hi, hil) < 0);
    }
    /* Children of the clone: within 5 % of each other by bytes. */
    uint64_t minv = UINT64_MAX, maxv = 0;
    for (uint32_t c = 0; c < sp.ways; c++) {
        char sub[32];
        snprintf(sub, sizeof sub, "mid-child%u", c);
        char *child = tu_file_uri(dir, sub);
        shale_clone_spec cs = {0};
        cs.parent_uri = mid;
        cs.child_uri = child;
        cs.range_start = c ? sp.boundaries[c - 1].data : (const uint8_t *)lo;
        cs.range_start_len = c ? sp.boundaries[c - 1].len : lol;
        cs.range_end = c + 1 < sp.ways ? sp.boundaries[c].data : (const uint8_t *)hi;
        cs.range_end_len = c + 1 < sp.ways ? sp.boundaries[c].len : hil;
        TU_OK(shale_clone(&cs, NULL, NULL));
        uint64_t bytes, keys;
        scan_bytes(child, &bytes, &keys);
        minv = bytes < minv ? bytes : minv;
        maxv = bytes > maxv ? bytes : maxv;
        free(child);
    }
    print_message("clone [1/4, 1/2) 4 ways by bytes: children %llu..%llu (spread %.2f %%)\n",
                  (unsigned long long)minv, (unsigned long long)maxv,
                  100.0 * (double)(maxv - minv) / (double)minv);
    assert_true((double)(maxv - minv) / (double)minv <= 0.05);
    shale_split_points_clear(&sp);
    free(mid);
    free(parent);
    tu_rmtree(dir);
    free(dir);
}

/* Reading split points reads no data block: per SST exactly two ranged
 * reads (footer; then index -- format 3: its partitions and top level --
 * and properties), and fewer bytes than the SSTs'
 * non-data part.  Stable: the same answer twice. */
static void test_reads_no_data_block(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("sp_nodata");
    char *parent = make_shard(dir, false);
    shale_shard_info in;
    TU_OK(shale_shard_info_get(parent, NULL, &in));
    uint64_t ssts = in.sst_count, data_bytes = in.bytes;
    shale_shard_info_clear(&in);
    /* The SSTs' total size, from the manifest. */
    char *json = NULL;
    TU_OK(shale_manifest_show(parent, NULL, 0, &json));
    uint64_t total = 0;
    for (const char *p = json; (p = strstr(p, "\"size\": ")); p += 8)
        total += strtoull(p + 8, NULL, 10);
    shale_free(json);
    assert_true(total > data_bytes);

    shale_objstats a, b;
    shale_objstore_global_stats(&a);
    shale_split_points sp1, sp2;
    TU_OK(shale_split_points_get(parent, NULL, 8, SHALE_SPLIT_BY_BYTES, &sp1));
    shale_objstore_global_stats(&b);
    uint64_t ranged = b.requests[SHALE_OP_GET_RANGE][0] - a.requests[SHALE_OP_GET_RANGE][0];
    uint64_t gets = b.requests[SHALE_OP_GET][0] - a.requests[SHALE_OP_GET][0];
    uint64_t read = b.bytes_read - a.bytes_read;
    print_message("%llu SSTs: %llu ranged reads, %llu GETs, %llu bytes read of %llu "
                  "(data blocks %llu)\n", (unsigned long long)ssts, (unsigned long long)ranged,
                  (unsigned long long)gets, (unsigned long long)read,
                  (unsigned long long)total, (unsigned long long)data_bytes);
    assert_int_equal(ranged, 2 * ssts);
    assert_true(gets <= 2);   /* the manifest */
    assert_true(read < total - data_bytes + 64 * 1024);
    TU_OK(shale_split_points_get(parent, NULL, 8, SHALE_SPLIT_BY_BYTES, &sp2));
    for (uint32_t i = 0; i + 1 < sp1.ways; i++) {
        assert_int_equal(sp1.boundaries[i].len, sp2.boundaries[i].len);
        assert_memory_equal(sp1.boundaries[i].data, sp2.boundaries[i].data, sp1.boundaries[i].len);
    }
    shale_split_points_clear(&sp1);
    shale_split_points_clear(&sp2);
    free(parent);
    tu_rmtree(dir);
    free(dir);
}

/* A database written before SST format 2 (tests/unit/data/db-format1:
 * 500 keys key0000000000.. by `shale load`, flushed, with a checkpoint):
 * still read, and its facts and split points come from estimates. */
static void test_format1_database(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("sp_format1");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -r tests/unit/data/db-format1 '%s/db'", dir);
    assert_int_equal(system(cmd), 0);
    char *uri = tu_file_uri(dir, "db");
    uint64_t bytes, keys;
    scan_bytes(uri, &bytes, &keys);
    assert_int_equal(keys, 500);
    shale_shard_info in;
    TU_OK(shale_shard_info_get(uri, NULL, &in));
    assert_int_equal(in.approx_keys, 500);
    assert_int_equal(in.kv_bytes, in.bytes);   /* no per-block counts in format 1 */
    shale_shard_info_clear(&in);
    shale_split_points sp;
    TU_OK(shale_split_points_get(uri, NULL, 2, SHALE_SPLIT_BY_KEYS, &sp));
    /* Near the middle key (key0000000250), within a few blocks. */
    char mid[32];
    snprintf(mid, sizeof mid, "key%010d", 250);
    assert_int_equal(sp.boundaries[0].len, strlen(mid));
    assert_true(memcmp(sp.boundaries[0].data, "key00000002", 11) == 0);
    shale_split_points_clear(&sp);
    free(uri);
    tu_rmtree(dir);
    free(dir);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("sp_bad");
    char *uri = tu_file_uri(dir, "empty");
    shale_db *db = NULL;
    TU_OK(shale_open(uri, NULL, &db));
    TU_OK(shale_close(db));
    shale_split_points sp;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_split_points_get(uri, NULL, 2, SHALE_SPLIT_BY_BYTES, &sp));
    assert_non_null(strstr(shale_errmsg(), "too little data"));
    TU_RC(SHALE_INVALID_ARGUMENT, shale_split_points_get(uri, NULL, 1, SHALE_SPLIT_BY_BYTES, &sp));
    assert_non_null(strstr(shale_errmsg(), "ways"));
    char *none = tu_file_uri(dir, "none");
    TU_RC(SHALE_NOT_FOUND, shale_split_points_get(none, NULL, 2, SHALE_SPLIT_BY_BYTES, &sp));
    free(none);
    free(uri);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_by_bytes),
        cmocka_unit_test(test_skewed_by_bytes),
        cmocka_unit_test(test_uniform_by_keys),
        cmocka_unit_test(test_respects_visible_range),
        cmocka_unit_test(test_reads_no_data_block),
        cmocka_unit_test(test_format1_database),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
