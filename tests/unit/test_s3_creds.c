/*
 * test_s3_creds.c -- where S3 credentials come from (engine/objstore/
 * s3_creds.c), against tests/tools/sts_stub.js: a local STS that checks
 * every AssumeRoleWithWebIdentity parameter (the token against the token
 * file's current content) and an S3 that accepts only the credentials it
 * issued, with their session token signed.  Refreshes are driven by the
 * expiry the stub hands out and by an injected clock, never by sleeping.
 */
#include "support/testutil.h"
#include "objstore/s3_creds.h"
#include "util/misc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct stub {
    pid_t pid;
    char endpoint[64];
    const char *ca;          /* CA bundle to reach it (https), or NULL */
} stub;

static stub g_main, g_tls;   /* plain http; https with a private CA */
#define g_endpoint g_main.endpoint
static char *g_dir;
static char g_token_file[600];
static const char *ROLE = "arn:aws:iam::123456789012:role/shale-test";

/* ---- the stub --------------------------------------------------------- */

static void stop_one(stub *st)
{
    if (st->pid > 0) {
        kill(-st->pid, SIGKILL);
        waitpid(st->pid, NULL, 0);
        st->pid = 0;
    }
}

static void stop_stubs(void)
{
    stop_one(&g_main);
    stop_one(&g_tls);
}

/* cert/key: PEM files for https, or NULL for http. */
static int start_stub(stub *st, const char *cert, const char *key)
{
    char logpath[700];
    snprintf(logpath, sizeof logpath, "%s/sts_stub%s.log", g_dir, cert ? "-tls" : "");
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (cert) {
            setenv("STS_STUB_CERT", cert, 1);
            setenv("STS_STUB_KEY", key, 1);
        }
        execlp("node", "node", "tests/tools/sts_stub.js", "0", (char *)NULL);
        _exit(127);
    }
    close(fd);
    st->pid = pid;
    /* Wait for its "LISTENING <port>" line (bounded): readiness, not a guess. */
    int64_t deadline = mono_ms() + 30000;
    int port = 0;
    while (!port && mono_ms() < deadline && waitpid(pid, NULL, WNOHANG) == 0) {
        char buf[256] = "";
        FILE *f = fopen(logpath, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *m = strstr(buf, "LISTENING ");
        if (!m || !strchr(m, '\n') || sscanf(m + 10, "%d", &port) != 1)
            sleep_ms(20);
    }
    if (!port)
        return -1;
    snprintf(st->endpoint, sizeof st->endpoint, "%s://127.0.0.1:%d", cert ? "https" : "http",
             port);
    return 0;
}

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    strncat((char *)ud, p, 4095 - strlen((char *)ud) < sz * n ? 4095 - strlen((char *)ud)
                                                                 : sz * n);
    return sz * n;
}

