/*
 * test_s3_store.c -- the S3 backend beyond the conformance suite
 * (test_objstore.c runs that on RGW and on the stub too).
 *
 * On the run's Ceph RGW (tests/tools/rgw.sh; a real, signature-checking
 * S3): a wrong secret refused, a missing bucket named by every call,
 * readahead counted in requests.  On the stub (tests/tools/s3stub.js), what
 * a real server cannot be made to do on demand: throttling, 5xx (also the
 * unknown outcome of a conditional create), 400 RequestTimeout, torn
 * connections, requests that are never answered (the deadline), region
 * redirects.
 */
#include "support/s3test.h"
#include "support/testutil.h"
#include "objstore/objstore_s3.h"
#include "util/misc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static s3test_server g_rgw, g_stub;

static void expect_content(shale_objstore *s, const char *key, const void *want, size_t n)
{
    void *got = NULL;
    size_t glen = 0;
    TU_OK(shale_objstore_get(s, key, &got, &glen));
    assert_int_equal(glen, n);
    if (n)
        assert_memory_equal(got, want, n);
    shale_free(got);
}

static void expect_read(shale_objreader *rd, uint64_t off, uint64_t len, const void *want,
                        size_t wn)
{
    void *got = NULL;
    size_t glen = 99;
    TU_OK(shale_objreader_read(rd, off, len, &got, &glen));
    assert_non_null(got);
    assert_int_equal(glen, wn);
    if (wn)
        assert_memory_equal(got, want, wn);
    shale_free(got);
}

/* ---- S3 on the real server ---------------------------------------------- */

static shale_objstore *rgw_store(const char *name, shale_objstore_options *o)
{
    s3test_env(&g_rgw);
    char *u = s3test_uri(&g_rgw, name);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(u, o, &s));
    free(u);
    return s;
}

/* RGW refuses a wrong secret; a missing bucket is named by every call. */
static void test_rgw_refusals(void **state)
{
    (void)state;
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.s3_access_key = g_rgw.access;   /* options are one source: both halves */
    o.s3_secret_key = "not-the-secret";
    shale_objstore *s = rgw_store("refuse", &o);
    TU_RC(SHALE_UNAUTHORIZED, shale_objstore_put(s, "k", "v", 1));
    assert_non_null(strstr(shale_errmsg(), "SignatureDoesNotMatch"));
    assert_null(strstr(shale_errmsg(), "not-the-secret"));   /* never in messages */
    assert_null(strstr(shale_errmsg(), g_rgw.secret));
    shale_objstore_close(s);
    s3test_env(&g_rgw);
    TU_OK(shale_objstore_open("s3://shale-no-such-bucket/db", NULL, &s));
    void *p;
    size_t n;
    uint64_t size;
    shale_objlist l;
    shale_status rcs[] = {shale_objstore_get(s, "k", &p, &n),
                          shale_objstore_head(s, "k", &size, NULL),
                          shale_objstore_put(s, "k", "v", 1),
                          shale_objstore_list(s, "", NULL, 0, &l),
                          shale_objstore_delete(s, "k")};
    for (size_t i = 0; i < sizeof rcs / sizeof *rcs; i++)
        assert_int_equal(rcs[i], SHALE_INVALID_ARGUMENT);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_head(s, "manifest/x", &size, NULL));
    assert_non_null(strstr(shale_errmsg(), "bucket 'shale-no-such-bucket' does not exist"));
    assert_non_null(strstr(shale_errmsg(), "NoSuchBucket"));
    shale_objstore_close(s);
}

/* Sequential reads through a handle read ahead: a 4 MiB object read in
 * 4 KiB pieces costs a handful of requests, not 1,024; random reads are
 * one request each. */
static void test_rgw_readahead(void **state)
{
    (void)state;
    shale_objstore *s = rgw_store("ra", NULL);
    size_t n = 4u << 20;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    uint64_t seed = 9;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = tu_rand(&seed);
        memcpy(big + i, &v, 8);
    }
    TU_OK(shale_objstore_put(s, "sst/ra", big, n));
    shale_objreader *rd = NULL;
    TU_OK(shale_objstore_reader_open(s, "sst/ra", n, &rd));
    uint64_t before = objstore_s3_requests();
    for (size_t off = 0; off < n; off += 4096)
        expect_read(rd, off, 4096, big + off, 4096);
    expect_read(rd, n, 4096, "", 0);                 /* at the end: empty */
    uint64_t seq = objstore_s3_requests() - before;
    print_message("readahead: %zu reads of 4 KiB cost %llu requests\n", n / 4096,
                  (unsigned long long)seq);
    assert_true(seq <= 10);
    shale_objreader_close(rd);
    TU_OK(shale_objstore_reader_open(s, "sst/ra", n, &rd));
    before = objstore_s3_requests();
    for (int i = 0; i < 5; i++) {
        size_t off = (size_t)(tu_rand(&seed) % (n - 100));
        expect_read(rd, off, 100, big + off, 100);
    }
    assert_int_equal(objstore_s3_requests() - before, 5);
    shale_objreader_close(rd);
    free(big);
    shale_objstore_close(s);
}

/* ---- S3 cases only the stub can serve on demand ------------------------ */

static shale_objstore *stub_store(shale_objstore_options *o)
{
    s3test_env(&g_stub);
    char *u = s3test_uri(&g_stub, "st");
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(u, o, &s));
    free(u);
    return s;
}

static void fast_retries(shale_objstore_options *o)
{
    shale_objstore_options_init(o);
    o->retry_base_ms = 1;
    o->retry_max_ms = 5;
}

