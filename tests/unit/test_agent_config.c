/*
 * test_agent_config.c -- the agent configuration: documented defaults (the
 * HTTP API on loopback only), YAML errors with line and column, unknown
 * keys and bad types refused, --set overrides.
 */
#include "support/testutil.h"
#include "config.h"
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_defaults_are_safe(void **state)
{
    (void)state;
    agent_config c;
    TU_OK(agent_config_defaults(&c));
    assert_string_equal(c.http_listen, "127.0.0.1:8080");     /* loopback only */
    assert_null(c.http_token_file);
    assert_false(c.kube_insecure);                             /* TLS verified */
    assert_int_equal(c.http_max_body, 1u << 20);                /* bounded bodies */
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));     /* shard, store required */
    agent_config_free(&c);
}

static void test_errors_name_line_and_column(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfg");
    struct { const char *text, *want; } cases[] = {
        {"shard: s\nstore: {uri: \"file:///x\"}\nsources:\n  http: {bogus: 1}\n", ":4:"},
        {"shard: s\nstore: [unclosed\n", "line 3"},
        {"shard: s\nstore: {uri: \"file:///x\"}\nlogLevel: loud\n", ":3:"},
        {"shard: s\nstore: {uri: \"file:///x\"}\nsources: {local: {pollMs: -5}}\n", ":3:"},
        {"shard: s\nstore: {uri: \"file:///x\"}\nsources: {http: {enabled: maybe}}\n", ":3:"},
        {"a: &x 1\nb: *x\n", "anchors"},
        {"shard: s\nstore: {uri: \"file:///x\"}\nverify: {mode: sometimes}\n", ":3:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.yaml", i);
        char *p = write_file(dir, name, cases[i].text);
        agent_config c;
        TU_OK(agent_config_defaults(&c));
        TU_RC(SHALE_INVALID_ARGUMENT, agent_config_load(&c, p));
        if (!strstr(shale_errmsg(), cases[i].want) || !strstr(shale_errmsg(), name))
            fail_msg("case %zu: '%s' lacks '%s' or the file name", i, shale_errmsg(),
                     cases[i].want);
        agent_config_free(&c);
        free(p);
    }
    tu_rmtree(dir);
    free(dir);
}

static void test_s3_ca_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfg");
    char *p = write_file(dir, "ca.yaml", "shard: s\nstore: {uri: \"s3://b/o\"}\n"
                         "s3: {endpoint: \"https://s3.internal:9000\", caFile: \"/etc/ca.pem\"}\n");
    agent_config c;
    TU_OK(agent_config_defaults(&c));
    assert_null(c.s3_ca_file);
    TU_OK(agent_config_load(&c, p));
    assert_string_equal(c.s3_ca_file, "/etc/ca.pem");
    TU_OK(agent_config_set(&c, "s3.caFile=/other/ca.pem"));
    assert_string_equal(c.s3_ca_file, "/other/ca.pem");
    TU_OK(agent_config_check(&c));
    agent_config_free(&c);
    assert_null(c.s3_ca_file);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