static json_t *stub_call_on(const stub *st, const char *path, const char *post)
{
    char url[128], out[4096] = "";
    snprintf(url, sizeof url, "%s%s", st->endpoint, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (st->ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, st->ca);
    if (post)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    return post ? NULL : json_loads(out, 0, NULL);
}

static json_t *stub_call(const char *path, const char *post)
{
    return stub_call_on(&g_main, path, post);
}

static void stub_config(const char *json)
{
    stub_call("/__stub/config", json);
}

static long long stat_int_on(const stub *st, const char *name)
{
    json_t *s = stub_call_on(st, "/__stub/stats", NULL);
    assert_non_null(s);
    long long v = json_integer_value(json_object_get(s, name));
    json_decref(s);
    return v;
}

static long long stat_int(const char *name)
{
    return stat_int_on(&g_main, name);
}

static char *stat_str(const char *name)
{
    json_t *s = stub_call("/__stub/stats", NULL);
    assert_non_null(s);
    char *v = strdup(json_string_value(json_object_get(s, name)) ?: "");
    json_decref(s);
    return v;
}

static void write_token(const char *tok)
{
    FILE *f = fopen(g_token_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", tok);
    fclose(f);
}

/* ---- environment and clock -------------------------------------------- */

static void clear_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
                                       "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
                                       "AWS_STS_ENDPOINT", "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void web_identity_env(void)
{
    clear_env();
    setenv("AWS_ROLE_ARN", ROLE, 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", g_token_file, 1);
    setenv("AWS_ROLE_SESSION_NAME", "shale-test", 1);
    setenv("AWS_STS_ENDPOINT", g_endpoint, 1);
}

static int64_t g_skew_ms;   /* the injected clock runs this far ahead */
static int64_t test_clock(void *ud)
{
    (void)ud;
    return now_ms() + g_skew_ms;
}

static int setup(void **st)
{
    (void)st;
    g_skew_ms = 0;
    stub_config("{\"roleArn\": \"arn:aws:iam::123456789012:role/shale-test\", "
                "\"sessionName\": \"shale-test\", \"expiresIn\": 3600, \"fail\": null, "
                "\"malformed\": 0, \"missing\": \"\"}");
    write_token("eyJhbGciOiJSUzI1NiJ9.first-token.sig");
    web_identity_env();
    return 0;
}

static s3_creds_config cfg_with_clock(void)
{
    s3_creds_config c;
    memset(&c, 0, sizeof c);
    c.clock_ms = test_clock;
    return c;
}

/* ---- warnings --------------------------------------------------------- */

static char g_warning[1024];
static int g_warnings;
static void on_warning(const char *msg, void *ud)
{
    (void)ud;
    snprintf(g_warning, sizeof g_warning, "%s", msg);
    g_warnings++;
}

/* ---- tests ------------------------------------------------------------ */

static void test_source_order(void **st)
{
    (void)st;
    s3_creds *c = NULL;
    s3_cred v;
    s3_creds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    clear_env();
    /* Nothing anywhere: the message says what to set. */
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "AWS_ACCESS_KEY_ID"));
    assert_non_null(strstr(shale_errmsg(), "AWS_WEB_IDENTITY_TOKEN_FILE"));
    /* Environment keys beat web identity, and carry AWS_SESSION_TOKEN. */
    web_identity_env();
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    setenv("AWS_SESSION_TOKEN", "ENVTOKEN", 1);
    long long calls = stat_int("sts");
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    assert_int_equal(s3_creds_source_of(c), S3_CREDS_ENV);
    TU_OK(s3_creds_get(c, &v));
    assert_string_equal(v.userpwd, "ENVKEY:ENVSECRET");
    assert_string_equal(v.token_header, "x-amz-security-token: ENVTOKEN");
    assert_int_equal(v.expires_ms, 0);
    s3_cred_clear(&v);
    assert_null(v.userpwd);
    s3_creds_release(c);
    assert_int_equal(stat_int("sts"), calls);   /* STS never asked */
    /* Options beat the environment, and do not borrow its token. */
    cfg.access_key = "OPTKEY";
    cfg.secret_key = "OPTSECRET";
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    assert_int_equal(s3_creds_source_of(c), S3_CREDS_OPTIONS);
    TU_OK(s3_creds_get(c, &v));
    assert_string_equal(v.userpwd, "OPTKEY:OPTSECRET");
    assert_null(v.token_header);
    s3_cred_clear(&v);
    s3_creds_release(c);
    /* Half a pair is an error naming the missing half, never a fall-through. */
    cfg.secret_key = NULL;
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "s3_secret_key"));
    memset(&cfg, 0, sizeof cfg);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "AWS_SECRET_ACCESS_KEY is not"));
    clear_env();
    setenv("AWS_ROLE_ARN", ROLE, 1);
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "AWS_WEB_IDENTITY_TOKEN_FILE is not"));
    assert_null(c);
}

