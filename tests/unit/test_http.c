/*
 * test_http.c -- the agent's HTTP server (agent/http.c) against a real
 * splitter on a fault+file:// store:
 * - a store that hangs: /healthz answers 200 at once (on both listeners)
 *   and /metrics too (the shard gauges from their snapshot), while /readyz reports not ready with the reason; it
 *   recovers when the store does; a failing store check gives its error;
 * - refusals that need no body (401, 415, 413) come before the body: the
 *   answer arrives while the client has sent only the headers;
 * - a body trickled past the request deadline gets the connection closed;
 * - API requests stuck on a slow store: past the busy limit the next gets
 *   503 at once and the probes still answer;
 * - the YAML pre-scan refuses 1 MiB of nesting with the reason, and lets
 *   32 levels through.
 */
#include "support/dbtest.h"
#include "http.h"
#include "splitter.h"
#include "yamljson.h"
#include "util/misc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct fx {
    char *dir, *file_uri, *store;   /* store: fault+file://dir/parent */
    shale_fault *ctl;
    splitter *sp;
    http_server *h;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("http");
    f->file_uri = tu_file_uri(f->dir, "parent");
    f->store = tu_fault_uri(f->file_uri);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(f->file_uri, &o, &db));
    for (unsigned i = 0; i < 50; i++)
        dt_put(db, i, 1);
    TU_OK(shale_close(db));
    f->ctl = shale_fault_for_uri(f->store, NULL);
    assert_non_null(f->ctl);
    splitter_options so;
    splitter_options_init(&so);
    so.shard = "s0";
    so.store_uri = f->store;
    so.db = o;
    so.policy.allow_test_schemes = true;   /* mem:// children (tests) */
    TU_OK(splitter_new(&so, &f->sp));
    TU_OK(splitter_start(f->sp));
    http_options ho;
    http_options_init(&ho);
    ho.listen = "127.0.0.1:0";
    ho.probe_listen = "127.0.0.1:0";
    ho.token = "t0ken-for-tests";
    ho.max_body = 4096;
    ho.timeout_s = 1;
    ho.ready_check_ms = 20;
    ho.ready_timeout_ms = 150;
    TU_OK(http_start(&ho, splitter_service(f->sp), f->sp, &f->h));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    shale_fault_clear(f->ctl);
    http_stop(f->h);
    splitter_free(f->sp);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->file_uri);
    free(f->store);
    free(f);
    return 0;
}

typedef struct reply {
    long code;
    char body[65536];
    size_t len;
} reply;

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
    reply *r = ctx;
    size_t k = sz * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return k;
}

/* GET with a timeout; code 0 if no answer came in time. */
static reply get(uint16_t port, const char *path, long timeout_ms, bool token)
{
    reply r = {0};
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *hd = token ? curl_slist_append(NULL, "Authorization: Bearer "
                                                            "t0ken-for-tests") : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    return r;
}

/* Polls /readyz until it answers want (bounded: a condition, not a sleep). */
static reply ready_until(fx *f, long want)
{
    reply r = {0};
    for (int i = 0; i < 400; i++) {
        r = get(http_port(f->h), "/readyz", 2000, false);
        if (r.code == want)
            return r;
        sleep_ms(10);
    }
    fail_msg("/readyz never answered %ld (last %ld: %s)", want, r.code, r.body);
    return r;
}

static void test_probes_answer_while_the_store_hangs(void **state)
{
    fx *f = *state;
    ready_until(f, 200);
    /* The shard gauges' first refresh (a condition, polled). */
    reply g = {0};
    for (int i = 0; i < 400 && !strstr(g.body, "shale_shard_facts_ok 1"); i++) {
        g = get(http_port(f->h), "/metrics", 2000, true);
        sleep_ms(10);
    }
    assert_non_null(strstr(g.body, "shale_shard_facts_ok 1"));
    /* Every list of manifest/ (the readiness check) now takes 1.5 s. */
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_LIST), "manifest/", 0, 0, SHALE_OK,
                             false, 1500, 0};
    TU_OK(shale_fault_add(f->ctl, &rule, NULL));
    reply r = ready_until(f, 503);
    if (!strstr(r.body, "has not answered a check"))
        fail_msg("/readyz reason: %s", r.body);
    /* The store is hung right now; liveness and metrics still answer well
     * inside the hang (500 ms against 1.5 s), on both listeners. */
    reply h1 = get(http_port(f->h), "/healthz", 500, false);
    reply h2 = get(http_probe_port(f->h), "/healthz", 500, false);
    reply r2 = get(http_probe_port(f->h), "/readyz", 500, false);
    reply m = get(http_port(f->h), "/metrics", 500, true);
    assert_int_equal(h1.code, 200);
    assert_int_equal(h2.code, 200);
    assert_int_equal(r2.code, 503);
    assert_int_equal(m.code, 200);
    assert_non_null(strstr(m.body, "shale_agent_ready 0"));
    /* The shard gauges too, from the refresher's snapshot (its own
     * refresh is stuck in the same hang). */
    assert_non_null(strstr(m.body, "\nshale_shard_ssts "));
    assert_non_null(strstr(m.body, "\nshale_shard_split_in_progress 0"));
    /* The store recovers: so does readiness. */
    shale_fault_clear(f->ctl);
    ready_until(f, 200);
}

