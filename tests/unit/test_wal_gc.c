/*
 * test_wal_gc.c -- the writer deletes the WAL SSTs its flushes made
 * obsolete (engine/db/wal_gc.c, docs/gc.md "The writer's WAL GC").
 *
 * On file://, WAL in its own store, tiny WAL SSTs (shale_flush_wal writes
 * one each time), no background compactor:
 *   - many WAL SSTs and flushes leave, after close, only the open's
 *     fencing WAL SST (without the writer's GC: every one of them), and
 *     every key reads back after a reopen;
 *   - a Durable checkpoint's WAL gap stays (a reader at the checkpoint
 *     reads its data) while what is flushed after it goes;
 *   - the WAL an earlier writer left below this open's fence is not this
 *     writer's to delete (a zombie of that writer next writes at a fence);
 *   - keep_flushed_wal = true keeps them all (for the GC pass);
 *   - a reader at the latest state after the writer's GC reads every key;
 *   - shale_objstore_delete_many, the round's one call: on file:// in the
 *     WAL log mode the tombstones of 30 records take one fdatasync (a
 *     failure armed on the second fails per-key deletes, not the batch),
 *     the deletes are durable (a new handle lists what is left), missing
 *     keys are fine, and each key counts as one DELETE; on mem:// too.
 * The close drains what the flushes made obsolete, so the tests count the
 * store after shale_close(): no waiting on the flush thread.
 */
#include "support/dbtest.h"
#include "db/wal.h"
#include "objstore/objstore_int.h"   /* objstore_fs_fail_fsync: counting syncs */
#include "shale_objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef dt_fixture fixture;

static int setup(void **state)
{
    fixture *f = dt_fixture_new("walgc");
    f->o.compactor = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    dt_fixture_free(*state);
    return 0;
}

/* The WAL ids in the store at uri, ascending (list order), *n of them. */
static uint64_t *wal_ids(const char *uri, size_t *n)
{
    shale_objstore *s = NULL;
    shale_objlist l;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    TU_OK(shale_objstore_list_all(s, "wal/", &l));
    uint64_t *ids = calloc(l.count + 1, sizeof *ids);
    *n = 0;
    for (size_t i = 0; i < l.count; i++)
        if (wal_key_parse(l.items[i].key, &ids[*n]))
            (*n)++;
    shale_objlist_free(&l);
    shale_objstore_close(s);
    return ids;
}

static size_t wal_count(const char *uri)
{
    size_t n = 0;
    free(wal_ids(uri, &n));
    return n;
}

/* rounds x (at least 3 WAL SSTs, then a memtable flush), model updated. */
static void write_rounds(shale_db *db, dt_model *m, unsigned rounds, unsigned version)
{
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned w = 0; w < 3; w++) {
            for (unsigned i = 0; i < 10; i++) {
                unsigned k = (r * 30 + w * 10 + i) % m->n;
                dt_put(db, k, version);
                m->version[k] = version;
            }
            TU_OK(shale_flush_wal(db));
        }
        TU_OK(shale_flush_memtable(db));
    }
}

/* Many flushes: the WAL store ends with the fence alone. */
static void test_flushed_wal_is_deleted(void **state)
{
    fixture *f = *state;
    dt_model m;
    dt_model_init(&m, 300);
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    uint64_t fence = info.next_wal_sst_id - 1;   /* the open's fencing WAL SST */
    write_rounds(db, &m, 10, 1);
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.replay_after_wal_id >= fence + 30);   /* 30 WAL SSTs flushed */
    /* The GC's counters: what it deleted and what is still listed cover
     * every WAL SST the writer wrote (listed first, so a round between
     * the two counts twice, never not at all); no round failed. */
    size_t n = 0;
    uint64_t *ids = wal_ids(f->wal_uri, &n);
    free(ids);
    shale_wal_gc_stats gs;
    TU_OK(shale_wal_gc_stats_get(db, &gs));
    assert_true(n + gs.deleted >= info.next_wal_sst_id - fence);
    assert_int_equal(gs.failed_rounds, 0);
    assert_int_equal(gs.last_error, SHALE_OK);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_wal_gc_stats_get(db, NULL));
    TU_OK(shale_close(db));
    ids = wal_ids(f->wal_uri, &n);
    assert_int_equal(n, 1);   /* without the writer's GC: 31 */
    assert_int_equal(ids[0], fence);
    free(ids);

    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_model_check(db, &m);
    TU_OK(shale_close(db));
    dt_model_free(&m);
}