static void test_s3_signature_and_throttling(void **state)
{
    (void)state;
    shale_objstore_options o;
    fast_retries(&o);
    shale_objstore *s = stub_store(&o);
    TU_OK(shale_objstore_put(s, "a b/c+d", "v", 1));              /* encoded key, signed */
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "a b/", &l));                /* signed sorted query */
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].key, "a b/c+d");
    shale_objlist_free(&l);
    shale_objstats before, after;
    shale_objstore_global_stats(&before);
    assert_true(s3test_stub_faults(&g_stub, "{\"slowdown\": 3}"));
    TU_OK(shale_objstore_put(s, "k", "v", 1));                    /* retried through */
    shale_objstore_global_stats(&after);
    assert_int_equal(after.retries - before.retries, 3);
    assert_true(s3test_stub_faults(&g_stub, "{\"slowdown\": 100}"));
    TU_RC(SHALE_RETRYABLE, shale_objstore_put(s, "k", "v", 1));   /* beyond max_retries */
    assert_non_null(strstr(shale_errmsg(), "SlowDown"));
    assert_non_null(strstr(shale_errmsg(), "7 attempts"));
    assert_true(s3test_stub_faults(&g_stub, "{\"slowdown\": 0}"));
    shale_objstore_global_stats(&before);
    void *p;
    size_t n;
    TU_RC(SHALE_NOT_FOUND, shale_objstore_get(s, "missing", &p, &n));
    shale_objstore_global_stats(&after);
    assert_int_equal(after.retries, before.retries);              /* 4xx never retried */
    /* S3's 400 RequestTimeout and torn connections are retried. */
    shale_objstore_global_stats(&before);
    assert_true(s3test_stub_faults(&g_stub, "{\"requestTimeout\": 2}"));
    TU_OK(shale_objstore_put(s, "rt", "v", 1));
    assert_true(s3test_stub_faults(&g_stub, "{\"torn\": 2}"));
    TU_OK(shale_objstore_get(s, "rt", &p, &n));
    shale_free(p);
    shale_objstore_global_stats(&after);
    /* 2 RequestTimeouts, and at least one torn connection: curl itself
     * retries a request once on a reused connection that died unanswered. */
    assert_true(after.retries - before.retries >= 3);
    shale_objstore_close(s);
}

/* A 5xx on a conditional create is an unknown outcome: read back. */
static void test_s3_conditional_unknown_outcome(void **state)
{
    (void)state;
    shale_objstore_options o;
    fast_retries(&o);
    shale_objstore *s = stub_store(&o);
    /* The write landed, the answer was 500: ours, so created. */
    assert_true(s3test_stub_faults(&g_stub, "{\"error500AfterWrite\": 1}"));
    TU_OK(shale_objstore_put_if_absent(s, "m/1", "mine", 4));
    expect_content(s, "m/1", "mine", 4);
    /* A racer's write landed, ours got 500: lost, not retried into 412
     * confusion and not reported as created. */
    assert_true(s3test_stub_faults(&g_stub, "{\"foreignWrite\": \"theirs\"}"));
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, "m/2", "mine", 4));
    expect_content(s, "m/2", "theirs", 6);
    /* 500 with nothing written: retried, then created. */
    assert_true(s3test_stub_faults(&g_stub, "{\"error500\": 2}"));
    TU_OK(shale_objstore_put_if_absent(s, "m/3", "mine", 4));
    expect_content(s, "m/3", "mine", 4);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, "m/3", "again", 5));
    shale_objstore_close(s);
}

/* An endpoint that accepts and never answers fails within the bound:
 * deadline_ms + timeout_ms (plus curl's one-second low-speed check). */
static void test_s3_hang_is_bounded(void **state)
{
    (void)state;
    shale_objstore_options o;
    fast_retries(&o);
    o.timeout_ms = 1000;
    o.deadline_ms = 2000;
    shale_objstore *s = stub_store(&o);
    TU_OK(shale_objstore_put(s, "h", "v", 1));
    assert_true(s3test_stub_faults(&g_stub, "{\"hang\": 1000}"));
    void *p;
    size_t n;
    int64_t t0 = mono_ms();
    shale_status rc = shale_objstore_get(s, "h", &p, &n);
    int64_t took = mono_ms() - t0;
    assert_true(s3test_stub_faults(&g_stub, "{\"hang\": 0}"));
    assert_int_equal(rc, SHALE_TIMEOUT);
    assert_non_null(strstr(shale_errmsg(), "deadline reached"));
    print_message("hanging endpoint: failed after %lld ms\n", (long long)took);
    assert_true(took >= 1000 && took < 5000);
    TU_OK(shale_objstore_get(s, "h", &p, &n));            /* healthy again */
    shale_free(p);
    shale_objstore_close(s);
}

/* A region redirect is reported with the bucket's region. */
static void test_s3_region_redirect(void **state)
{
    (void)state;
    shale_objstore *s = stub_store(NULL);
    assert_true(s3test_stub_faults(&g_stub, "{\"redirect\": \"eu-west-3\"}"));
    void *p;
    size_t n;
    shale_status rc = shale_objstore_get(s, "k", &p, &n);
    assert_true(s3test_stub_faults(&g_stub, "{\"redirect\": \"\"}"));
    assert_int_equal(rc, SHALE_INVALID_ARGUMENT);
    assert_non_null(strstr(shale_errmsg(), "region 'eu-west-3' (x-amz-bucket-region)"));
    assert_non_null(strstr(shale_errmsg(), "AWS_REGION"));
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
        cmocka_unit_test(test_rgw_refusals),
        cmocka_unit_test(test_rgw_readahead),
        cmocka_unit_test(test_s3_signature_and_throttling),
        cmocka_unit_test(test_s3_conditional_unknown_outcome),
        cmocka_unit_test(test_s3_hang_is_bounded),
        cmocka_unit_test(test_s3_region_redirect),
    };
    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
