/*
 * test_s3_url.c -- bucket-name rules, endpoint checks and request URLs
 * (engine/objstore/s3_url.c).  The property under test: whatever the key,
 * prefix or bucket holds, a URL is either built on the configured host with
 * a path that decodes to exactly bucket/prefix/key, or refused.
 */
#include "support/testutil.h"
#include "objstore/s3_url.h"
#include "util/misc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bucket_ok(const char *b)
{
    if (s3_bucket_check(b) != SHALE_OK)
        fail_msg("bucket '%s' refused: %s", b, shale_errmsg());
}

static void bucket_bad(const char *b, const char *why_part)
{
    if (s3_bucket_check(b) != SHALE_INVALID_ARGUMENT)
        fail_msg("bucket '%s' accepted", b);
    const char *m = shale_errmsg();
    if (!strstr(m, why_part))
        fail_msg("bucket '%s': message '%s' lacks '%s'", b, m, why_part);
}

static void test_bucket_rules(void **st)
{
    (void)st;
    bucket_ok("abc");
    bucket_ok("test");
    bucket_ok("my-bucket.v2");
    bucket_ok("0abc9");
    bucket_ok("a23456789012345678901234567890123456789012345678901234567890123"); /* 63 */
    bucket_bad("ab", "3 to 63");
    bucket_bad("a234567890123456789012345678901234567890123456789012345678901234", "3 to 63");
    bucket_bad("", "3 to 63");
    bucket_bad("MyBucket", "lower-case");
    bucket_bad("my_bucket", "lower-case");
    bucket_bad("-abc", "start and end");
    bucket_bad("abc-", "start and end");
    bucket_bad(".abc", "start and end");
    bucket_bad("a..b", "\"..\"");
    bucket_bad("192.168.5.4", "IP address");
    bucket_bad("xn--abc", "xn--");
    bucket_bad("sthree-abc", "reserves");
    bucket_bad("abc-s3alias", "-s3alias");
    bucket_bad("abc--ol-s3", "reserves");
    /* What would move a request elsewhere if pasted into a URL. */
    bucket_bad("b@evil.example", "lower-case");
    bucket_bad("evil.example#", "lower-case");
    bucket_bad("evil.example/x", "lower-case");
    bucket_bad("evil.example:80", "lower-case");
    bucket_bad("evil.example?", "lower-case");
    bucket_bad("a\r\nb", "lower-case");
    /* The message names the bucket (escaped). */
    assert_int_equal(s3_bucket_check("Bad_Name"), SHALE_INVALID_ARGUMENT);
    assert_non_null(strstr(shale_errmsg(), "'Bad_Name'"));
    assert_int_equal(s3_bucket_check("a\nb"), SHALE_INVALID_ARGUMENT);
    assert_non_null(strstr(shale_errmsg(), "'a%0Ab'"));
}

static void test_endpoint_rules(void **st)
{
    (void)st;
    s3_url_target t;
    TU_OK(s3_url_target_init(&t, "http://127.0.0.1:9000", "bkt", "", 1));
    assert_string_equal(t.scheme, "http");
    assert_string_equal(t.host, "127.0.0.1");
    assert_string_equal(t.port, "9000");
    assert_string_equal(t.prefix, "");
    assert_true(t.loopback);
    s3_url_target_free(&t);
    TU_OK(s3_url_target_init(&t, "https://s3.example.com/", "bkt", "a/b//", 0));
    assert_null(t.port);
    assert_string_equal(t.prefix, "a/b/");
    assert_false(t.loopback);
    s3_url_target_free(&t);

    /* Userinfo: refused, and the password never appears in the message. */
    TU_RC(SHALE_INVALID_ARGUMENT,
          s3_url_target_init(&t, "http://user:hunter2@127.0.0.1:9000", "bkt", "", 1));
    assert_non_null(strstr(shale_errmsg(), "user name or password"));
    assert_null(strstr(shale_errmsg(), "hunter2"));
    assert_null(t.host);
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://evil@127.0.0.1", "bkt", "", 1));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example/base", "bkt", "", 1));
    assert_non_null(strstr(shale_errmsg(), "path"));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example/?x=1", "bkt", "", 1));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example/#f", "bkt", "", 1));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "ftp://h.example", "bkt", "", 1));
    assert_non_null(strstr(shale_errmsg(), "http:// or https://"));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "h.example", "bkt", "", 1));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://", "bkt", "", 1));
    /* Virtual-host style cannot put a bucket in front of an IP address. */
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://10.1.2.3:80", "bkt", "", 0));
    assert_non_null(strstr(shale_errmsg(), "IP address"));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://[::1]:80", "bkt", "", 0));
    TU_OK(s3_url_target_init(&t, "http://[::1]:8080", "bkt", "", 1));
    assert_string_equal(t.host, "[::1]");
    assert_true(t.loopback);
    s3_url_target_free(&t);
    /* Bad bucket and bad prefixes, named in the message. */
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example", "b@x", "", 1));
    assert_non_null(strstr(shale_errmsg(), "b%40x"));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example", "bkt", "a/../b", 1));
    assert_non_null(strstr(shale_errmsg(), "s3://bkt/a/../b"));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example", "bkt", "a//b", 1));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example", "bkt", "./a", 1));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_target_init(&t, "http://h.example", "bkt", "a\r\nb", 1));
    assert_non_null(strstr(shale_errmsg(), "control character"));
}