static void test_web_identity_cached(void **st)
{
    (void)st;
    long long calls = stat_int("sts");
    s3_creds_config cfg = cfg_with_clock();
    s3_creds *c = NULL;
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    assert_int_equal(s3_creds_source_of(c), S3_CREDS_WEB_IDENTITY);
    assert_int_equal(stat_int("sts"), calls + 1);   /* fetched at open */
    char *name = stat_str("lastSessionName");
    assert_string_equal(name, "shale-test");
    free(name);
    s3_cred v;
    for (int i = 0; i < 5; i++) {
        TU_OK(s3_creds_get(c, &v));
        assert_memory_equal(v.access_key, "ASIASTUB", 8);
        assert_non_null(v.token_header);
        assert_true(v.expires_ms > now_ms() + 3500 * 1000);
        s3_cred_clear(&v);
    }
    assert_int_equal(stat_int("sts"), calls + 1);   /* an hour left: cached */
    /* A second store for the same role shares the provider: no new call. */
    s3_creds *c2 = NULL;
    TU_OK(s3_creds_new(&cfg, "s3://other", &c2));
    assert_ptr_equal(c, c2);
    assert_int_equal(stat_int("sts"), calls + 1);
    char want[80];
    snprintf(want, sizeof want, "%s/", g_endpoint);
    assert_string_equal(s3_creds_sts_endpoint(c), want);   /* AWS_STS_ENDPOINT */
    s3_creds_release(c2);
    s3_creds_release(c);
    /* Without it, the store's region picks the regional endpoint. */
    char *u = NULL;
    TU_OK(s3_creds_regional_sts("eu-west-1", &u));
    assert_string_equal(u, "https://sts.eu-west-1.amazonaws.com/");
    free(u);
    TU_OK(s3_creds_regional_sts("cn-north-1", &u));
    assert_string_equal(u, "https://sts.cn-north-1.amazonaws.com.cn/");
    free(u);
    TU_OK(s3_creds_regional_sts(NULL, &u));
    assert_string_equal(u, "https://sts.us-east-1.amazonaws.com/");
    free(u);
    TU_RC(SHALE_INVALID_ARGUMENT, s3_creds_regional_sts("evil.example/", &u));
    assert_null(u);
    /* Without AWS_ROLE_SESSION_NAME a name is made up and accepted. */
    unsetenv("AWS_ROLE_SESSION_NAME");
    stub_config("{\"sessionName\": \"\"}");
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    name = stat_str("lastSessionName");
    assert_memory_equal(name, "shale-", 6);
    free(name);
    s3_creds_release(c);
}

static void test_refresh_before_expiry(void **st)
{
    (void)st;
    s3_creds_config cfg = cfg_with_clock();
    s3_creds *c = NULL;
    long long calls = stat_int("sts");
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    s3_cred v;
    TU_OK(s3_creds_get(c, &v));
    char first[128];
    snprintf(first, sizeof first, "%s", v.access_key);
    s3_cred_clear(&v);
    /* 54 minutes on: 6 left, more than the 5-minute margin: no refresh. */
    g_skew_ms = 54 * 60 * 1000;
    TU_OK(s3_creds_get(c, &v));
    assert_string_equal(v.access_key, first);
    s3_cred_clear(&v);
    assert_int_equal(stat_int("sts"), calls + 1);
    /* The kubelet rotated the token: the stub now wants the new one, so the
     * refresh works only if the file is read again. */
    write_token("eyJhbGciOiJSUzI1NiJ9.rotated-token.sig");
    /* 56 minutes on: inside the margin: renewed, new key. */
    g_skew_ms = 56 * 60 * 1000;
    TU_OK(s3_creds_get(c, &v));
    assert_string_not_equal(v.access_key, first);
    s3_cred_clear(&v);
    assert_int_equal(stat_int("sts"), calls + 2);
    assert_int_equal(stat_int("stsOk") >= 2, 1);
    s3_creds_release(c);
}

static void test_short_lived_refresh_each_time(void **st)
{
    (void)st;
    /* Credentials that expire in 60 s are inside the margin from the start:
     * every use renews them (real clock). */
    stub_config("{\"expiresIn\": 60}");
    s3_creds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    s3_creds *c = NULL;
    long long calls = stat_int("sts");
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    s3_cred v;
    char last[128] = "";
    for (int i = 0; i < 3; i++) {
        TU_OK(s3_creds_get(c, &v));
        assert_string_not_equal(v.access_key, last);
        snprintf(last, sizeof last, "%s", v.access_key);
        s3_cred_clear(&v);
    }
    assert_int_equal(stat_int("sts"), calls + 4);
    s3_creds_release(c);
    /* Already expired when issued: used once as fetched, renewed next time. */
    stub_config("{\"expiresIn\": -10}");
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    TU_OK(s3_creds_get(c, &v));
    s3_cred_clear(&v);
    assert_int_equal(stat_int("sts"), calls + 6);
    s3_creds_release(c);
}

