/*
 * test_s3_engine.c -- the engine, clones, GC, verify and a split on S3,
 * against the run's Ceph RGW (tests/tools/rgw.sh: signatures checked,
 * conditional create honoured); and the stub told to ignore If-None-Match,
 * which a writer must refuse unless told the store is unconditional.
 */
#include "support/dbtest.h"
#include "support/s3test.h"
#include "request.h"
#include "splitter.h"
#include "util/misc.h"
#include "objstore/objstore_s3.h"
#include "db/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static s3test_server g_stub, g_rgw;

static char *s3uri(const char *name)
{
    char *u = s3test_uri(&g_rgw, name);
    assert_non_null(u);
    return u;
}

static void test_engine_levels_on_s3(void **state)
{
    (void)state;
    s3test_env(&g_rgw);
    char *uri = s3uri("levels");
    shale_options o;
    dt_small_options(&o);
    dt_model m;
    unsigned n = tu_quick() ? 300 : 1000;
    dt_model_init(&m, n);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < n; i++) {
        dt_put(db, i, 1 + i % 4);
        m.version[i] = 1 + i % 4;
    }
    TU_OK(shale_compact(db, true));
    for (unsigned i = 0; i < n; i += 3) {
        dt_del(db, i);
        m.version[i] = 0;
    }
    dt_model_check(db, &m);
    TU_OK(shale_close(db));
    TU_OK(shale_open(uri, &o, &db));                 /* replay from S3 */
    dt_model_check(db, &m);
    shale_db *b = NULL;
    TU_OK(shale_open(uri, &o, &b));                  /* fences db on S3 */
    char k[32];
    size_t kl = dt_key(k, sizeof k, 1);
    TU_RC(SHALE_FENCED, shale_put(db, k, kl, "x", 1));
    shale_close(db);
    TU_OK(shale_close(b));
    /* Verify reads every SST sequentially: with readahead a few requests
     * per SST, not one per block. */
    shale_verify_result vr;
    uint64_t before = objstore_s3_requests();
    TU_OK(shale_verify(uri, &o, &vr));
    uint64_t reqs = objstore_s3_requests() - before;
    print_message("verify on RGW: %llu SSTs, %llu blocks, %llu WAL SSTs: %llu requests\n",
                  (unsigned long long)vr.ssts_checked, (unsigned long long)vr.blocks_checked,
                  (unsigned long long)vr.wal_ssts_checked, (unsigned long long)reqs);
    assert_true(vr.ssts_checked > 0);
    /* Per SST a HEAD, the footer, the metadata, the first block and a
     * window or two; each WAL SST is one GET.  One GET per block would be
     * over the bound (blocks > 8 per SST here). */
    assert_true(vr.blocks_checked > 8 * vr.ssts_checked);
    assert_true(reqs - vr.wal_ssts_checked <= 16 + 5 * vr.ssts_checked);
    /* GC on S3: a pass that finds nothing old enough deletes nothing and
     * leaves a database that still verifies. */
    shale_gc_options g;
    shale_gc_options_init(&g);
    shale_gc_result gr;
    TU_OK(shale_gc(uri, &o, &g, &gr));
    g.min_age_ms = 0;
    TU_OK(shale_gc(uri, &o, &g, &gr));
    TU_OK(shale_verify(uri, &o, NULL));
    shale_reader *rd = NULL;
    TU_OK(shale_reader_open(uri, &o, NULL, &rd));
    for (unsigned i = 0; i < n; i++)
        dt_expect_reader(rd, i, m.version[i]);
    shale_reader_close(rd);
    dt_model_free(&m);
    free(uri);
}

/* The seed's scenario on S3: full flush, WAL store wiped, clone works. */
static void test_clone_after_wal_cleanup_on_s3(void **state)
{
    (void)state;
    s3test_env(&g_rgw);
    char *parent = s3uri("parent"), *wal = s3uri("parent-wal"), *child = s3uri("child");
    shale_options o;
    dt_small_options(&o);
    o.wal_store_uri = wal;
    shale_db *p = NULL;
    TU_OK(shale_open(parent, &o, &p));
    for (unsigned i = 0; i < 200; i++)
        dt_put(p, i, 1);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    shale_objstore *w = NULL;
    TU_OK(shale_objstore_open(wal, NULL, &w));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(w, "wal/", &l));
    for (size_t i = 0; i < l.count; i++)
        TU_OK(shale_objstore_delete(w, l.items[i].key));
    shale_objlist_free(&l);
    shale_objstore_close(w);
    shale_clone_spec sp = {0};
    sp.parent_uri = parent;
    sp.parent_wal_uri = wal;
    sp.parent_checkpoint_id = cp.id;
    sp.child_uri = child;
    char mid[32];
    sp.range_end = mid;
    sp.range_end_len = dt_key(mid, sizeof mid, 100);
    TU_OK(shale_clone(&sp, &o, NULL));
    shale_options co;
    dt_small_options(&co);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(child, &co, NULL, &r));
    for (unsigned i = 0; i < 200; i++)
        dt_expect_reader(r, i, i < 100 ? 1 : 0);
    shale_reader_close(r);
    shale_close(p);
    free(parent);
    free(wal);
    free(child);
}

/* A 2-way split through the agent's splitter on S3, Verify in the given
 * mode (NULL: the default, full); tag keeps each run's stores apart. */
