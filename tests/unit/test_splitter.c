/*
 * test_splitter.c -- the split state machine through its service API, on
 * file:// stores with a separate local WAL store: N-way splits that
 * partition the parent, fencing of the serving writer, repeat/conflict
 * rules, abort, dry run, bad requests, the wipe under store faults.
 * Verify finding a damaged child is in test_splitter_verify.c; the
 * fixture in support/splittest.c.
 */
#include "support/splittest.h"
#include "db/checkpoint_int.h"
#include "db/manifest.h"
#include "db/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_three_way_split_partitions_parent(void **state)
{
    sf_fx *f = *state;
    shale_db *serving = NULL;                /* the shard's serving writer */
    TU_OK(shale_open(f->parent, &f->o, &serving));
    dt_put(serving, 1, 2);                   /* acknowledged before the split */
    sf_new_splitter(f, true);
    unsigned cuts[] = {f->n / 3, 2 * f->n / 3};
    split_request *r = sf_request(f, "split-a", cuts, 2, false);
    bool created = false;
    char *st = sf_submit(f, r, &created);
    assert_true(created);
    free(st);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = sf_get_status(f, "split-a");
    sf_expect_phase(st, "Complete");
    assert_non_null(strstr(st, "\"checkpointId\""));
    free(st);
    /* The serving writer was fenced: its writes fail, none is lost. */
    char k[32];
    size_t kl = dt_key(k, sizeof k, 5);
    TU_RC(SHALE_FENCED, shale_put(serving, k, kl, "late", 4));
    shale_close(serving);
    sf_check_children(f, cuts, 2);
    /* Same request again: no-op; same name, other content: conflict. */
    created = true;
    st = sf_submit(f, r, &created);
    assert_false(created);
    sf_expect_phase(st, "Complete");
    free(st);
    unsigned other[] = {f->n / 2};
    split_request *r2 = sf_request(f, "split-a", other, 1, false);
    char *s2 = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_RC(SHALE_CONFLICT, svc->ops->submit(svc, r2, &created, &s2));
    /* Abort after completion is refused. */
    TU_RC(SHALE_CONFLICT, svc->ops->abort(svc, "split-a", &s2));
    split_request_free(r);
    split_request_free(r2);
    /* The local WAL was wiped except for the fence. */
    shale_objstore *w = NULL;
    TU_OK(shale_objstore_open(f->wal, NULL, &w));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(w, "wal/", &l));
    assert_int_equal(l.count, 1);
    shale_objlist_free(&l);
    shale_objstore_close(w);
}

static void test_abort_before_wipe_leaves_parent(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter(f, false);                  /* not started: abort wins */
    shale_db *w = NULL;
    TU_OK(shale_open(f->parent, &f->o, &w)); /* the shard's live writer */
    unsigned cuts[] = {f->n / 2};
    split_request *r = sf_request(f, "split-b", cuts, 1, false);
    bool created;
    free(sf_submit(f, r, &created));
    char *st = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->abort(svc, "split-b", &st));
    free(st);
    TU_OK(splitter_start(f->sp));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = sf_get_status(f, "split-b");
    sf_expect_phase(st, "Aborted");
    free(st);
    split_request_free(r);
    /* Fence's open, started beside version 1, waited for the worker's
     * Fence and the abort cancelled it: the live writer was never fenced. */
    dt_put(w, f->n + 2, 1);
    TU_OK(shale_flush_wal(w));
    TU_OK(shale_close(w));
    /* The parent is readable and writable with all its data. */
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &f->o, &db));
    for (unsigned i = 0; i < f->n; i += 5)
        dt_expect(db, i, 1 + i % 3);
    dt_put(db, f->n + 1, 1);
    TU_OK(shale_close(db));
    /* A second split is possible after an abort. */
    r = sf_request(f, "split-c", cuts, 1, false);
    free(sf_submit(f, r, &created));
    assert_true(created);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = sf_get_status(f, "split-c");
    sf_expect_phase(st, "Complete");
    free(st);
    split_request_free(r);
}

static void test_dry_run_touches_nothing(void **state)
{
    sf_fx *f = *state;
    shale_reader *rd = NULL;
    shale_db_info before, after;
    TU_OK(shale_reader_open(f->parent, &f->o, NULL, &rd));
    TU_OK(shale_reader_info(rd, &before));
    shale_reader_close(rd);
    sf_new_splitter(f, true);
    unsigned cuts[] = {100, 200, 300};
    split_request *r = sf_request(f, "dry", cuts, 3, true);
    bool created;
    free(sf_submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = sf_get_status(f, "dry");
    sf_expect_phase(st, "Complete");
    assert_non_null(strstr(st, "\"plan\""));
    assert_non_null(strstr(st, "\"expectedKeys\": 100"));
    free(st);
    split_request_free(r);
    TU_OK(shale_reader_open(f->parent, &f->o, NULL, &rd));
    TU_OK(shale_reader_info(rd, &after));
    shale_reader_close(rd);
    assert_int_equal(before.writer_epoch, after.writer_epoch);   /* not fenced */
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "splits/", &l));
    assert_int_equal(l.count, 0);                                /* no journal */
    shale_objlist_free(&l);
    shale_objstore_close(s);
    shale_objstore_open(f->kid[0], NULL, &s);
    TU_OK(shale_objstore_list_all(s, "", &l));
    assert_int_equal(l.count, 0);                                /* no child */
    shale_objlist_free(&l);
    shale_objstore_close(s);
}

