/*
 * test_s3_delete.c -- shale_objstore_delete_many on s3://: one
 * DeleteObjects request per 1,000 keys.
 *
 * On the run's Ceph RGW (a real S3 that checks signatures and the
 * Content-MD5 DeleteObjects requires): keys XML must escape, a store
 * prefix, missing keys and more than one batch, counted in requests.  On
 * the stub (tests/tools/s3stub.js), what RGW cannot be made to do: keys a
 * DeleteObjects answer reports as not deleted (retried one by one), and a
 * server without DeleteObjects (501: single DELETEs from then on).  The
 * document builder and the answer's parser are checked on their own too.
 */
#include "support/s3test.h"
#include "support/testutil.h"
#include "objstore/objstore_s3.h"
#include "objstore/s3_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static s3test_server g_rgw, g_stub;

static shale_objstore *open_on(s3test_server *srv, const char *name)
{
    s3test_env(srv);
    char *u = s3test_uri(srv, name);
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.retry_base_ms = 1;
    o.retry_max_ms = 5;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(u, &o, &s));
    free(u);
    return s;
}

static size_t count_under(shale_objstore *s, const char *prefix)
{
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, prefix, &l));
    size_t n = l.count;
    shale_objlist_free(&l);
    return n;
}

/* n keys "<prefix><i:04>", put with a one-byte value; into keys[] (malloc'd). */
static char **put_keys(shale_objstore *s, const char *prefix, size_t n)
{
    char **keys = calloc(n, sizeof *keys);
    assert_non_null(keys);
    for (size_t i = 0; i < n; i++) {
        assert_true(asprintf(&keys[i], "%s%04zu", prefix, i) > 0);
        TU_OK(shale_objstore_put(s, keys[i], "v", 1));
    }
    return keys;
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* ---- the document and the answer --------------------------------------- */

static void test_xml_build_and_parse(void **state)
{
    (void)state;
    const char *keys[] = {"wal/1.sst", "a&b<c>\"'", "ü ñ"};
    char *doc = NULL;
    size_t len = 0;
    TU_OK(s3_xml_build_delete("pre/", keys, 3, &doc, &len));
    assert_int_equal(strlen(doc), len);
    assert_non_null(strstr(doc, "<Quiet>true</Quiet>"));
    assert_non_null(strstr(doc, "<Key>pre/wal/1.sst</Key>"));
    assert_non_null(strstr(doc, "<Key>pre/a&amp;b&lt;c&gt;\"'</Key>"));
    assert_non_null(strstr(doc, "<Key>pre/ü ñ</Key>"));
    free(doc);
    /* What XML 1.0 cannot carry is refused, for the caller's fallback. */
    const char *ctl[] = {"ok", "bad\x01key"};
    TU_RC(SHALE_INVALID_ARGUMENT, s3_xml_build_delete("", ctl, 2, &doc, &len));
    assert_non_null(strstr(shale_errmsg(), "bad"));
    const char *cr[] = {"cr\rkey"};
    TU_RC(SHALE_INVALID_ARGUMENT, s3_xml_build_delete("", cr, 1, &doc, &len));
    const char *latin1[] = {"caf\xe9"};
    TU_RC(SHALE_INVALID_ARGUMENT, s3_xml_build_delete("", latin1, 1, &doc, &len));

    static const char ans[] =
        "<?xml version=\"1.0\"?><DeleteResult><Deleted><Key>pre/x</Key></Deleted>"
        "<Error><Key>pre/a&amp;b</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
        "<Error><Key>other/y</Key><Code>InternalError</Code></Error></DeleteResult>";
    s3_delete_failure *f = NULL;
    size_t nf = 0;
    TU_OK(s3_xml_parse_delete("t", ans, sizeof ans - 1, "pre/", &f, &nf));
    assert_int_equal(nf, 2);
    assert_string_equal(f[0].key, "a&b");
    assert_string_equal(f[0].code, "AccessDenied");
    assert_string_equal(f[0].message, "no");
    assert_string_equal(f[1].key, "other/y");   /* outside the prefix: kept whole */
    assert_string_equal(f[1].code, "InternalError");
    s3_xml_delete_failures_free(f, nf);

    static const char none[] = "<DeleteResult/>";
    TU_OK(s3_xml_parse_delete("t", none, sizeof none - 1, "", &f, &nf));
    assert_int_equal(nf, 0);
    assert_null(f);
    static const char wrong[] = "<ListBucketResult/>";
    TU_RC(SHALE_CORRUPT, s3_xml_parse_delete("here", wrong, sizeof wrong - 1, "", &f, &nf));
    assert_non_null(strstr(shale_errmsg(), "here"));
    static const char nokey[] = "<DeleteResult><Error><Code>X</Code></Error></DeleteResult>";
    TU_RC(SHALE_CORRUPT, s3_xml_parse_delete("t", nokey, sizeof nokey - 1, "", &f, &nf));
    TU_RC(SHALE_CORRUPT, s3_xml_parse_delete("t", "<De", 3, "", &f, &nf));
}

/* ---- on RGW ------------------------------------------------------------ */

/* 1,003 keys and 3 missing ones: two DeleteObjects requests, every key
 * gone, the keys beside them kept. */
static void test_rgw_batches(void **state)
{
    (void)state;
    shale_objstore *s = open_on(&g_rgw, "dm");
    size_t n = 1003;
    char **keys = put_keys(s, "d/k", n);
    const char *odd[] = {"d/a&b<c>\"'", "d/sp ace+plus", "d/ü"};
    for (size_t i = 0; i < 3; i++)
        TU_OK(shale_objstore_put(s, odd[i], "v", 1));
    TU_OK(shale_objstore_put(s, "keep/x", "v", 1));
    const char **all = calloc(n + 6, sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++)
        all[i] = keys[i];
    for (size_t i = 0; i < 3; i++)
        all[n + i] = odd[i];
    all[n + 3] = "d/missing-1";
    all[n + 4] = "d/missing-2";
    all[n + 5] = "missing/3";
    assert_int_equal(count_under(s, "d/"), n + 3);
    uint64_t before = objstore_s3_requests();
    TU_OK(shale_objstore_delete_many(s, all, n + 6));
    assert_int_equal(objstore_s3_requests() - before, 2);   /* 1,000 + 9 */
    assert_int_equal(count_under(s, "d/"), 0);
    assert_int_equal(count_under(s, "keep/"), 1);
    /* Deleting them again: missing keys are deleted keys. */
    TU_OK(shale_objstore_delete_many(s, all, 5));
    free(all);
    free_keys(keys, n);
    shale_objstore_close(s);
}

/* A key XML cannot carry (not UTF-8): the call deletes its keys one by
 * one, and ends as a single DELETE of that key does. */
static void test_rgw_unwritable_key(void **state)
{
    (void)state;
    shale_objstore *s = open_on(&g_rgw, "dmutf");
    char **keys = put_keys(s, "c/", 3);
    const char *bad = "c/caf\xe9";
    shale_status single = shale_objstore_delete(s, bad);
    const char *all[] = {keys[0], keys[1], keys[2], bad};
    uint64_t before = objstore_s3_requests();
    assert_int_equal(shale_objstore_delete_many(s, all, 4), single);
    assert_int_equal(objstore_s3_requests() - before, 4);
    assert_int_equal(count_under(s, "c/"), 0);
    free_keys(keys, 3);
    shale_objstore_close(s);
}

/* ---- on the stub ------------------------------------------------------- */

/* Keys the answer reports as not deleted are deleted once more each: one
 * POST and three DELETEs, and nothing is left. */
static void test_stub_partial_failure(void **state)
{
    (void)state;
    shale_objstore *s = open_on(&g_stub, "dmp");
    char **keys = put_keys(s, "p/", 10);
    assert_true(s3test_stub_faults(&g_stub, "{\"deleteErrors\": 3}"));
    long before = s3test_stub_requests(&g_stub);
    TU_OK(shale_objstore_delete_many(s, (const char *const *)keys, 10));
    assert_int_equal(s3test_stub_requests(&g_stub) - before, 4);
    assert_int_equal(count_under(s, "p/"), 0);
    free_keys(keys, 10);
    shale_objstore_close(s);
}

/* A server without DeleteObjects: 501 once, then single DELETEs. */
static void test_stub_no_multi_delete(void **state)
{
    (void)state;
    shale_objstore *s = open_on(&g_stub, "dmn");
    char **keys = put_keys(s, "n/", 8);
    assert_true(s3test_stub_faults(&g_stub, "{\"noMultiDelete\": true}"));
    long before = s3test_stub_requests(&g_stub);
    TU_OK(shale_objstore_delete_many(s, (const char *const *)keys, 4));
    assert_int_equal(s3test_stub_requests(&g_stub) - before, 1 + 4);
    before = s3test_stub_requests(&g_stub);
    TU_OK(shale_objstore_delete_many(s, (const char *const *)keys + 4, 4));
    assert_int_equal(s3test_stub_requests(&g_stub) - before, 4);   /* no POST again */
    assert_int_equal(count_under(s, "n/"), 0);
    assert_true(s3test_stub_faults(&g_stub, "{\"noMultiDelete\": false}"));
    free_keys(keys, 8);
    shale_objstore_close(s);
}

/* A DeleteObjects that fails as a whole fails the call, named. */
static void test_stub_refused(void **state)
{
    (void)state;
    shale_objstore *s = open_on(&g_stub, "dmr");
    char **keys = put_keys(s, "r/", 2);
    assert_true(s3test_stub_faults(&g_stub, "{\"error500\": 100}"));
    TU_RC(SHALE_RETRYABLE, shale_objstore_delete_many(s, (const char *const *)keys, 2));
    assert_non_null(strstr(shale_errmsg(), "DeleteObjects of 2 keys"));
    assert_true(s3test_stub_faults(&g_stub, "{\"error500\": 0}"));
    assert_int_equal(count_under(s, "r/"), 2);
    free_keys(keys, 2);
    shale_objstore_close(s);
}

static int start_servers(void **state)
{
    (void)state;
    return s3test_start_both(&g_rgw, &g_stub);   /* fails the group, never skips it */
}

static int stop_servers(void **state)
{
    (void)state;
    s3test_stop(&g_stub);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_build_and_parse),
        cmocka_unit_test(test_rgw_batches),
        cmocka_unit_test(test_rgw_unwritable_key),
        cmocka_unit_test(test_stub_partial_failure),
        cmocka_unit_test(test_stub_no_multi_delete),
        cmocka_unit_test(test_stub_refused),
    };
    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
