/*
 * test_checkpoint.c -- checkpoints, the WAL gap (the seed's bug), and the
 * read-only reader.
 */
#include "support/dbtest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef dt_fixture fixture;

static int setup(void **state)
{
    fixture *f = dt_fixture_new("checkpoint");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    dt_fixture_free(*state);
    return 0;
}

/* Seed: open writes the fencing WAL, which opens a gap; a full-scope
 * checkpoint with an EMPTY memtable must still close it. */
static void test_checkpoint_scope_all_closes_wal_gap(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.next_wal_sst_id - 1 > info.replay_after_wal_id);  /* the gap */
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "full", &cp));
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    TU_OK(shale_db_info_get(db, &info));
    assert_int_equal(info.replay_after_wal_id, info.next_wal_sst_id - 1);
    assert_int_equal(cp.manifest_id, info.manifest_id);
    assert_string_equal(cp.name, "full");
    /* Also with data: everything goes to L0 and the gap closes. */
    for (unsigned i = 0; i < 100; i++)
        dt_put(db, i, 1);
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    TU_OK(shale_close(db));
}

/* Seed: Durable scope keeps the gap, and the WAL it names is needed. */
static void test_checkpoint_wal_replay_needed_without_full_flush(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 20; i++)
        dt_put(db, i, 1);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
    assert_true(cp.replay_after_wal_id < cp.next_wal_sst_id - 1);
    /* The checkpoint's data is only in the WAL: a reader at the checkpoint
     * replays it. */
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    for (unsigned i = 0; i < 20; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
    TU_OK(shale_close(db));
}

static void test_checkpoint_list_refresh_delete(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_checkpoint a, b;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 60000, "a", &a));
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "b", &b));
    assert_true(a.expire_time_ms > a.create_time_ms);
    assert_int_equal(b.expire_time_ms, 0);
    TU_OK(shale_close(db));
    shale_checkpoint *list = NULL;
    size_t n = 0;
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    assert_int_equal(n, 2);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(list[i].id, a.id)) {
            seen |= 1;
            assert_string_equal(list[i].name, "a");
            assert_int_equal(list[i].manifest_id, a.manifest_id);
        }
        if (!strcmp(list[i].id, b.id))
            seen |= 2;
    }
    assert_int_equal(seen, 3);
    shale_free(list);
    TU_OK(shale_checkpoint_refresh(f->uri, &f->o, a.id, 0));
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i].id, a.id))
            assert_int_equal(list[i].expire_time_ms, 0);
    shale_free(list);
    TU_OK(shale_checkpoint_delete(f->uri, &f->o, a.id));
    TU_RC(SHALE_NOT_FOUND, shale_checkpoint_delete(f->uri, &f->o, a.id));
    TU_RC(SHALE_NOT_FOUND, shale_checkpoint_refresh(f->uri, &f->o, "no-such-id", 0));
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, b.id);
    shale_free(list);
}

static void test_admin_checkpoint_sees_wal_written_after_manifest(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 10; i++)
        dt_put(db, i, 1);
    /* No flush: the manifest's next_wal_sst_id lags the WAL. */
    shale_checkpoint cp;
    TU_OK(shale_admin_checkpoint_create(f->uri, &f->o, 0, "admin", &cp));
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    for (unsigned i = 0; i < 10; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
    TU_OK(shale_close(db));
}

static void test_reader_does_not_fence_and_refreshes(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_put(db, 1, 1);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, NULL, &r));
    dt_expect_reader(r, 1, 1);
    dt_put(db, 2, 1);                        /* writer still writable */
    TU_OK(shale_flush_memtable(db));
    dt_put(db, 3, 1);
    dt_expect_reader(r, 2, 0);               /* not yet */
    TU_OK(shale_reader_refresh(r));
    dt_expect_reader(r, 2, 1);
    dt_expect_reader(r, 3, 1);
    uint64_t n = 0;
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &n));
    assert_int_equal(n, 3);
    shale_reader_close(r);
    TU_OK(shale_close(db));
    /* A wrong WAL store is refused, naming both. */
    shale_options o = f->o;
    o.wal_store_uri = "mem://elsewhere";
    TU_RC(SHALE_INVALID_ARGUMENT, shale_reader_open(f->uri, &o, NULL, &r));
    assert_non_null(strstr(shale_errmsg(), f->wal_uri));
}

static void test_wal_store_reconfiguration(void **state)
{
    fixture *f = *state;
    shale_options o = f->o;
    o.wal_store_uri = NULL;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &o, &db));      /* None recorded */
    dt_put(db, 1, 1);
    /* Moving the WAL needs the old WAL's data in L0 first. */
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, NULL, NULL));
    TU_OK(shale_close(db));
    TU_OK(shale_open(f->uri, &f->o, &db));   /* None -> Some: allowed, recorded */
    dt_expect(db, 1, 1);
    dt_put(db, 2, 1);
    TU_OK(shale_close(db));
    o.wal_store_uri = "mem://other-wal";     /* Some(a) -> Some(b): refused */
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open(f->uri, &o, &db));
    assert_non_null(strstr(shale_errmsg(), f->wal_uri));
    assert_non_null(strstr(shale_errmsg(), "mem://other-wal"));
    o.wal_store_uri = NULL;                  /* Some(a) -> None: refused */
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open(f->uri, &o, &db));
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_expect(db, 1, 1);
    dt_expect(db, 2, 1);
    TU_OK(shale_close(db));
}

typedef struct flusher {
    shale_db *db;
    volatile int stop;
    shale_status rc;
} flusher;

static void *flush_loop(void *arg)
{
    flusher *fl = arg;
    for (unsigned i = 0; !fl->stop && !fl->rc; i++) {
        dt_put(fl->db, 1000 + i % 50, i);
        fl->rc = shale_flush_memtable(fl->db);
    }
    return NULL;
}

/* A Durable-scope checkpoint whose own manifest write is followed at once
 * by the writer's flush (another version) is still described from the
 * version it pins: the call used to look it up in the writer's latest
 * version and fail ("not in the manifest after creating it") when a flush
 * had committed in between (seen in test_sim). */
static void test_durable_checkpoint_beside_flushes(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    flusher fl = {db, 0, SHALE_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flush_loop, &fl), 0);
    for (unsigned i = 0; i < 60; i++) {
        shale_checkpoint cp;
        TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
        assert_true(cp.manifest_id > 0);
        assert_true(cp.next_wal_sst_id > cp.replay_after_wal_id);
        shale_checkpoint *all = NULL;
        size_t n = 0;
        TU_OK(shale_checkpoint_list(f->uri, &f->o, &all, &n));
        bool found = false;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(all[k].id, cp.id)) {
                found = true;
                assert_int_equal(all[k].manifest_id, cp.manifest_id);
                assert_int_equal(all[k].replay_after_wal_id, cp.replay_after_wal_id);
                assert_int_equal(all[k].next_wal_sst_id, cp.next_wal_sst_id);
            }
        assert_true(found);
        shale_free(all);
        TU_OK(shale_checkpoint_delete(f->uri, &f->o, cp.id));
    }
    fl.stop = 1;
    pthread_join(th, NULL);
    TU_OK(fl.rc);
    TU_OK(shale_close(db));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoint_scope_all_closes_wal_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_checkpoint_beside_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_wal_replay_needed_without_full_flush,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_list_refresh_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_checkpoint_sees_wal_written_after_manifest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_does_not_fence_and_refreshes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wal_store_reconfiguration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