/* A Durable checkpoint records a WAL gap: those WAL SSTs stay, the reader
 * at the checkpoint reads them; what is flushed after them goes. */
static void test_checkpoint_gap_is_kept(void **state)
{
    fixture *f = *state;
    dt_model m;
    dt_model_init(&m, 300);
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    write_rounds(db, &m, 2, 1);
    for (unsigned i = 0; i < 30; i++)
        dt_put(db, i, 2);
    TU_OK(shale_flush_wal(db));
    for (unsigned i = 30; i < 60; i++)
        dt_put(db, i, 2);
    TU_OK(shale_flush_wal(db));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
    assert_true(cp.replay_after_wal_id + 2 < cp.next_wal_sst_id);   /* two SSTs in the gap */
    for (unsigned i = 0; i < 60; i++)
        m.version[i] = 2;
    write_rounds(db, &m, 5, 3);
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.replay_after_wal_id > cp.next_wal_sst_id + 10);
    TU_OK(shale_close(db));

    size_t n = 0;
    uint64_t *ids = wal_ids(f->wal_uri, &n);
    /* Exactly the gap's WAL SSTs, and the fence below it (the open's,
     * never this writer's to delete). */
    size_t in_gap = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] < cp.next_wal_sst_id);
        in_gap += ids[i] > cp.replay_after_wal_id;
    }
    assert_int_equal(in_gap, cp.next_wal_sst_id - 1 - cp.replay_after_wal_id);
    free(ids);
    assert_true(n <= in_gap + 1);

    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    for (unsigned i = 0; i < 60; i++)
        dt_expect_reader(r, i, 2);
    shale_reader_close(r);
    TU_OK(shale_reader_open(f->uri, &f->o, NULL, &r));
    dt_model_check_reader(r, &m);
    shale_reader_close(r);
    dt_model_free(&m);
}

/* An earlier writer's WAL below this open's fence (its unflushed tail,
 * replayed by this open, and its fence) is left to the GC pass: a zombie
 * of that writer next writes at a fence id, and only ids above ours are
 * known to be no zombie's. */
static void test_earlier_writers_wal_is_not_ours(void **state)
{
    fixture *f = *state;
    f->o.keep_flushed_wal = true;   /* the first writer leaves all its WAL */
    dt_model m;
    dt_model_init(&m, 300);
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    write_rounds(db, &m, 3, 1);
    TU_OK(shale_close(db));
    size_t before = wal_count(f->wal_uri);
    assert_true(before >= 10);

    f->o.keep_flushed_wal = false;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    uint64_t fence = info.next_wal_sst_id - 1;
    write_rounds(db, &m, 3, 2);
    TU_OK(shale_close(db));
    size_t n = 0;
    uint64_t *ids = wal_ids(f->wal_uri, &n);
    assert_int_equal(n, before + 1);   /* the first writer's, and our fence */
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] <= fence);
    free(ids);
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_model_check(db, &m);
    TU_OK(shale_close(db));
    dt_model_free(&m);
}

/* keep_flushed_wal: every WAL SST stays for the GC pass. */
static void test_keep_flushed_wal(void **state)
{
    fixture *f = *state;
    f->o.keep_flushed_wal = true;
    dt_model m;
    dt_model_init(&m, 300);
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    uint64_t fence = info.next_wal_sst_id - 1;
    write_rounds(db, &m, 4, 1);
    TU_OK(shale_db_info_get(db, &info));
    TU_OK(shale_close(db));
    /* The fence and every id after it up to the last flush's. */
    size_t n = 0;
    uint64_t *ids = wal_ids(f->wal_uri, &n);
    assert_true(n >= 1 + 4 * 3);
    assert_int_equal(ids[0], fence);
    assert_int_equal(ids[n - 1], info.replay_after_wal_id);
    assert_int_equal(n, info.replay_after_wal_id - fence + 1);
    free(ids);
    dt_model_free(&m);
}