static void test_refresh_failure(void **st)
{
    (void)st;
    shale_set_warning_handler(on_warning, NULL);
    g_warnings = 0;
    s3_creds_config cfg = cfg_with_clock();
    s3_creds *c = NULL;
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    s3_cred v;
    TU_OK(s3_creds_get(c, &v));
    char first[128];
    snprintf(first, sizeof first, "%s", v.access_key);
    s3_cred_clear(&v);
    /* Inside the margin, STS refuses: the old ones (still valid) are used
     * and a warning says so with STS's message. */
    stub_config("{\"fail\": {\"count\": 100, \"status\": 403, \"code\": \"AccessDenied\", "
                "\"message\": \"role trust policy changed\"}}");
    g_skew_ms = 57 * 60 * 1000;
    long long calls = stat_int("sts");
    TU_OK(s3_creds_get(c, &v));
    assert_string_equal(v.access_key, first);
    s3_cred_clear(&v);
    assert_int_equal(stat_int("sts"), calls + 1);   /* a 403 is not retried */
    assert_int_equal(g_warnings, 1);
    assert_non_null(strstr(g_warning, "role trust policy changed"));
    assert_null(strstr(g_warning, "SECRET"));
    /* Within the retry interval: no new STS call. */
    g_skew_ms += S3_CREDS_RETRY_MS / 2;
    TU_OK(s3_creds_get(c, &v));
    s3_cred_clear(&v);
    assert_int_equal(stat_int("sts"), calls + 1);
    /* Past expiry: the request's error, with STS's code and message. */
    g_skew_ms = 61 * 60 * 1000;
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_get(c, &v));
    assert_non_null(strstr(shale_errmsg(), "HTTP 403 AccessDenied: role trust policy changed"));
    assert_non_null(strstr(shale_errmsg(), ROLE));
    assert_null(v.userpwd);
    /* STS recovers: the next use renews. */
    stub_config("{\"fail\": null}");
    TU_OK(s3_creds_get(c, &v));
    assert_string_not_equal(v.access_key, first);
    s3_cred_clear(&v);
    s3_creds_release(c);
    shale_set_warning_handler(NULL, NULL);
}

static void test_errors(void **st)
{
    (void)st;
    s3_creds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    s3_creds *c = NULL;
    /* Missing token file. */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-token", g_dir);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", missing, 1);
    TU_RC(SHALE_INVALID_ARGUMENT, s3_creds_new(&cfg, "s3://b/p", &c));
    assert_non_null(strstr(shale_errmsg(), missing));
    assert_non_null(strstr(shale_errmsg(), "AWS_WEB_IDENTITY_TOKEN_FILE"));
    assert_non_null(strstr(shale_errmsg(), "s3://b/p"));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", g_token_file, 1);
    /* Empty token file. */
    write_token("");
    TU_RC(SHALE_INVALID_ARGUMENT, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "empty"));
    /* A token STS does not accept (file and stub disagree). */
    write_token("some-other-token");
    stub_call("/__stub/config", "{\"tokenFile\": \"/nonexistent\"}");
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "InvalidIdentityToken"));
    char tf[700];
    snprintf(tf, sizeof tf, "{\"tokenFile\": \"%s\"}", g_token_file);
    stub_config(tf);
    /* Another role: STS's 403 AccessDenied with its message. */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/other", 1);
    TU_RC(SHALE_UNAUTHORIZED, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "HTTP 403 AccessDenied: Not authorized"));
    setenv("AWS_ROLE_ARN", ROLE, 1);
    /* A session name STS would refuse is refused here first. */
    setenv("AWS_ROLE_SESSION_NAME", "has space", 1);
    TU_RC(SHALE_INVALID_ARGUMENT, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "AWS_ROLE_SESSION_NAME"));
    setenv("AWS_ROLE_SESSION_NAME", "shale-test", 1);
    /* Malformed XML, then a document without a SessionToken. */
    stub_config("{\"malformed\": 1}");
    TU_RC(SHALE_CORRUPT, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "not XML"));
    stub_config("{\"missing\": \"SessionToken\"}");
    TU_RC(SHALE_CORRUPT, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "no SessionToken"));
    stub_config("{\"missing\": \"\"}");
    /* 5xx: retried (3 attempts), then the error. */
    long long calls = stat_int("sts");
    stub_config("{\"fail\": {\"count\": 3, \"status\": 503, \"code\": \"ServiceUnavailable\"}}");
    TU_RC(SHALE_RETRYABLE, s3_creds_new(&cfg, "s3://b", &c));
    assert_int_equal(stat_int("sts"), calls + 3);
    stub_config("{\"fail\": {\"count\": 1, \"status\": 500, \"code\": \"InternalFailure\"}}");
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));   /* one 500, then success */
    s3_creds_release(c);
    /* Nothing listening. */
    setenv("AWS_STS_ENDPOINT", "http://127.0.0.1:1", 1);
    TU_RC(SHALE_IO, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "127.0.0.1:1"));
    /* An STS endpoint with userinfo. */
    setenv("AWS_STS_ENDPOINT", "http://u:p@127.0.0.1:1", 1);
    TU_RC(SHALE_INVALID_ARGUMENT, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "AWS_STS_ENDPOINT"));
}

