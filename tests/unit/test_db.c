/*
 * test_db.c -- the writer's happy paths: round trips through every level,
 * scans and their bounds, batches, snapshots, forced compaction, the block
 * cache during compaction, scan read-ahead, table readers kept open.
 * The writer under faults (fencing, replay gaps, corruption, crashes,
 * concurrency) is in test_db_faults.c.
 * Every case runs on mem:// and file:// (the state names the backend).
 */
#include "support/dbtest.h"
#include "table/sst_table.h"
#include "util/misc.h"
#include "db/db_int.h"
#include "db/manifest.h"
#include "objstore/objstore_fault.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *backend(void **state)
{
    return *state ? (const char *)*state : "mem";
}

static void test_roundtrip_every_level(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "roundtrip", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    dt_model m;
    unsigned n = tu_quick() ? 600 : 2000;
    dt_model_init(&m, n);
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < n; i += 2) {            /* memtable (+ frozen) */
        dt_put(db, i, 1);
        m.version[i] = 1;
    }
    dt_model_check(db, &m);
    TU_OK(shale_close(db));                          /* WAL replay */
    TU_OK(shale_open(uri, &o, &db));
    dt_model_check(db, &m);
    for (unsigned i = 0; i < n; i += 3) {            /* overwrites and deletes */
        if (i % 2) {
            dt_put(db, i, 2);
            m.version[i] = 2;
        } else {
            dt_del(db, i);
            m.version[i] = 0;
        }
    }
    TU_OK(shale_flush_memtable(db));                 /* L0 */
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.l0_count + info.sorted_run_count > 0);
    dt_model_check(db, &m);
    TU_OK(shale_compact(db, true));                  /* one sorted run */
    TU_OK(shale_db_info_get(db, &info));
    assert_int_equal(info.l0_count, 0);
    assert_int_equal(info.sorted_run_count, 1);
    dt_model_check(db, &m);
    for (unsigned i = 1; i < n; i += 5) {            /* new data above the run */
        dt_put(db, i, 3);
        m.version[i] = 3;
    }
    dt_model_check(db, &m);
    TU_OK(shale_close(db));
    TU_OK(shale_open(uri, &o, &db));
    dt_model_check(db, &m);
    TU_OK(shale_close(db));
    dt_model_free(&m);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

static void test_scan_bounds_across_levels(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "scan", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 300; i++)
        dt_put(db, i, 1);
    TU_OK(shale_compact(db, true));
    for (unsigned i = 0; i < 300; i += 2)
        dt_put(db, i, 2);
    TU_OK(shale_flush_memtable(db));
    for (unsigned i = 0; i < 300; i += 7)
        dt_del(db, i);
    char s[32], e[32];
    size_t sl = dt_key(s, sizeof s, 100), el = dt_key(e, sizeof e, 150);
    shale_iter *it = NULL;
    TU_OK(shale_scan(db, NULL, s, sl, e, el, &it));
    unsigned want = 100;
    for (; shale_iter_valid(it); shale_iter_next(it)) {
        while (want % 7 == 0)
            want++;
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, want), vl = dt_val(v, sizeof v, want,
                                                           want % 2 ? 1 : 2);
        size_t gkl, gvl;
        const void *gk = shale_iter_key(it, &gkl), *gv = shale_iter_value(it, &gvl);
        assert_int_equal(gkl, kl);
        assert_memory_equal(gk, k, kl);
        assert_int_equal(gvl, vl);
        assert_memory_equal(gv, v, vl);
        want++;
    }
    TU_OK(shale_iter_status(it));
    while (want % 7 == 0)
        want++;
    assert_int_equal(want, 150);
    shale_iter_free(it);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

static void test_batch_and_snapshot(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "batch", &dir);
    shale_db *db = NULL;
    shale_options o;
    dt_small_options(&o);
    TU_OK(shale_open(uri, &o, &db));
    dt_put(db, 1, 1);
    dt_put(db, 2, 1);
    shale_snapshot *snap = shale_snapshot_new(db);
    assert_non_null(snap);
    shale_batch *b = shale_batch_new();
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 1), vl = dt_val(v, sizeof v, 1, 2);
    TU_OK(shale_batch_put(b, k, kl, v, vl));
    kl = dt_key(k, sizeof k, 2);
    TU_OK(shale_batch_delete(b, k, kl));
    kl = dt_key(k, sizeof k, 3);
    vl = dt_val(v, sizeof v, 3, 1);
    TU_OK(shale_batch_put(b, k, kl, v, vl));
    assert_int_equal(shale_batch_count(b), 3);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_batch_put(b, "", 0, "x", 1));
    assert_int_equal(shale_batch_count(b), 3);
    TU_OK(shale_write(db, b));
    shale_batch_free(b);
    dt_expect(db, 1, 2);
    dt_expect(db, 2, 0);
    dt_expect(db, 3, 1);
    /* The snapshot still sees the state before the batch, also after a
     * flush and a compaction (which must keep the versions it needs). */
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_compact(db, true));
    shale_read_options ro = {snap};
    void *got = NULL;
    size_t glen = 0;
    kl = dt_key(k, sizeof k, 2);
    TU_OK(shale_get(db, &ro, k, kl, &got, &glen));
    vl = dt_val(v, sizeof v, 2, 1);
    assert_int_equal(glen, vl);
    assert_memory_equal(got, v, vl);
    shale_free(got);
    kl = dt_key(k, sizeof k, 3);
    TU_RC(SHALE_NOT_FOUND, shale_get(db, &ro, k, kl, &got, &glen));
    shale_snapshot_release(db, snap);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A forced compaction merges everything, including writes still in the
 * memtable: with a memtable too large to fill, the data reaches a run only
 * if shale_compact(force) flushes first. */