static void test_failing_store_check_gives_its_error(void **state)
{
    fx *f = *state;
    ready_until(f, 200);
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_LIST), "manifest/", 0, 0, SHALE_IO,
                             false, 0, 0};
    TU_OK(shale_fault_add(f->ctl, &rule, NULL));
    reply r = ready_until(f, 503);
    if (!strstr(r.body, "did not answer"))
        fail_msg("/readyz reason: %s", r.body);
    assert_int_equal(get(http_port(f->h), "/healthz", 500, false).code, 200);
    shale_fault_clear(f->ctl);
    ready_until(f, 200);
}

static int dial(uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    return s;
}

/* Reads what the server sends within ms (until it closes or the time is
 * up); returns the byte count, -1 if the server reset the connection. */
static ssize_t read_for(int s, char *buf, size_t n, int ms)
{
    size_t got = 0;
    int64_t end = mono_ms() + ms;
    while (got < n - 1 && mono_ms() < end) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, (int)(end - mono_ms())) <= 0)
            break;
        ssize_t k = recv(s, buf + got, n - 1 - got, 0);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

static void test_refused_before_the_body(void **state)
{
    fx *f = *state;
    const struct { const char *headers, *want; } cases[] = {
        /* no token */
        {"Content-Type: application/json\r\nContent-Length: 3000\r\n", " 401 "},
        /* a browser's cross-site simple POST */
        {"Authorization: Bearer t0ken-for-tests\r\nContent-Type: text/plain\r\n"
         "Content-Length: 3000\r\n", " 415 "},
        /* announced larger than maxBodyBytes */
        {"Authorization: Bearer t0ken-for-tests\r\nContent-Type: application/json\r\n"
         "Content-Length: 100000000\r\n", " 413 "},
        {"Authorization: Bearer t0ken-for-tests\r\nContent-Type: application/json\r\n"
         "Origin: https://evil.example\r\nContent-Length: 3000\r\n", " 403 "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int s = dial(http_port(f->h));
        char req[512], buf[2048];
        int n = snprintf(req, sizeof req, "POST /v1/splits HTTP/1.1\r\nHost: x\r\n%s\r\n",
                         cases[i].headers);
        assert_int_equal(send(s, req, (size_t)n, 0), n);
        /* Not one byte of the body sent: the answer must come anyway. */
        ssize_t got = read_for(s, buf, sizeof buf, 2000);
        close(s);
        if (got <= 0 || strncmp(buf, "HTTP/1.1", 8) || !strstr(buf, cases[i].want))
            fail_msg("case %zu: want%sbefore the body, got '%.80s'", i, cases[i].want, buf);
    }
}

static void test_trickled_body_is_cut_off(void **state)
{
    fx *f = *state;
    int s = dial(http_port(f->h));
    const char *req = "POST /v1/splits HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer t0ken-for-tests\r\n"
                      "Content-Type: application/json\r\nContent-Length: 60\r\n\r\n";
    assert_int_equal(send(s, req, strlen(req), 0), (ssize_t)strlen(req));
    /* One byte each 300 ms: 60 bytes would take 18 s; the deadline is 1 s. */
    bool closed = false;
    int sent = 0;
    for (; sent < 60 && !closed; sent++) {
        if (send(s, "{", 1, MSG_NOSIGNAL) != 1)
            closed = true;
        char buf[256];
        ssize_t got = read_for(s, buf, sizeof buf, 300);
        if (got < 0 || (got == 0 && recv(s, buf, 1, MSG_DONTWAIT) == 0))
            closed = true;
        if (got > 0 && strstr(buf, "HTTP/1.1"))
            fail_msg("an answer to a trickled body: %s", buf);
    }
    close(s);
    if (!closed || sent >= 20)
        fail_msg("the connection stayed open for %d bytes (%d ms)", sent, sent * 300);
    reply m = get(http_port(f->h), "/metrics", 2000, true);
    assert_non_null(strstr(m.body, "shale_http_deadline_closed_total 1"));
}

typedef struct poster {
    uint16_t port;
    long code;
} poster;

static long post(uint16_t port, const char *body, long timeout_ms)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/splits", port);
    CURL *c = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Authorization: Bearer t0ken-for-tests");
    hd = curl_slist_append(hd, "Content-Type: application/yaml");
    reply r = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    return r.code;
}