static void test_file_and_overrides(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfg");
    char *p = write_file(dir, "ok.yaml",
                         "shard: orders-0\nstore: {uri: \"s3://b/o\", walUri: \"file:///w\"}\n"
                         "sources:\n  http: {listen: \"127.0.0.1:9000\", maxBodyBytes: 4096}\n"
                         "logLevel: debug\n");
    agent_config c;
    TU_OK(agent_config_defaults(&c));
    TU_OK(agent_config_load(&c, p));
    TU_OK(agent_config_set(&c, "sources.local.enabled=false"));
    TU_OK(agent_config_set(&c, "timeouts.stepSeconds=7"));
    TU_OK(agent_config_check(&c));
    assert_string_equal(c.shard, "orders-0");
    assert_string_equal(c.wal_uri, "file:///w");
    assert_string_equal(c.http_listen, "127.0.0.1:9000");
    assert_int_equal(c.http_max_body, 4096);
    assert_int_equal(c.log_level, 0);
    assert_false(c.local_enabled);
    assert_int_equal(c.step_seconds, 7);
    assert_int_equal(c.verify_mode, SPLIT_VERIFY_FULL);        /* the default */
    TU_OK(agent_config_set(&c, "verify.mode=references"));
    assert_int_equal(c.verify_mode, SPLIT_VERIFY_REFERENCES);
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_set(&c, "verify.mode=sometimes"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_set(&c, "no.such.key=1"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_set(&c, "logLevel=loud"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_set(&c, "sources.http.maxBodyBytes=lots"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_set(&c, "missing-equals"));
    agent_config_free(&c);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

/* The HTTP API fails closed: beyond loopback it needs a token. */
static void test_http_fails_closed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfg");
    char *p = write_file(dir, "h.yaml",
                         "shard: s\nstore: {uri: \"file:///x\"}\nsources:\n  http:\n"
                         "    allowedOrigins: [\"https://ops.example\", \"http://127.0.0.1:3000\"]\n");
    agent_config c;
    TU_OK(agent_config_defaults(&c));
    assert_int_equal(c.http_max_connections, 32);
    assert_int_equal(c.http_timeout_s, 30);
    TU_OK(agent_config_load(&c, p));
    assert_string_equal(c.http_origins[1], "http://127.0.0.1:3000");
    assert_null(c.http_origins[2]);
    TU_OK(agent_config_check(&c));                                  /* loopback, no token */
    const char *open_addrs[] = {"0.0.0.0:8080", "10.1.2.3:80", "[::]:8080", "[2001:db8::1]:1"};
    for (size_t i = 0; i < sizeof open_addrs / sizeof *open_addrs; i++) {
        char set[64];
        snprintf(set, sizeof set, "sources.http.listen=%s", open_addrs[i]);
        TU_OK(agent_config_set(&c, set));
        TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));
        if (!strstr(shale_errmsg(), "sources.http.listen") ||
            !strstr(shale_errmsg(), "sources.http.tokenFile") ||
            !strstr(shale_errmsg(), open_addrs[i]))
            fail_msg("%s: %s", open_addrs[i], shale_errmsg());
    }
    TU_OK(agent_config_set(&c, "sources.http.tokenFile=/run/secrets/token"));
    TU_OK(agent_config_check(&c));                                  /* with a token: fine */
    TU_OK(agent_config_set(&c, "sources.http.token=inline"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));          /* not both */
    TU_OK(agent_config_set(&c, "sources.http.tokenFile="));
    TU_OK(agent_config_check(&c));
    TU_OK(agent_config_set(&c, "sources.http.token="));
    TU_OK(agent_config_set(&c, "sources.http.listen=[::1]:8080"));
    TU_OK(agent_config_check(&c));                                  /* IPv6 loopback */
    TU_OK(agent_config_set(&c, "sources.http.listen=localhost:8080"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));          /* numeric only */
    TU_OK(agent_config_set(&c, "sources.http.listen=127.0.0.1:8080"));
    TU_OK(agent_config_set(&c, "sources.http.allowedOrigins=*"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));          /* no wildcard */
    TU_OK(agent_config_set(&c, "sources.http.allowedOrigins=https://a.example,https://b.example"));
    assert_string_equal(c.http_origins[1], "https://b.example");
    assert_null(c.http_origins[2]);
    TU_OK(agent_config_set(&c, "sources.http.probeListen=0.0.0.0:8081"));
    TU_OK(agent_config_check(&c));                   /* probes may listen anywhere */
    TU_OK(agent_config_set(&c, "sources.http.maxConnections=2"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));
    agent_config_free(&c);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

/* Which child stores requests may name: file and s3 by default, mem and
 * fault only under the test option, an allowlist when given. */
static void test_request_policy_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfg");
    agent_config c;
    split_policy pol;
    TU_OK(agent_config_defaults(&c));
    agent_config_policy(&c, &pol);
    assert_true(pol.allow_file && pol.allow_s3);
    assert_false(pol.allow_test_schemes);                     /* tests only */
    assert_null(pol.child_prefixes);
    agent_config_free(&c);
    char *p = write_file(dir, "pol.yaml",
                         "shard: s\nstore: {uri: \"file:///x\"}\n"
                         "requests:\n  allowSchemes: [s3]\n"
                         "  childStorePrefixes: [\"s3://kids/a/\", \"s3://kids//b\"]\n"
                         "testing: {allowTestSchemes: true}\n");
    TU_OK(agent_config_defaults(&c));
    TU_OK(agent_config_load(&c, p));
    TU_OK(agent_config_check(&c));
    agent_config_policy(&c, &pol);
    assert_false(pol.allow_file);
    assert_true(pol.allow_s3 && pol.allow_test_schemes);
    assert_string_equal(pol.child_prefixes[1], "s3://kids//b");
    assert_null(pol.child_prefixes[2]);
    TU_OK(agent_config_set(&c, "requests.allowSchemes=file,s3"));
    agent_config_policy(&c, &pol);
    assert_true(pol.allow_file && pol.allow_s3);
    /* mem and fault are not schemes an operator allows: the test option is. */
    TU_OK(agent_config_set(&c, "requests.allowSchemes=[file, mem]"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));
    assert_non_null(strstr(shale_errmsg(), "testing.allowTestSchemes"));
    TU_OK(agent_config_set(&c, "requests.allowSchemes=[ftp]"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));
    TU_OK(agent_config_set(&c, "requests.allowSchemes=s3"));
    TU_OK(agent_config_set(&c, "requests.childStorePrefixes=file://relative"));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_check(&c));
    assert_non_null(strstr(shale_errmsg(), "childStorePrefixes[0]"));
    agent_config_free(&c);
    free(p);
    p = write_file(dir, "bad.yaml", "shard: s\nstore: {uri: \"file:///x\"}\n"
                                    "requests: {allowSchemes: file}\n");
    TU_OK(agent_config_defaults(&c));
    TU_OK(agent_config_load(&c, p));     /* a single word is a list of one */
    agent_config_policy(&c, &pol);
    assert_true(pol.allow_file && !pol.allow_s3);
    agent_config_free(&c);
    free(p);
    p = write_file(dir, "bad2.yaml", "shard: s\nstore: {uri: \"file:///x\"}\n"
                                     "requests: {allowSchemes: {file: 1}}\n");
    TU_OK(agent_config_defaults(&c));
    TU_RC(SHALE_INVALID_ARGUMENT, agent_config_load(&c, p));
    assert_non_null(strstr(shale_errmsg(), ":3:"));
    agent_config_free(&c);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_safe),
        cmocka_unit_test(test_errors_name_line_and_column),
        cmocka_unit_test(test_file_and_overrides),
        cmocka_unit_test(test_s3_ca_file),
        cmocka_unit_test(test_http_fails_closed),
        cmocka_unit_test(test_request_policy_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