/* A reader at the latest state, beside a writer whose GC ran: every key,
 * those in L0 and those in the unflushed tail. */
static void test_latest_reader_after_gc(void **state)
{
    fixture *f = *state;
    dt_model m;
    dt_model_init(&m, 300);
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    write_rounds(db, &m, 6, 1);
    for (unsigned i = 0; i < 20; i++) {
        dt_put(db, i, 2);
        m.version[i] = 2;
    }
    TU_OK(shale_flush_wal(db));   /* a tail the flushes did not cover */
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, NULL, &r));
    dt_model_check_reader(r, &m);
    write_rounds(db, &m, 2, 3);
    TU_OK(shale_reader_refresh(r));
    dt_model_check_reader(r, &m);
    shale_reader_close(r);
    TU_OK(shale_close(db));
    dt_model_free(&m);
}

static uint64_t deletes_counted(void)
{
    shale_objstats st;
    shale_objstore_global_stats(&st);
    return st.requests[SHALE_OP_DELETE][0] + st.requests[SHALE_OP_DELETE][1];
}

static void delete_many_on(const char *uri, const shale_objstore_options *so, bool log)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, so, &s));
    char keys[41][64];
    const char *kp[41];
    for (unsigned i = 0; i < 40; i++) {
        wal_key(i + 1, keys[i], sizeof keys[i]);
        TU_OK(shale_objstore_put_if_absent(s, keys[i], "wal", 3));
    }
    wal_key(1000, keys[40], sizeof keys[40]);   /* never written: fine */
    for (unsigned i = 0; i < 30; i++)
        kp[i] = keys[i];
    kp[30] = keys[40];
    uint64_t before = deletes_counted();
    long failures = log ? objstore_fs_fsync_failures() : 0;
    if (log)   /* the second file sync of a WAL key fails: per-key deletes would meet it */
        TU_OK(objstore_fs_fail_fsync("file", "wal/", 2, 1));
    TU_OK(shale_objstore_delete_many(s, kp, 31));
    if (log) {
        assert_int_equal(objstore_fs_fsync_failures(), failures);
        TU_OK(objstore_fs_fail_fsync("file", "no-such-prefix/", 1, 0));   /* disarmed */
    }
    assert_int_equal(deletes_counted() - before, 31);
    TU_OK(shale_objstore_delete_many(s, kp, 0));
    size_t n = 0;
    uint64_t *ids = NULL;
    if (log) {
        shale_objstore_close(s);   /* durable: a new handle reads the log again */
        ids = wal_ids(uri, &n);
    } else {
        shale_objlist l;
        TU_OK(shale_objstore_list_all(s, "wal/", &l));
        ids = calloc(l.count + 1, sizeof *ids);
        for (size_t i = 0; i < l.count; i++)
            assert_true(wal_key_parse(l.items[i].key, &ids[n++]));
        shale_objlist_free(&l);
        shale_objstore_close(s);
    }
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], 31 + i);
    free(ids);
}

static void test_delete_many(void **state)
{
    fixture *f = *state;
    shale_objstore_options so;
    shale_objstore_options_init(&so);
    so.fs_wal_log = 1;   /* the WAL log mode, as a writer's WAL store on file:// */
    char uri[600];
    snprintf(uri, sizeof uri, "file://%s/dm", f->dir);
    delete_many_on(uri, &so, true);
    delete_many_on("mem://walgc-delete-many", NULL, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flushed_wal_is_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_gap_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_earlier_writers_wal_is_not_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_flushed_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latest_reader_after_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