typedef struct worker {
    s3_creds *c;
    int n, failures;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        s3_cred v;
        if (s3_creds_get(w->c, &v) != SHALE_OK || !v.userpwd || !v.token_header ||
            strncmp(v.access_key, "ASIASTUB", 8))
            w->failures++;
        s3_cred_clear(&v);
    }
    return NULL;
}

static void test_threads(void **st)
{
    (void)st;
    /* Short-lived credentials: threads renew while others read. */
    stub_config("{\"expiresIn\": 120}");
    s3_creds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    s3_creds *c = NULL;
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    long long calls = stat_int("sts");
    enum { T = 6 };
    pthread_t th[T];
    worker w[T];
    int n = tu_quick() ? 20 : 60;
    for (int i = 0; i < T; i++) {
        w[i] = (worker){c, n, 0};
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    long long made = stat_int("sts") - calls;
    /* Renewed, but never more than once per use, and (one fetcher at a
     * time, the others using the still-valid ones) usually far less. */
    assert_true(made >= 1);
    assert_true(made <= T * n);
    s3_creds_release(c);
}

/* The session token reaches S3 requests, signed: the stub's S3 accepts a
 * request only with the token issued with its key among the signed
 * headers. */
static void test_token_reaches_requests(void **st)
{
    (void)st;
    setenv("AWS_ENDPOINT_URL", g_endpoint, 1);
    /* 60-s credentials renew at every use: each request must carry the
     * token issued with the key it is signed with. */
    stub_config("{\"expiresIn\": 60}");
    shale_objstore *s = NULL;
    long long ok0 = stat_int("s3");
    TU_OK(shale_objstore_open("s3://bkt/pfx", NULL, &s));
    uint64_t size;
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, "no/such key", &size, NULL));
    TU_OK(shale_objstore_delete(s, "k@#?%"));
    shale_objlist page;
    TU_OK(shale_objstore_list(s, "a b", NULL, 0, &page));
    shale_objlist_free(&page);
    /* 3 calls, plus one HEAD of the bucket: a 404 without a body (the
     * HEAD) on a store that has not yet seen the bucket answer checks that
     * the bucket exists (objstore_s3.c, NoSuchBucket named). */
    assert_int_equal(stat_int("s3"), ok0 + 4);
    char *key = stat_str("lastKeyId");
    assert_memory_equal(key, "ASIASTUB", 8);
    free(key);
    /* Renewed credentials sign the next request. */
    char *k1 = NULL;
    for (int i = 0; i < 3; i++) {
        TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, "x", &size, NULL));
        char *k = stat_str("lastKeyId");
        if (k1)
            assert_string_not_equal(k, k1);
        free(k1);
        k1 = k;
    }
    free(k1);
    shale_objstore_close(s);
    /* Expired credentials that STS will not renew: the request fails with
     * STS's reason, as SHALE_UNAUTHORIZED, and nothing is sent to S3. */
    stub_config("{\"expiresIn\": -10}");
    TU_OK(shale_objstore_open("s3://bkt/pfx", NULL, &s));
    stub_config("{\"fail\": {\"count\": 100, \"status\": 403, \"code\": \"AccessDenied\", "
                "\"message\": \"role revoked\"}}");
    long long sent = stat_int("s3") + stat_int("s3Refused");
    TU_RC(SHALE_UNAUTHORIZED, shale_objstore_head(s, "x", &size, NULL));
    assert_non_null(strstr(shale_errmsg(), "AccessDenied: role revoked"));
    assert_int_equal(stat_int("s3") + stat_int("s3Refused"), sent);
    shale_objstore_close(s);
    stub_config("{\"fail\": null, \"expiresIn\": 3600}");
    /* Static keys with AWS_SESSION_TOKEN: the token is sent and signed. */
    clear_env();
    setenv("AWS_ENDPOINT_URL", g_endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "STATICKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "STATICSECRET", 1);
    setenv("AWS_SESSION_TOKEN", "STATICTOKEN", 1);
    TU_OK(shale_objstore_open("s3://bkt/pfx", NULL, &s));
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, "x", &size, NULL));
    char *tok = stat_str("lastToken");
    assert_string_equal(tok, "STATICTOKEN");
    free(tok);
    shale_objstore_close(s);
    /* Without the token the same keys are refused: the check is real. */
    unsetenv("AWS_SESSION_TOKEN");
    TU_OK(shale_objstore_open("s3://bkt/pfx", NULL, &s));
    TU_RC(SHALE_UNAUTHORIZED, shale_objstore_head(s, "x", &size, NULL));
    TU_RC(SHALE_UNAUTHORIZED, shale_objstore_delete(s, "x"));
    assert_non_null(strstr(shale_errmsg(), "InvalidToken"));
    shale_objstore_close(s);
}