static void test_forced_compaction_includes_memtable(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "fullcompact", &dir);
    shale_options o;
    dt_small_options(&o);
    o.memtable_bytes = 8 << 20;
    o.max_unflushed_bytes = 16 << 20;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 200; i++)
        dt_put(db, i, 1);
    TU_OK(shale_compact(db, true));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_int_equal(info.l0_count, 0);
    assert_int_equal(info.sorted_run_count, 1);
    assert_true(info.last_l0_seq == info.last_seq);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* Compaction reads its inputs without filling the block cache (issue 19:
 * they filled it to its limit during every compaction); a get still
 * fills it. */
static void test_compaction_leaves_block_cache_alone(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "nocachefill", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 2000; i++)
        dt_put(db, i, 1);
    TU_OK(shale_compact(db, true));     /* every L0 and run merged */
    for (unsigned i = 0; i < 2000; i += 3)
        dt_put(db, i, 2);
    TU_OK(shale_compact(db, true));     /* the run and the new L0s */
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.compactions_done >= 2);
    block_cache *c = db_env_cache(db->env);
    assert_non_null(c);
    assert_int_equal(block_cache_usage(c), 0);
    dt_expect(db, 7, 1);
    dt_expect(db, 9, 2);
    assert_true(block_cache_usage(c) > 0);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A full scan reads ahead: consecutive blocks come in a few large ranged
 * reads, not one request per 4 KiB block (on S3 a round trip each).  The
 * scan must still see every key, in order, with its value. */
static void test_scan_reads_ahead(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "readahead", &dir);
    shale_options o;
    dt_small_options(&o);
    o.block_size = 4096;
    o.sst_target_bytes = 64 << 20;   /* one SST of many blocks */
    unsigned n = 20000;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < n; i++)
        dt_put(db, i, 2);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(uri, &o, NULL, &r));
    shale_objstats before, after;
    shale_objstore_global_stats(&before);
    sst_table_stats tb, ta;
    sst_table_stats_get(&tb);
    shale_iter *it = NULL;
    TU_OK(shale_reader_scan(r, NULL, 0, NULL, 0, &it));
    unsigned seen = 0;
    for (; shale_iter_valid(it); shale_iter_next(it), seen++) {
        char k[32], v[128];
        size_t kl = dt_key(k, sizeof k, seen), vl = dt_val(v, sizeof v, seen, 2), gk, gv;
        const void *key = shale_iter_key(it, &gk), *val = shale_iter_value(it, &gv);
        assert_true(gk == kl && !memcmp(key, k, kl));
        assert_true(gv == vl && !memcmp(val, v, vl));
    }
    TU_OK(shale_iter_status(it));
    shale_iter_free(it);
    shale_objstore_global_stats(&after);
    sst_table_stats_get(&ta);
    assert_int_equal(seen, n);
    uint64_t reads = after.requests[SHALE_OP_GET_RANGE][0] - before.requests[SHALE_OP_GET_RANGE][0];
    uint64_t bytes = after.bytes_read - before.bytes_read;
    /* The index's reads apart (the SST's open: its tail, and the top-level
     * index and properties if they were not in it; then its first
     * partition, and the rest of them in one read once the scan reads
     * ahead past the first): blocks are 4 KiB
     * before compression, so one request per block would average under
     * 4 KiB.  Read ahead, they average far more. */
    uint64_t lazy = ta.lazy_reads - tb.lazy_reads, opens = ta.open_reads - tb.open_reads;
    assert_true(lazy <= 2);
    assert_true(opens <= 2);
    assert_true(reads > opens + lazy);
    reads -= opens + lazy;
    if (bytes / reads < 32 * 1024)
        fail_msg("%llu ranged reads for %llu bytes: no readahead", (unsigned long long)reads,
                 (unsigned long long)bytes);
    shale_reader_close(r);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A table's reader opens its object once and reads every block through
 * that handle.  With no block cache every get reads a block (one ranged
 * read each).  Opening the tables costs one HEAD each on file:// (open and
 * fstat) and none on mem:// (the manifest's size is the hint), and no get
 * after that opens anything again.  On file:// the handle is a descriptor:
 * with the SST files deleted under the reader every value still reads, so
 * the block reads cannot be going back to the path.  (The request counters
 * cannot see the backend's syscalls; the deletion is what shows that no
 * read re-opens the file.) */