static void test_bad_requests_touch_nothing(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter(f, true);
    split_service *svc = splitter_service(f->sp);
    const char *bad[] = {
        /* overlapping ranges */
        "name: bad1\nparent: {shard: orders-0}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"m\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"k\", end: \"\"}}\n",
        /* a gap */
        "name: bad2\nparent: {shard: orders-0}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"m\", end: \"\"}}\n",
        /* the same store twice */
        "name: bad3\nparent: {shard: orders-0}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://a\", range: {start: \"k\", end: \"\"}}\n",
        /* another shard */
        "name: bad4\nparent: {shard: other}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"k\", end: \"\"}}\n",
        /* an unknown verify mode */
        "name: bad5\nparent: {shard: orders-0}\nverify: sometimes\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"k\", end: \"\"}}\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        split_request *r = NULL;
        shale_status rc = split_request_parse("test", bad[i], strlen(bad[i]), &r);
        if (rc == SHALE_OK) {
            bool created;
            char *st = NULL;
            rc = svc->ops->submit(svc, r, &created, &st);
            free(st);
            split_request_free(r);
        }
        if (rc != SHALE_INVALID_ARGUMENT)
            fail_msg("bad request %zu: got %s", i, shale_strerror(rc));
        assert_true(strlen(shale_errmsg()) > 0);
    }
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "splits/", &l));
    assert_int_equal(l.count, 0);
    shale_objlist_free(&l);
    shale_objstore_close(s);
}

static void test_second_split_while_running_conflicts(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter(f, false);                  /* the first stays unfinished */
    unsigned cuts[] = {f->n / 2};
    split_request *a = sf_request(f, "first", cuts, 1, false);
    split_request *b = sf_request(f, "second", cuts, 1, false);
    bool created;
    free(sf_submit(f, a, &created));
    char *st = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_RC(SHALE_CONFLICT, svc->ops->submit(svc, b, &created, &st));
    assert_non_null(strstr(shale_errmsg(), "being split by first"));
    /* A new splitter (an agent restart) resumes the journaled split. */
    splitter_free(f->sp);
    f->sp = NULL;
    sf_new_splitter(f, true);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = sf_get_status(f, "first");
    sf_expect_phase(st, "Complete");
    free(st);
    sf_check_children(f, cuts, 1);
    split_request_free(a);
    split_request_free(b);
}

/* ---- The wipe under store faults --------------------------------------------
 * The 5th delete of the local WAL fails.  The wipe is past the point of no
 * return, so the step is redone until it passes: the split completes, the
 * children hold their ranges and only the fence is left in the local WAL. */
static void test_wipe_fault_is_retried_to_completion(void **state)
{
    sf_fx *f = *state;
    shale_fault *ctl = shale_fault_for_uri(f->wal, NULL);
    assert_non_null(ctl);
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_DELETE), "wal/", 5, 1, SHALE_IO,
                             false, 0, 0};
    TU_OK(shale_fault_add(ctl, &rule, NULL));
    sf_new_splitter(f, true);
    unsigned cuts[] = {f->n / 3, 2 * f->n / 3};
    split_request *r = sf_request(f, "wipe-fault", cuts, 2, false);
    bool created;
    free(sf_submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    assert_int_equal(shale_fault_injected(ctl), 1);
    char *st = sf_get_status(f, "wipe-fault");
    sf_expect_phase(st, "Complete");
    free(st);
    split_request_free(r);
    sf_check_children(f, cuts, 2);
    shale_objstore *w = NULL;
    TU_OK(shale_objstore_open(f->wal, NULL, &w));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(w, "wal/", &l));
    assert_int_equal(l.count, 1);
    shale_objlist_free(&l);
    shale_objstore_close(w);
    shale_fault_clear(ctl);
}

/* The split's writer of the parent compacts nothing (agent/split_steps.c
 * db_opts): the parent's L0 is one short of its compaction trigger and
 * the final flush makes it due; the parent's latest version after the
 * split still has that L0, where a compactor in the split's writer would
 * have merged it (new SSTs no child references, parent versions racing
 * Clone's pin and Complete's release). */
static void test_split_writer_compacts_nothing(void **state)
{
    sf_fx *f = *state;
    shale_options o = f->o;
    o.compactor = false;
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &o, &db));
    TU_OK(shale_flush_memtable(db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    for (unsigned i = 0; info.l0_count + 1 < o.l0_compaction_trigger; i++) {
        dt_put(db, i, 9);
        TU_OK(shale_flush_memtable(db));
        TU_OK(shale_db_info_get(db, &info));
    }
    uint32_t l0 = info.l0_count;
    dt_put(db, 1, 7);                        /* only in the WAL: the final flush's */
    TU_OK(shale_flush_wal(db));
    TU_OK(shale_close(db));
    sf_new_splitter_v(f, true, SPLIT_VERIFY_REFERENCES);
    unsigned cuts[] = {f->n / 2};
    split_request *r = sf_request(f, "no-compaction", cuts, 1, false);
    bool created = false;
    free(sf_submit(f, r, &created));
    assert_true(created);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = sf_get_status(f, "no-compaction");
    sf_expect_phase(st, "Complete");
    free(st);
    split_request_free(r);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_manifest_view *m = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &m));
    assert_int_equal(m->l0_count, l0 + 1);   /* due, and not compacted */
    shale_manifest_view_free(m);
    shale_objstore_close(s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sf_setup, sf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_three_way_split_partitions_parent),
        T(test_abort_before_wipe_leaves_parent),
        T(test_dry_run_touches_nothing),
        T(test_bad_requests_touch_nothing),
        T(test_second_split_while_running_conflicts),
        T(test_split_writer_compacts_nothing),
        cmocka_unit_test_setup_teardown(test_wipe_fault_is_retried_to_completion,
                                        sf_setup_fault_wal, sf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