static void test_loopback(void **st)
{
    (void)st;
    assert_true(s3_url_host_is_loopback("localhost"));
    assert_true(s3_url_host_is_loopback("LocalHost"));
    assert_true(s3_url_host_is_loopback("s3.localhost"));
    assert_true(s3_url_host_is_loopback("127.0.0.1"));
    assert_true(s3_url_host_is_loopback("127.9.8.7"));
    assert_true(s3_url_host_is_loopback("[::1]"));
    assert_true(s3_url_host_is_loopback("::1"));
    assert_true(s3_url_host_is_loopback("[::ffff:127.0.0.1]"));
    assert_false(s3_url_host_is_loopback("localhost.evil.example"));
    assert_false(s3_url_host_is_loopback("128.0.0.1"));
    assert_false(s3_url_host_is_loopback("10.0.0.1"));
    assert_false(s3_url_host_is_loopback("[::2]"));
    assert_false(s3_url_host_is_loopback("s3.amazonaws.com"));
    assert_false(s3_url_host_is_loopback(""));
}

static void url_is(const s3_url_target *t, const char *key, const char *query, const char *want)
{
    char *u = NULL;
    TU_OK(s3_url_build(t, key, query, &u));
    if (strcmp(u, want))
        fail_msg("key '%s': built %s, want %s", key ? key : "(null)", u, want);
    free(u);
}

static void test_build_exact(void **st)
{
    (void)st;
    s3_url_target t;
    TU_OK(s3_url_target_init(&t, "http://127.0.0.1:9000", "bkt", "pfx", 1));
    url_is(&t, "a b/c@d#e?f%g", NULL, "http://127.0.0.1:9000/bkt/pfx/a%20b/c%40d%23e%3Ff%25g");
    url_is(&t, "x\r\nHost: evil", NULL, "http://127.0.0.1:9000/bkt/pfx/x%0D%0AHost%3A%20evil");
    url_is(&t, "@evil.example/k", NULL, "http://127.0.0.1:9000/bkt/pfx/%40evil.example/k");
    url_is(&t, "a..b/~_-.x", NULL, "http://127.0.0.1:9000/bkt/pfx/a..b/~_-.x");
    url_is(&t, "\xff\x01+", NULL, "http://127.0.0.1:9000/bkt/pfx/%FF%01%2B");
    url_is(&t, NULL, "list-type=2&prefix=pfx%2Fa", "http://127.0.0.1:9000/bkt/?list-type=2&prefix=pfx%2Fa");
    /* Dot segments would be collapsed by a parser: refused. */
    char *u = NULL;
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_build(&t, "../other-bucket/k", NULL, &u));
    assert_null(u);
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_build(&t, "a/./b", NULL, &u));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_build(&t, "a/..", NULL, &u));
    /* A query must arrive encoded. */
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_build(&t, NULL, "prefix=a#b", &u));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_build(&t, NULL, "prefix=@evil", &u));
    TU_RC(SHALE_INVALID_ARGUMENT, s3_url_build(&t, NULL, "a=b\r\n", &u));
    s3_url_target_free(&t);

    TU_OK(s3_url_target_init(&t, "https://s3.eu-west-1.amazonaws.com", "my.bucket", "", 0));
    url_is(&t, "k/v", NULL, "https://my.bucket.s3.eu-west-1.amazonaws.com/k/v");
    url_is(&t, NULL, "list-type=2", "https://my.bucket.s3.eu-west-1.amazonaws.com/?list-type=2");
    s3_url_target_free(&t);
    TU_OK(s3_url_target_init(&t, "http://[::1]:8080/", "bkt", "p/q", 1));
    url_is(&t, "k", NULL, "http://[::1]:8080/bkt/p/q/k");
    s3_url_target_free(&t);
}