static void test_table_reads_keep_objects_open(void **state)
{
    bool file = !strcmp(backend(state), "file");
    char *dir, *uri = dt_store_uri(backend(state), "tablefd", &dir);
    shale_options o;
    dt_small_options(&o);
    o.block_cache_bytes = 0;
    unsigned n = tu_quick() ? 500 : 1500;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < n; i++)
        dt_put(db, i, 1);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(uri, &o, NULL, &r));
    shale_db_info info;
    TU_OK(shale_reader_info_get(r, &info));
    assert_int_equal(info.l0_count, 0);
    assert_true(info.sst_count > 1);
    /* The old name stays an alias of the new one (docs/library.md). */
    shale_db_info old;
    TU_OK(shale_reader_info(r, &old));
    assert_int_equal(old.manifest_id, info.manifest_id);
    assert_int_equal(old.sst_count, info.sst_count);
    shale_objstats s0, s1, s2;
    shale_objstore_global_stats(&s0);
    for (unsigned i = 0; i < n; i++)                 /* opens every table */
        dt_expect_reader(r, i, 1);
    shale_objstore_global_stats(&s1);
    uint64_t heads = s1.requests[SHALE_OP_HEAD][0] - s0.requests[SHALE_OP_HEAD][0];
    uint64_t reads = s1.requests[SHALE_OP_GET_RANGE][0] - s0.requests[SHALE_OP_GET_RANGE][0];
    assert_int_equal(heads, file ? info.sst_count : 0);
    assert_true(reads >= n);
    for (unsigned i = 0; i < n; i++)                 /* tables open: no opens */
        dt_expect_reader(r, i, 1);
    shale_objstore_global_stats(&s2);
    assert_int_equal(s2.requests[SHALE_OP_HEAD][0], s1.requests[SHALE_OP_HEAD][0]);
    assert_true(s2.requests[SHALE_OP_GET_RANGE][0] - s1.requests[SHALE_OP_GET_RANGE][0] >= n);
    if (file) {
        shale_objstore *s = NULL;
        TU_OK(shale_objstore_open(uri, NULL, &s));
        shale_objlist l;
        TU_OK(shale_objstore_list_all(s, "compacted/", &l));
        assert_true(l.count >= info.sst_count);   /* live ones and compaction's leftovers */
        for (size_t i = 0; i < l.count; i++)
            TU_OK(shale_objstore_delete(s, l.items[i].key));
        shale_objlist_free(&l);
        TU_OK(shale_objstore_list_all(s, "compacted/", &l));
        assert_int_equal(l.count, 0);
        shale_objlist_free(&l);
        shale_objstore_close(s);
        for (unsigned i = 0; i < n; i++)             /* read through the descriptors */
            dt_expect_reader(r, i, 1);
    }
    shale_reader_close(r);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

int main(void)
{
    static char mem[] = "mem", file[] = "file", fault[] = "fault";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_forced_compaction_includes_memtable, mem),
        cmocka_unit_test_prestate(test_forced_compaction_includes_memtable, file),
        cmocka_unit_test_prestate(test_roundtrip_every_level, mem),
        cmocka_unit_test_prestate(test_roundtrip_every_level, file),
        cmocka_unit_test_prestate(test_roundtrip_every_level, fault),
        cmocka_unit_test_prestate(test_scan_bounds_across_levels, mem),
        cmocka_unit_test_prestate(test_scan_bounds_across_levels, file),
        cmocka_unit_test_prestate(test_scan_bounds_across_levels, fault),
        cmocka_unit_test_prestate(test_batch_and_snapshot, mem),
        cmocka_unit_test_prestate(test_batch_and_snapshot, file),
        cmocka_unit_test_prestate(test_batch_and_snapshot, fault),
        cmocka_unit_test_prestate(test_compaction_leaves_block_cache_alone, mem),
        cmocka_unit_test_prestate(test_compaction_leaves_block_cache_alone, file),
        cmocka_unit_test_prestate(test_scan_reads_ahead, mem),
        cmocka_unit_test_prestate(test_scan_reads_ahead, file),
        cmocka_unit_test_prestate(test_table_reads_keep_objects_open, mem),
        cmocka_unit_test_prestate(test_table_reads_keep_objects_open, file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