static void test_store_options(void **st)
{
    (void)st;
    clear_env();
    setenv("AWS_ACCESS_KEY_ID", "STATICKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "STATICSECRET", 1);
    shale_set_warning_handler(on_warning, NULL);
    g_warnings = 0;
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    shale_objstore *s = NULL;
    /* Plain http to a host that is not loopback: a warning naming it (the
     * open makes no request). */
    o.s3_endpoint = "http://10.255.255.1:9000";
    TU_OK(shale_objstore_open("s3://bkt/p", &o, &s));
    shale_objstore_close(s);
    assert_int_equal(g_warnings, 1);
    assert_non_null(strstr(g_warning, "10.255.255.1"));
    assert_non_null(strstr(g_warning, "plain http"));
    assert_null(strstr(g_warning, "STATICSECRET"));
    /* Loopback and https: none. */
    o.s3_endpoint = "http://127.0.0.1:9000";
    TU_OK(shale_objstore_open("s3://bkt/p", &o, &s));
    shale_objstore_close(s);
    o.s3_endpoint = "https://s3.example.com";
    TU_OK(shale_objstore_open("s3://bkt/p", &o, &s));
    shale_objstore_close(s);
    assert_int_equal(g_warnings, 1);
    shale_set_warning_handler(NULL, NULL);
    /* A CA bundle that cannot be read is an error at open, naming it. */
    char ca[700];
    snprintf(ca, sizeof ca, "%s/no-such-ca.pem", g_dir);
    o.s3_ca_file = ca;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_open("s3://bkt/p", &o, &s));
    assert_non_null(strstr(shale_errmsg(), ca));
    o.s3_ca_file = NULL;
    setenv("AWS_CA_BUNDLE", ca, 1);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_open("s3://bkt/p", &o, &s));
    assert_non_null(strstr(shale_errmsg(), "AWS_CA_BUNDLE"));
    unsetenv("AWS_CA_BUNDLE");
    /* Bucket, endpoint and region rules reach the open. */
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_open("s3://Bad_Bucket/p", &o, &s));
    assert_non_null(strstr(shale_errmsg(), "Bad_Bucket"));
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_open("s3://evil.example@bkt/p", &o, &s));
    o.s3_endpoint = "http://user:pw@127.0.0.1:9000";
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_open("s3://bkt/p", &o, &s));
    assert_null(strstr(shale_errmsg(), "pw@"));
    o.s3_endpoint = NULL;
    o.s3_region = "evil.example/x";
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_open("s3://bkt/p", &o, &s));
    assert_non_null(strstr(shale_errmsg(), "region"));
}