static void pct_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1) {
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* Random keys of every byte but NUL (and without dot segments, which the
 * key rules forbid): the URL always names the configured host and port,
 * and its path decodes to exactly /bucket/prefix/key. */
static void check_random(const s3_url_target *t, const char *want_host)
{
    uint64_t seed = 42;
    int n = tu_quick() ? 300 : 3000;
    for (int i = 0; i < n; i++) {
        char key[64];
        size_t len = 1 + tu_rand(&seed) % 40;
        for (size_t j = 0; j < len; j++) {
            static const char special[] = "@/#?%:.\r\n \\[]&=+;!$'()*,";
            uint64_t r = tu_rand(&seed);
            key[j] = (r & 1) ? special[(r >> 1) % (sizeof special - 1)]
                             : (char)(1 + (r >> 1) % 255);
        }
        key[len] = '\0';
        char *u = NULL;
        shale_status rc = s3_url_build(t, key, NULL, &u);
        if (rc) {
            /* Refused only for a dot segment. */
            assert_int_equal(rc, SHALE_INVALID_ARGUMENT);
            assert_non_null(strstr(shale_errmsg(), "\".\" or \"..\""));
            continue;
        }
        /* SigV4's escapes are upper-case hex (curl's URL API writes lower). */
        for (const char *p = strchr(u, '%'); p; p = strchr(p + 1, '%'))
            if (strspn(p + 1, "0123456789ABCDEF") < 2)
                fail_msg("key %d: escape not upper-case hex in %s", i, u);
        CURLU *cu = curl_url();
        assert_int_equal(curl_url_set(cu, CURLUPART_URL, u, CURLU_PATH_AS_IS), CURLUE_OK);
        char *host = NULL, *port = NULL, *path = NULL, *user = NULL;
        assert_int_equal(curl_url_get(cu, CURLUPART_HOST, &host, 0), CURLUE_OK);
        assert_string_equal(host, want_host);
        assert_int_equal(curl_url_get(cu, CURLUPART_PORT, &port, 0), CURLUE_OK);
        assert_string_equal(port, t->port);
        assert_int_not_equal(curl_url_get(cu, CURLUPART_USER, &user, 0), CURLUE_OK);
        /* Decoded here: curl's CURLU_URLDECODE refuses control bytes. */
        assert_int_equal(curl_url_get(cu, CURLUPART_PATH, &path, 0), CURLUE_OK);
        pct_decode(path);
        char want[256];
        snprintf(want, sizeof want, "%s%s/%s%s", t->path_style ? "/" : "",
                 t->path_style ? t->bucket : "", t->prefix, key);
        if (strcmp(path, want))
            fail_msg("key %d: path '%s' != '%s' (url %s)", i, path, want, u);
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_url_cleanup(cu);
        free(u);
    }
}

static void test_build_random_keys(void **st)
{
    (void)st;
    s3_url_target t;
    TU_OK(s3_url_target_init(&t, "http://127.0.0.1:9000", "bkt", "p x/y@z%", 1));
    check_random(&t, "127.0.0.1");
    s3_url_target_free(&t);
    TU_OK(s3_url_target_init(&t, "http://s3.example.com:8443", "bkt", "", 0));
    check_random(&t, "bkt.s3.example.com");
    s3_url_target_free(&t);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_rules),
        cmocka_unit_test(test_endpoint_rules),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_build_exact),
        cmocka_unit_test(test_build_random_keys),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