static void split_on_s3(const char *tag, const char *verify)
{
    s3test_env(&g_rgw);
    char name[64];
#define U(what) (snprintf(name, sizeof name, "%s-%s", tag, what), s3uri(name))
    char *parent = U("parent"), *wal = U("wal"), *a = U("a"), *b = U("b");
#undef U
    shale_options o;
    dt_small_options(&o);
    o.wal_store_uri = wal;
    shale_db *p = NULL;
    TU_OK(shale_open(parent, &o, &p));
    for (unsigned i = 0; i < 400; i++)
        dt_put(p, i, 2);
    TU_OK(shale_close(p));
    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;   /* mem:// and fault+ children (tests) */
    so.shard = "s3shard";
    so.store_uri = parent;
    so.wal_store_uri = wal;
    dt_small_options(&so.db);
    splitter *sp = NULL;
    TU_OK(splitter_new(&so, &sp));
    TU_OK(splitter_start(sp));
    char text[1024], mid[32];
    dt_key(mid, sizeof mid, 150);
    int n = snprintf(text, sizeof text,
                     "name: s3split\nparent: {shard: s3shard}\nverify: %s\nchildren:\n"
                     "  - {name: a, store: \"%s\", range: {start: \"\", end: \"%s\"}}\n"
                     "  - {name: b, store: \"%s\", range: {start: \"%s\", end: \"\"}}\n",
                     verify ? verify : "full", a, mid, b, mid);
    split_request *rq = NULL;
    TU_OK(split_request_parse("test", text, (size_t)n, &rq));
    split_service *svc = splitter_service(sp);
    bool created;
    char *st = NULL;
    TU_OK(svc->ops->submit(svc, rq, &created, &st));
    free(st);
    TU_OK(splitter_wait_idle(sp, 120000));
    TU_OK(svc->ops->get(svc, "s3split", &st));
    char mode[64];
    snprintf(mode, sizeof mode, "\"verifyMode\": \"%s\"", verify ? verify : "full");
    if (!strstr(st, "\"phase\": \"Complete\"") || !strstr(st, mode))
        fail_msg("split on S3 did not complete with Verify %s:\n%s", mode, st);
    free(st);
    splitter_free(sp);
    split_request_free(rq);
    shale_options co;
    dt_small_options(&co);
    uint64_t ca = 0, cb = 0;
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(a, &co, NULL, &r));
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &ca));
    shale_reader_close(r);
    TU_OK(shale_reader_open(b, &co, NULL, &r));
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &cb));
    dt_expect_reader(r, 399, 2);
    shale_reader_close(r);
    assert_int_equal(ca, 150);
    assert_int_equal(cb, 250);
    free(parent);
    free(wal);
    free(a);
    free(b);
}

static void test_split_on_s3(void **state)
{
    (void)state;
    split_on_s3("sp", NULL);
}

static void test_split_on_s3_verify_by_references(void **state)
{
    (void)state;
    split_on_s3("spr", "references");
}

static void test_writer_refuses_unconditional_store(void **state)
{
    (void)state;
    s3test_env(&g_stub);
    assert_true(s3test_stub_faults(&g_stub, "{\"ignoreConditional\": true}"));
    char *uri = s3test_uri(&g_stub, "uncond-db");
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_RC(SHALE_UNSUPPORTED, shale_open(uri, &o, &db));
    assert_non_null(strstr(shale_errmsg(), "If-None-Match"));
    o.unsafe_allow_unconditional_store = true;       /* explicit, documented */
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 100; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_close(db));
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 100; i++)
        dt_expect(db, i, 1);
    TU_OK(shale_close(db));
    assert_true(s3test_stub_faults(&g_stub, "{\"ignoreConditional\": false}"));
    free(uri);
}

/* The latest manifest from a known version: one LIST after it and one GET,
 * not a HEAD per newer version. */
static void test_latest_manifest_after_hint(void **state)
{
    (void)state;
    s3test_env(&g_rgw);
    char *uri = s3uri("versions");
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 20; i++) {
        dt_put(db, i, 1);
        TU_OK(shale_flush_memtable(db));
    }
    TU_OK(shale_close(db));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    manifest *all = NULL, *m = NULL;
    TU_OK(manifest_store_load_latest(s, 0, &all));
    assert_true(all->id >= 20);
    uint64_t before = objstore_s3_requests();
    TU_OK(manifest_store_load_latest(s, 1, &m));
    uint64_t reqs = objstore_s3_requests() - before;
    print_message("latest of %llu manifest versions from version 1: %llu requests\n",
                  (unsigned long long)all->id, (unsigned long long)reqs);
    assert_int_equal(m->id, all->id);
    assert_true(reqs <= 2);
    manifest_free(m);
    before = objstore_s3_requests();
    TU_OK(manifest_store_load_latest(s, all->id, &m));      /* nothing newer */
    assert_int_equal(m->id, all->id);
    assert_true(objstore_s3_requests() - before <= 3);
    manifest_free(m);
    manifest_free(all);
    shale_objstore_close(s);
    free(uri);
}

static int start(void **state)
{
    (void)state;
    if (s3test_rgw(&g_rgw) || s3test_start_stub(&g_stub)) {
        fprintf(stderr, "cannot start the S3 test servers: %s\n", shale_errmsg());
        return -1;
    }
    return 0;
}

static int stop(void **state)
{
    (void)state;
    s3test_stop(&g_stub);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_levels_on_s3),
        cmocka_unit_test(test_clone_after_wal_cleanup_on_s3),
        cmocka_unit_test(test_split_on_s3),
        cmocka_unit_test(test_split_on_s3_verify_by_references),
        cmocka_unit_test(test_writer_refuses_unconditional_store),
        cmocka_unit_test(test_latest_manifest_after_hint),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