static int run_sh(const char *cmd)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A private CA, a server certificate for 127.0.0.1 it signed, and the stub
 * serving https with it: STS and S3 are reachable only with the CA given. */
static void test_private_ca(void **st)
{
    (void)st;
    char cmd[4096], ca[700], cert[700], key[700];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(cert, sizeof cert, "%s/srv.pem", g_dir);
    snprintf(key, sizeof key, "%s/srv.key", g_dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec >openssl.log 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj '/CN=shale test CA' && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj '/CN=127.0.0.1' && "
             "printf 'subjectAltName=IP:127.0.0.1\n' >srv.ext && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile srv.ext", g_dir);
    assert_int_equal(run_sh(cmd), 0);
    assert_int_equal(start_stub(&g_tls, cert, key), 0);
    g_tls.ca = ca;
    char j[1200];
    snprintf(j, sizeof j, "{\"roleArn\": \"%s\", \"tokenFile\": \"%s\", "
             "\"sessionName\": \"shale-test\"}", ROLE, g_token_file);
    stub_call_on(&g_tls, "/__stub/config", j);
    setenv("AWS_STS_ENDPOINT", g_tls.endpoint, 1);
    s3_creds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    s3_creds *c = NULL;
    /* STS over https: refused without the CA (not retried: not transient). */
    long long calls = stat_int_on(&g_tls, "sts");
    TU_RC(SHALE_IO, s3_creds_new(&cfg, "s3://b", &c));
    assert_non_null(strstr(shale_errmsg(), "certificate"));
    assert_int_equal(stat_int_on(&g_tls, "sts"), calls);   /* no request got through */
    cfg.ca_file = ca;
    TU_OK(s3_creds_new(&cfg, "s3://b", &c));
    assert_int_equal(stat_int_on(&g_tls, "sts"), calls + 1);
    s3_creds_release(c);
    /* S3 over https: static keys, the CA from s3_ca_file, then AWS_CA_BUNDLE. */
    clear_env();
    setenv("AWS_ACCESS_KEY_ID", "STATICKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "STATICSECRET", 1);
    setenv("AWS_SESSION_TOKEN", "STATICTOKEN", 1);
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.s3_endpoint = g_tls.endpoint;
    o.max_retries = 0;
    shale_objstore *s = NULL;
    uint64_t size;
    TU_OK(shale_objstore_open("s3://bkt/p", &o, &s));
    TU_RC(SHALE_IO, shale_objstore_head(s, "k", &size, NULL));
    assert_non_null(strstr(shale_errmsg(), "certificate"));
    shale_objstore_close(s);
    o.s3_ca_file = ca;
    TU_OK(shale_objstore_open("s3://bkt/p", &o, &s));
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, "k", &size, NULL));
    shale_objstore_close(s);
    o.s3_ca_file = NULL;
    setenv("AWS_CA_BUNDLE", ca, 1);
    TU_OK(shale_objstore_open("s3://bkt/p", &o, &s));
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, "k", &size, NULL));
    shale_objstore_close(s);
    assert_int_equal(stat_int_on(&g_tls, "s3"), 4);   /* 2 HEADs, each + its bucket check */
    stop_one(&g_tls);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_dir = tu_tmpdir("s3creds");
    snprintf(g_token_file, sizeof g_token_file, "%s/token", g_dir);
    atexit(stop_stubs);
    if (start_stub(&g_main, NULL, NULL) != 0) {
        fprintf(stderr, "sts_stub.js did not start (is node installed?)\n");
        return 1;
    }
    char cfgjson[800];
    snprintf(cfgjson, sizeof cfgjson, "{\"tokenFile\": \"%s\"}", g_token_file);
    stub_config(cfgjson);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_source_order, setup),
        cmocka_unit_test_setup(test_web_identity_cached, setup),
        cmocka_unit_test_setup(test_refresh_before_expiry, setup),
        cmocka_unit_test_setup(test_short_lived_refresh_each_time, setup),
        cmocka_unit_test_setup(test_refresh_failure, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_threads, setup),
        cmocka_unit_test_setup(test_token_reaches_requests, setup),
        cmocka_unit_test_setup(test_store_options, setup),
        cmocka_unit_test_setup(test_private_ca, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_stubs();
    curl_global_cleanup();
    return rc;
}
