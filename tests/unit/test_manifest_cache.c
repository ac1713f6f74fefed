/*
 * test_manifest_cache.c -- shale_manifest_cache (shale_objstore.h): a
 * manifest version written or read through a store opened with the cache
 * is answered again without a GET; the latest is still found by the
 * store's LIST; a store without the cache, or another store, reads from
 * the store; the bound keeps out what does not fit.  Counted with the
 * process's store counters (shale_objstore_global_stats), never timed.
 */
#include "support/testutil.h"
#include "shale.h"
#include "shale_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t gets_now(void)
{
    shale_objstats st;
    shale_objstore_global_stats(&st);
    return st.requests[SHALE_OP_GET][0] + st.requests[SHALE_OP_GET][1];
}

/* Opens uri with cache c (NULL: none) and S3 endpoint ep (NULL: none),
 * loads version id (0: latest); returns the GETs that took and the
 * version read. */
static uint64_t load_gets_at(const char *uri, const char *ep, shale_manifest_cache *c,
                             uint64_t id, uint64_t *got)
{
    shale_objstore_options so;
    shale_objstore_options_init(&so);
    so.manifest_cache = c;
    so.s3_endpoint = ep;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, &so, &s));
    shale_manifest_view *m = NULL;
    uint64_t g0 = gets_now();
    TU_OK(shale_manifest_view_load(s, id, &m));
    uint64_t g = gets_now() - g0;
    *got = m->id;
    shale_manifest_view_free(m);
    shale_objstore_close(s);
    return g;
}

static uint64_t load_gets(const char *uri, shale_manifest_cache *c, uint64_t id, uint64_t *got)
{
    return load_gets_at(uri, NULL, c, id, got);
}

/* A database whose writer wrote its versions through cache c. */
static void make_db(const char *uri, shale_manifest_cache *c)
{
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.store.manifest_cache = c;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    TU_OK(shale_put(db, "k", 1, "v", 1));
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_close(db));
}

static void test_written_versions_are_not_read_again(void **state)
{
    (void)state;
    char uri[128];
    snprintf(uri, sizeof uri, "mem://mcache-w-%d", (int)getpid());
    shale_manifest_cache *c = NULL;
    TU_OK(shale_manifest_cache_new(0, &c));
    make_db(uri, c);
    uint64_t latest = 0, id = 0;
    /* Without the cache: the latest is read by a GET. */
    assert_int_equal(load_gets(uri, NULL, 0, &latest), 1);
    assert_true(latest >= 2);
    uint64_t hits = shale_manifest_cache_hits(c);
    /* With it: the writer's own last version, by id and as the latest. */
    assert_int_equal(load_gets(uri, c, latest, &id), 0);
    assert_int_equal(id, latest);
    assert_int_equal(load_gets(uri, c, 0, &id), 0);
    assert_int_equal(id, latest);
    assert_int_equal(shale_manifest_cache_hits(c), hits + 2);
    /* A newer version written without the cache: the LIST finds it, the
     * cache does not hold it, so it is read from the store -- once. */
    make_db(uri, NULL);
    uint64_t newer = 0;
    assert_int_equal(load_gets(uri, c, 0, &newer), 1);
    assert_true(newer > latest);
    assert_int_equal(load_gets(uri, c, newer, &id), 0);
    /* Another store of the same versions is not answered from it. */
    char other[128];
    snprintf(other, sizeof other, "mem://mcache-o-%d", (int)getpid());
    make_db(other, NULL);
    assert_int_equal(load_gets(other, c, latest, &id), 1);
    shale_manifest_cache_free(c);
    shale_manifest_cache_free(NULL);
}

/* The same URI on another S3 endpoint is another store: the cache keys
 * versions by the endpoint too (objstore_int.h mcache_key).  mem:// takes
 * the endpoint option and ignores it, which is enough to tell the keys
 * apart: with the URI alone as the key the second open is answered (0). */
static void test_another_endpoint_is_another_store(void **state)
{
    (void)state;
    char uri[128];
    snprintf(uri, sizeof uri, "mem://mcache-e-%d", (int)getpid());
    shale_manifest_cache *c = NULL;
    TU_OK(shale_manifest_cache_new(0, &c));
    make_db(uri, NULL);
    const char *eps[] = {"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:1"};
    uint64_t want[] = {1, 1, 0};   /* GETs: a miss, another store's miss, a hit */
    uint64_t id = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(load_gets_at(uri, eps[i], c, 0, &id), want[i]);
    assert_int_equal(shale_manifest_cache_hits(c), 1);
    shale_manifest_cache_free(c);
}

static void test_the_bound_keeps_out_what_does_not_fit(void **state)
{
    (void)state;
    char uri[128];
    snprintf(uri, sizeof uri, "mem://mcache-b-%d", (int)getpid());
    shale_manifest_cache *c = NULL;
    TU_OK(shale_manifest_cache_new(16, &c));   /* smaller than any manifest */
    make_db(uri, c);
    uint64_t id = 0;
    assert_int_equal(load_gets(uri, c, 0, &id), 1);
    assert_int_equal(load_gets(uri, c, id, &id), 1);
    assert_int_equal(shale_manifest_cache_hits(c), 0);
    shale_manifest_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_versions_are_not_read_again),
        cmocka_unit_test(test_another_endpoint_is_another_store),
        cmocka_unit_test(test_the_bound_keeps_out_what_does_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