static const char *SLOW_REQ = "name: slow\nparent: {shard: s0}\nchildren:\n"
                              "  - {name: a, store: \"mem://a\", range: {start: \"\", end: m}}\n"
                              "  - {name: b, store: \"mem://b\", range: {start: m, end: \"\"}}\n";

static void *post_slow(void *arg)
{
    poster *p = arg;
    p->code = post(p->port, SLOW_REQ, 10000);
    return NULL;
}

/* API requests stuck on a slow store never take every connection: past
 * half of maxConnections busy, the next is answered 503 at once, and the
 * probes still answer. */
static void test_busy_api_answers_503_and_leaves_room(void **state)
{
    fx *f = *state;
    /* Reading the parent's manifest (what a submit validates against) now
     * takes 1.5 s; the readiness check (a list) does not. */
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_GET) | SHALE_FAULT_OP(SHALE_OP_GET_RANGE),
                             "manifest/", 0, 0, SHALE_OK, false, 1500, 0};
    TU_OK(shale_fault_add(f->ctl, &rule, NULL));
    poster p[16];
    pthread_t t[16];
    for (int i = 0; i < 16; i++) {   /* maxConnections 32: busy limit 16 */
        p[i].port = http_port(f->h);
        p[i].code = 0;
        assert_int_equal(pthread_create(&t[i], NULL, post_slow, &p[i]), 0);
    }
    long code = 0;
    for (int i = 0; i < 100 && code != 503; i++)
        code = post(http_port(f->h), SLOW_REQ, 1000);
    assert_int_equal(code, 503);
    assert_int_equal(get(http_port(f->h), "/healthz", 500, false).code, 200);
    assert_int_equal(get(http_port(f->h), "/readyz", 500, false).code, 200);
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    int answered = 0;
    for (int i = 0; i < 16; i++)
        answered += p[i].code != 0;
    assert_int_equal(answered, 16);   /* the slow ones were served, not dropped */
}

static void test_yaml_prescan(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *text = malloc(n + 1);
    const char *pats[] = {"[", "? ", "- ", "[{a: ", "x: [y, "};
    for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
        size_t pl = strlen(pats[p]), len = 0;
        while (len + pl <= n) {
            memcpy(text + len, pats[p], pl);
            len += pl;
        }
        text[len] = '\0';
        json_t *j = NULL;
        TU_RC(SHALE_INVALID_ARGUMENT, yamljson_parse("body", text, len, &j, NULL));
        if (!strstr(shale_errmsg(), "nesting deeper than 32"))
            fail_msg("'%s': %s", pats[p], shale_errmsg());
        assert_null(j);
    }
    /* 32 levels are fine; 33 are not. */
    for (int depth = 32; depth <= 33; depth++) {
        size_t len = 0;
        for (int i = 0; i < depth; i++)
            text[len++] = '[';
        text[len++] = '1';
        for (int i = 0; i < depth; i++)
            text[len++] = ']';
        json_t *j = NULL;
        shale_status rc = yamljson_parse("body", text, len, &j, NULL);
        assert_int_equal(rc, depth == 32 ? SHALE_OK : SHALE_INVALID_ARGUMENT);
        json_decref(j);
    }
    /* Wide is refused past 65,536 values; aliases still are. */
    size_t len = 0;
    text[len++] = '[';
    while (len + 2 < n)
        text[len++] = '1', text[len++] = ',';
    text[len++] = ']';
    json_t *j = NULL;
    TU_RC(SHALE_INVALID_ARGUMENT, yamljson_parse("body", text, len, &j, NULL));
    assert_non_null(strstr(shale_errmsg(), "more than 65536 values"));
    TU_RC(SHALE_INVALID_ARGUMENT, yamljson_parse("body", "a: &x 1\nb: *x\n", 14, &j, NULL));
    free(text);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probes_answer_while_the_store_hangs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_store_check_gives_its_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_before_the_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickled_body_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_api_answers_503_and_leaves_room, setup,
                                        teardown),
        cmocka_unit_test(test_yaml_prescan),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
