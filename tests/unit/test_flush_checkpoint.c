/*
 * test_flush_checkpoint.c -- shale_flush_checkpoint(): a Scope-All
 * checkpoint carried by its memtable's flush, in ONE manifest write, with
 * a barrier between the SST's upload and that write (the split's
 * FullFlush, issue 16).
 */
#include "support/dbtest.h"
#include "shale_admin.h"
#include "shale_objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef dt_fixture fixture;

static int setup(void **state)
{
    fixture *f = dt_fixture_new("flushcp");
    /* One memtable for the whole test: no flush but the checkpoint's, so
     * every manifest version is counted. */
    f->o.memtable_bytes = 16u << 20;
    f->o.max_unflushed_bytes = 32u << 20;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    dt_fixture_free(*state);
    return 0;
}

/* Objects under prefix in the store at uri. */
static size_t count_objects(const fixture *f, const char *uri, const char *prefix)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, &f->o.store, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, prefix, &l));
    size_t n = l.count;
    shale_objlist_free(&l);
    shale_objstore_close(s);
    return n;
}

typedef struct barrier_seen {
    const fixture *f;
    unsigned calls;
    size_t manifests, ssts;      /* in the store when the barrier ran */
    shale_status fail;           /* returned by the barrier */
} barrier_seen;

static shale_status barrier(void *ctx)
{
    barrier_seen *b = ctx;
    b->calls++;
    b->manifests = count_objects(b->f, b->f->uri, "manifest/");
    b->ssts = count_objects(b->f, b->f->uri, "compacted/");
    if (b->fail)
        return shale_error_set(b->fail, "journal write refused (test)");
    return SHALE_OK;
}

static bool listed(const fixture *f, const char *id)
{
    shale_checkpoint *list = NULL;
    size_t n = 0;
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= !strcmp(list[i].id, id);
    shale_free(list);
    return found;
}

/* Data in the memtable: one SST, written before the barrier and not yet
 * named; then one manifest version holding the SST, the closed WAL gap and
 * the checkpoint; a reader at the checkpoint needs no WAL file. */
static void test_flush_checkpoint_one_manifest_write(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 200; i++)
        dt_put(db, i, 1);
    shale_db_info before, after;
    TU_OK(shale_db_info_get(db, &before));
    size_t manifests = count_objects(f, f->uri, "manifest/");
    size_t ssts = count_objects(f, f->uri, "compacted/");
    barrier_seen b = {f, 0, 0, 0, SHALE_OK};
    shale_checkpoint cp;
    TU_OK(shale_flush_checkpoint(db, 0, "split:x", NULL, barrier, &b, &cp));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.ssts, ssts + 1);          /* the SST was uploaded ... */
    assert_int_equal(b.manifests, manifests);    /* ... and not committed */
    TU_OK(shale_db_info_get(db, &after));
    assert_int_equal(after.manifest_id, before.manifest_id + 1);   /* one write */
    assert_int_equal(count_objects(f, f->uri, "manifest/"), manifests + 1);
    assert_int_equal(after.l0_count, before.l0_count + 1);
    assert_int_equal(cp.manifest_id, after.manifest_id);
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    assert_int_equal(after.replay_after_wal_id, after.next_wal_sst_id - 1);
    assert_string_equal(cp.name, "split:x");
    assert_true(listed(f, cp.id));
    TU_OK(shale_close(db));
    /* The seed's scenario: the WAL wiped, the checkpoint still reads. */
    shale_objstore *w = NULL;
    TU_OK(shale_objstore_open(f->wal_uri, &f->o.store, &w));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(w, SHALE_WAL_DIR, &l));
    assert_true(l.count > 0);
    for (size_t i = 0; i < l.count; i++)
        TU_OK(shale_objstore_delete(w, l.items[i].key));
    shale_objlist_free(&l);
    shale_objstore_close(w);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    for (unsigned i = 0; i < 200; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
}

/* An empty memtable (the fencing WAL's gap only): no SST, the barrier
 * still runs before the one write, and the gap closes (the seed's bug). */
static void test_flush_checkpoint_empty_memtable(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    shale_db_info before, after;
    TU_OK(shale_db_info_get(db, &before));
    assert_true(before.next_wal_sst_id - 1 > before.replay_after_wal_id);  /* the gap */
    size_t ssts = count_objects(f, f->uri, "compacted/");
    barrier_seen b = {f, 0, 0, 0, SHALE_OK};
    shale_checkpoint cp;
    TU_OK(shale_flush_checkpoint(db, 0, NULL, NULL, barrier, &b, &cp));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.ssts, ssts);
    TU_OK(shale_db_info_get(db, &after));
    assert_int_equal(after.manifest_id, before.manifest_id + 1);
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    assert_int_equal(cp.manifest_id, after.manifest_id);
    TU_OK(shale_close(db));
}

