/*
 * test_reader_version.c -- readers at a named manifest version
 * (shale_reader_open_version), the manifest key builder,
 * shale_reader_prefetch and shale_thread_scan_readahead, through the public headers (shale.h,
 * shale_admin.h).  Requests are counted with the process's store counters
 * (shale_objstore_global_stats): what these calls are for is the requests
 * they do not make.
 */
#include "support/dbtest.h"
#include "shale_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t reqs(shale_objop op)
{
    shale_objstats st;
    shale_objstore_global_stats(&st);
    return st.requests[op][0] + st.requests[op][1];
}

static uint64_t all_reqs(void)
{
    uint64_t n = 0;
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        n += reqs((shale_objop)op);
    return n;
}

static void put_range(shale_db *db, unsigned from, unsigned to, unsigned version)
{
    for (unsigned i = from; i < to; i++)
        dt_put(db, i, version);
}

/* At the version a checkpoint pins: that state, not what was written
 * after; one GET and no LIST; refresh does not move it. */
static void version_reader_sees_that_version(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("reader_version_at");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 300, 1);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "v", &cp));
    put_range(db, 0, 50, 2);
    dt_del(db, 60);
    TU_OK(shale_flush_memtable(db));

    uint64_t lists = reqs(SHALE_OP_LIST), gets = reqs(SHALE_OP_GET);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open_version(f->uri, &f->o, cp.manifest_id, &r));
    assert_true(reqs(SHALE_OP_LIST) == lists);
    /* The manifest's GET; the version records no WAL to replay (scope
     * All), so no WAL object is asked for. */
    assert_true(reqs(SHALE_OP_GET) == gets + 1);
    shale_db_info info;
    TU_OK(shale_reader_info_get(r, &info));
    assert_true(info.manifest_id == cp.manifest_id);
    for (unsigned i = 0; i < 300; i += 7)
        dt_expect_reader(r, i, 1);
    dt_expect_reader(r, 60, 1);
    TU_OK(shale_reader_refresh(r));   /* a fixed version: no-op */
    TU_OK(shale_reader_info_get(r, &info));
    assert_true(info.manifest_id == cp.manifest_id);
    dt_expect_reader(r, 3, 1);
    uint64_t n = 0;
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &n));
    assert_int_equal(n, 300);
    shale_reader_close(r);

    /* The latest, by id, sees the later writes. */
    TU_OK(shale_db_info_get(db, &info));
    TU_OK(shale_reader_open_version(f->uri, &f->o, info.manifest_id, &r));
    dt_expect_reader(r, 3, 2);
    dt_expect_reader(r, 60, 0);
    shale_reader_close(r);
    TU_OK(shale_close(db));
    dt_fixture_free(f);
}

/* A version that records WAL ids to replay has them replayed. */
static void version_reader_replays_recorded_wal(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("reader_version_wal");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 40, 1);
    TU_OK(shale_flush_wal(db));
    shale_checkpoint cp;   /* Durable: the WAL stays needed */
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
    assert_true(cp.replay_after_wal_id + 1 < cp.next_wal_sst_id);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open_version(f->uri, &f->o, cp.manifest_id, &r));
    for (unsigned i = 0; i < 40; i += 3)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
    TU_OK(shale_close(db));
    dt_fixture_free(f);
}

static void version_reader_refusals(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("reader_version_no");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 10, 1);
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    shale_reader *r = NULL;
    assert_int_equal(shale_reader_open_version(f->uri, &f->o, info.manifest_id + 5, &r),
                     SHALE_NOT_FOUND);
    assert_null(r);
    assert_non_null(strstr(shale_errmsg(), "manifest version"));
    assert_int_equal(shale_reader_open_version(f->uri, &f->o, 0, &r), SHALE_INVALID_ARGUMENT);
    assert_null(r);
    TU_OK(shale_close(db));
    dt_fixture_free(f);
}

/* The key a HEAD of the next version asks for: none exists past the
 * latest, the latest's own does. */
static void manifest_key_names_versions(void **state)
{
    (void)state;
    char key[SHALE_KEY_MAX];
    shale_manifest_key(12, key, sizeof key);
    assert_string_equal(key, "manifest/00000000000000000012.manifest");
    dt_fixture *f = dt_fixture_new("reader_version_key");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->uri, &f->o.store, &s));
    shale_manifest_key(info.manifest_id, key, sizeof key);
    TU_OK(shale_objstore_head(s, key, NULL, NULL));
    shale_manifest_key(info.manifest_id + 1, key, sizeof key);
    assert_int_equal(shale_objstore_head(s, key, NULL, NULL), SHALE_NOT_FOUND);
    shale_objstore_close(s);
    TU_OK(shale_close(db));
    dt_fixture_free(f);
}

/* Two levels (a sorted run and an L0 SST) over the same keys; a reader
 * with a cache of its own. */
static shale_reader *two_level_reader(dt_fixture *f, shale_cache *cache)
{
    /* No background compactor: with it, the L0 SSTs the second pass
     * flushes could be merged into the run before the levels are checked
     * (seen under ASan in CI). */
    f->o.compactor = false;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 3000, 1);
    TU_OK(shale_compact(db, true));
    for (unsigned i = 1; i < 3000; i += 2)
        dt_put(db, i, 2);
    TU_OK(shale_flush_memtable(db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.l0_count >= 1 && info.sorted_run_count >= 1);
    TU_OK(shale_close(db));
    shale_options o = f->o;
    o.block_cache = cache;
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &o, NULL, &r));
    return r;
}

/* After a prefetch from a key, a short scan from it reads nothing more
 * from the store; without one, the same scan at another key does. */