/* A failing barrier: its status and message come back, no checkpoint is
 * recorded, the flush commits alone, and the writer goes on. */
static void test_flush_checkpoint_barrier_failure(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 50; i++)
        dt_put(db, i, 1);
    shale_db_info before, after;
    TU_OK(shale_db_info_get(db, &before));
    barrier_seen b = {f, 0, 0, 0, SHALE_IO};
    shale_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    TU_RC(SHALE_IO, shale_flush_checkpoint(db, 0, "doomed", NULL, barrier, &b, &cp));
    assert_non_null(strstr(shale_errmsg(), "journal write refused (test)"));
    assert_int_equal(b.calls, 1);
    TU_OK(shale_db_info_get(db, &after));
    assert_int_equal(after.manifest_id, before.manifest_id + 1);   /* the flush alone */
    assert_int_equal(after.l0_count, before.l0_count + 1);
    shale_checkpoint *list = NULL;
    size_t n = 9;
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    assert_int_equal(n, 0);
    shale_free(list);
    dt_put(db, 1, 2);
    dt_expect(db, 1, 2);
    dt_expect(db, 2, 1);
    b.fail = SHALE_OK;
    TU_OK(shale_flush_checkpoint(db, 0, NULL, NULL, barrier, &b, &cp));
    assert_true(listed(f, cp.id));
    TU_OK(shale_close(db));
}

/* replaces: the old checkpoint leaves in the same write the new one
 * enters (a FullFlush redone after a crash), by id or by name; an id
 * already gone is fine. */
static void test_flush_checkpoint_replaces(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_put(db, 1, 1);
    shale_checkpoint a, b, c;
    TU_OK(shale_flush_checkpoint(db, 0, "a", NULL, NULL, NULL, &a));
    shale_db_info before, after;
    TU_OK(shale_db_info_get(db, &before));
    TU_OK(shale_flush_checkpoint(db, 0, "b", a.id, NULL, NULL, &b));
    TU_OK(shale_db_info_get(db, &after));
    assert_int_equal(after.manifest_id, before.manifest_id + 1);
    assert_false(listed(f, a.id));
    assert_true(listed(f, b.id));
    TU_OK(shale_flush_checkpoint(db, 0, "c", a.id, NULL, NULL, &c));  /* a: gone already */
    assert_true(listed(f, b.id));
    assert_true(listed(f, c.id));
    /* By name: a record whose id the caller never learnt (a crash after
     * the write) goes too, and the new record of that name stays. */
    shale_checkpoint d, e;
    TU_OK(shale_flush_checkpoint(db, 0, "split:s", NULL, NULL, NULL, &d));
    TU_OK(shale_flush_checkpoint(db, 0, "split:s", "split:s", NULL, NULL, &e));
    assert_false(listed(f, d.id));
    assert_true(listed(f, e.id));
    assert_true(listed(f, b.id));   /* other names untouched */
    assert_true(listed(f, c.id));
    TU_OK(shale_close(db));
}

static shale_status no_barrier(void *ctx)
{
    (void)ctx;
    return SHALE_OK;
}

/* A takeover's open (shale_open_at_fenced_after) builds the replayed
 * memtable's SST while its last write is in flight, for the first flush.
 * That image must not stand for a memtable written to since: with
 * `write_after` the new writer overwrites a key and adds one before the
 * flush, and the checkpoint must hold both (a flush that took the stale
 * image would lose them: the memtable is dropped after it). */
static void takeover_flush(fixture *f, bool write_after)
{
    shale_db *old = NULL, *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &old));
    for (unsigned i = 0; i < 200; i++)
        dt_put(old, i, 1);
    TU_OK(shale_flush_wal(old));   /* in the WAL only: the takeover replays it */
    TU_OK(shale_open_at_fenced_after(f->uri, &f->o, 0, no_barrier, NULL, &db));
    if (write_after) {
        dt_put(db, 0, 2);
        dt_put(db, 500, 2);
    }
    shale_checkpoint cp;
    TU_OK(shale_flush_checkpoint(db, 0, "split:t", NULL, NULL, NULL, &cp));
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    dt_expect_reader(r, 0, write_after ? 2 : 1);
    for (unsigned i = 1; i < 200; i++)
        dt_expect_reader(r, i, 1);
    if (write_after)
        dt_expect_reader(r, 500, 2);
    shale_reader_close(r);
    TU_OK(shale_close(db));
    shale_close(old);   /* fenced: its close may report it */
}

static void test_flush_checkpoint_after_takeover(void **state)
{
    takeover_flush(*state, false);
}

static void test_flush_checkpoint_after_takeover_and_writes(void **state)
{
    takeover_flush(*state, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_checkpoint_one_manifest_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_checkpoint_empty_memtable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_checkpoint_barrier_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_checkpoint_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_checkpoint_after_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_checkpoint_after_takeover_and_writes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