static void prefetch_fills_every_level(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("reader_prefetch");
    shale_cache *cache = NULL;
    TU_OK(shale_cache_new(8u << 20, &cache));
    shale_reader *r = two_level_reader(f, cache);
    char k[32];
    size_t kl = dt_key(k, sizeof k, 1234);
    uint64_t before = all_reqs();
    TU_OK(shale_reader_prefetch(r, k, kl, 18));
    assert_true(all_reqs() > before);   /* it read: the blocks were not cached */
    before = all_reqs();
    shale_iter *it = NULL;
    TU_OK(shale_reader_scan(r, k, kl, NULL, 0, &it));
    for (unsigned i = 0; i < 16; i++) {
        assert_true(shale_iter_valid(it));
        size_t gl = 0, vl = 0;
        const void *g = shale_iter_key(it, &gl);
        char want[32];
        size_t wl = dt_key(want, sizeof want, 1234 + i);
        assert_true(gl == wl && !memcmp(g, want, wl));
        char wv[128];
        size_t wvl = dt_val(wv, sizeof wv, 1234 + i, (1234 + i) % 2 ? 2 : 1);
        const void *v = shale_iter_value(it, &vl);
        assert_true(vl == wvl && !memcmp(v, wv, wvl));
        shale_iter_next(it);
    }
    TU_OK(shale_iter_status(it));
    shale_iter_free(it);
    assert_true(all_reqs() == before);   /* every level's blocks were there */

    /* The same scan elsewhere, not prefetched, reads. */
    kl = dt_key(k, sizeof k, 2500);
    before = all_reqs();
    TU_OK(shale_reader_scan(r, k, kl, NULL, 0, &it));
    assert_true(shale_iter_valid(it));
    shale_iter_free(it);
    assert_true(all_reqs() > before);

    /* Past every key: nothing to read, nothing read. */
    kl = dt_key(k, sizeof k, 9999);
    before = all_reqs();
    TU_OK(shale_reader_prefetch(r, k, kl, 18));
    assert_true(all_reqs() == before);
    shale_reader_close(r);
    shale_cache_free(cache);
    dt_fixture_free(f);
}

/* Ranged reads and bytes of a whole scan of uri by a reader with a
 * cache of its own. */
static void scan_all(const char *uri, const shale_options *o, uint64_t *reads, uint64_t *bytes,
                     unsigned *keys)
{
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(uri, o, NULL, &r));
    shale_objstats a, b;
    shale_objstore_global_stats(&a);
    shale_iter *it = NULL;
    TU_OK(shale_reader_scan(r, NULL, 0, NULL, 0, &it));
    unsigned n = 0;
    for (; shale_iter_valid(it); shale_iter_next(it))
        n++;
    TU_OK(shale_iter_status(it));
    shale_iter_free(it);
    shale_objstore_global_stats(&b);
    *reads = b.requests[SHALE_OP_GET_RANGE][0] + b.requests[SHALE_OP_GET_RANGE][1] -
             a.requests[SHALE_OP_GET_RANGE][0] - a.requests[SHALE_OP_GET_RANGE][1];
    *bytes = b.bytes_read - a.bytes_read;
    *keys = n;
    shale_reader_close(r);
}

/* With shale_thread_scan_readahead(1 MiB) a scan of a ~3 MB SST reads it
 * in 1 MiB windows from its seek on (a few reads); with the default ramp
 * (two blocks alone, then 64 KiB doubling) it takes several more.  The
 * setting is the calling thread's: 0 restores the ramp. */
static void scan_readahead_reads_whole_windows(void **state)
{
    (void)state;
    /* mem://: a store reached by requests (file:// reads its blocks
     * through an open descriptor, without readahead windows). */
    char *dir = NULL, *uri = dt_store_uri("mem", "reader_scan_ra", &dir);
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.compactor = false;
    o.compression_level = 0;   /* stored bytes = what the scan reads */
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    put_range(db, 0, 45000, 1);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    uint64_t ra_reads, ra_bytes, plain_reads, plain_bytes, again_reads, again_bytes;
    unsigned ra_keys, plain_keys, again_keys;
    /* With the setting first: the partitions it loads are then in the
     * process's shared table, which only helps the scans after it. */
    shale_thread_scan_readahead(1u << 20);
    scan_all(uri, &o, &ra_reads, &ra_bytes, &ra_keys);
    shale_thread_scan_readahead(0);
    scan_all(uri, &o, &plain_reads, &plain_bytes, &plain_keys);
    scan_all(uri, &o, &again_reads, &again_bytes, &again_keys);
    print_message("# scan of %u keys: %llu reads (%llu bytes) with 1 MiB windows, %llu "
                  "(%llu) with the ramp\n", ra_keys, (unsigned long long)ra_reads,
                  (unsigned long long)ra_bytes, (unsigned long long)plain_reads,
                  (unsigned long long)plain_bytes);
    assert_int_equal(ra_keys, 45000);
    assert_int_equal(plain_keys, 45000);
    assert_true(plain_bytes > (2u << 20));   /* enough data for the ramp to show */
    /* 1 MiB windows: the data's MiBs, the tail and a partition read or two. */
    assert_true(ra_reads <= ra_bytes / (1u << 20) + 4);
    assert_true(ra_reads + 3 <= plain_reads);
    assert_int_equal(again_reads, plain_reads);   /* 0 restored the ramp */
    free(uri);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_reader_sees_that_version),
        cmocka_unit_test(version_reader_replays_recorded_wal),
        cmocka_unit_test(version_reader_refusals),
        cmocka_unit_test(manifest_key_names_versions),
        cmocka_unit_test(prefetch_fills_every_level),
        cmocka_unit_test(scan_readahead_reads_whole_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
