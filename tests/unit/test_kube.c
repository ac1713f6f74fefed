/* test_kube.c -- the Kubernetes controller's parts that can be tested alone:
 * the in-cluster URL (IPv6), condition transitions, the status diff, event
 * aggregation and rate limits, the work queue's backoff, the watch cache
 * (in-stream ERROR 410), and the reconcile rules that need no API server
 * (a finalizer that cannot be set keeps the split from starting; a refusal
 * is not submitted again). */
#include "support/testutil.h"
#include "config.h"
#include "kube_client.h"
#include "kube_queue.h"
#include "kube_status.h"
#include "kube_watch.h"
#include "source_kube.h"
#include "util/misc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static void test_in_cluster_url(void **state)
{
    (void)state;
    char *u = NULL;
    TU_OK(kube_in_cluster_url("::1", "443", &u));
    assert_string_equal(u, "https://[::1]:443");
    free(u);
    TU_OK(kube_in_cluster_url("fd00:10:96::1", "6443", &u));
    assert_string_equal(u, "https://[fd00:10:96::1]:6443");
    free(u);
    TU_OK(kube_in_cluster_url("10.96.0.1", "443", &u));
    assert_string_equal(u, "https://10.96.0.1:443");
    free(u);
    TU_OK(kube_in_cluster_url("[::1]", "443", &u));   /* already bracketed */
    assert_string_equal(u, "https://[::1]:443");
    free(u);
    TU_RC(SHALE_INVALID_ARGUMENT, kube_in_cluster_url("", "443", &u));
    TU_RC(SHALE_INVALID_ARGUMENT, kube_in_cluster_url("::1", "0", &u));
    TU_RC(SHALE_INVALID_ARGUMENT, kube_in_cluster_url("::1", "443x", &u));
    assert_non_null(strstr(shale_errmsg(), "443x"));
    TU_RC(SHALE_INVALID_ARGUMENT, kube_in_cluster_url("::1", "70000", &u));
    assert_null(u);
}

static json_t *cond_of(json_t *conds, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
        if (!strcmp(json_string_value(json_object_get(c, "type")), type))
            return c;
    fail_msg("no condition %s", type);
    return NULL;
}

static const char *cs(json_t *conds, const char *type, const char *field)
{
    return json_string_value(json_object_get(cond_of(conds, type), field));
}

static void test_condition_transitions(void **state)
{
    (void)state;
    json_t *d1 = json_pack("{s:s}", "phase", "Cloning");
    json_t *c1 = kube_conditions(d1, 1, NULL, "2026-01-01T00:00:00Z");
    assert_string_equal(cs(c1, "Accepted", "status"), "True");
    assert_string_equal(cs(c1, "Progressing", "status"), "True");
    assert_string_equal(cs(c1, "Complete", "status"), "False");
    /* Complete later: only the conditions whose status changed get the new
     * time; every one carries the generation. */
    json_t *d2 = json_pack("{s:s, s:s, s:s}", "phase", "Complete", "reason", "SplitComplete",
                           "message", "done");
    json_t *c2 = kube_conditions(d2, 1, c1, "2026-01-01T00:05:00Z");
    assert_string_equal(cs(c2, "Accepted", "lastTransitionTime"), "2026-01-01T00:00:00Z");
    assert_string_equal(cs(c2, "Failed", "lastTransitionTime"), "2026-01-01T00:00:00Z");
    assert_string_equal(cs(c2, "Complete", "lastTransitionTime"), "2026-01-01T00:05:00Z");
    assert_string_equal(cs(c2, "Progressing", "lastTransitionTime"), "2026-01-01T00:05:00Z");
    assert_string_equal(cs(c2, "Complete", "status"), "True");
    assert_string_equal(cs(c2, "Complete", "reason"), "SplitComplete");
    assert_string_equal(cs(c2, "Progressing", "status"), "False");
    /* A spec edit (generation 2): the same statuses, no new times, the new
     * generation on every condition (kubectl wait compares it). */
    json_t *c3 = kube_conditions(d2, 2, c2, "2026-01-01T01:00:00Z");
    size_t i;
    json_t *c;
    json_array_foreach(c3, i, c) {
        assert_int_equal(json_integer_value(json_object_get(c, "observedGeneration")), 2);
        assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
                            json_string_value(json_object_get(cond_of(c2, json_string_value(
                                json_object_get(c, "type"))), "lastTransitionTime")));
    }
    /* A refusal: Accepted False with the reason, nothing progressing. */
    json_t *d4 = json_pack("{s:s, s:s, s:s, s:b}", "phase", "Failed", "reason", "Conflict",
                           "message", "busy", "refused", 1);
    json_t *c4 = kube_conditions(d4, 1, NULL, "2026-01-01T00:00:00Z");
    assert_string_equal(cs(c4, "Accepted", "status"), "False");
    assert_string_equal(cs(c4, "Accepted", "reason"), "Conflict");
    assert_string_equal(cs(c4, "Failed", "status"), "True");
    assert_string_equal(cs(c4, "Progressing", "status"), "False");
    /* Stalled (split safety's phase): its own condition, still progressing. */
    json_t *d5 = json_pack("{s:s, s:{s:s, s:s, s:i, s:s}}", "phase", "Stalled", "stalled",
                           "step", "Clone", "error", "store unreachable", "retries", 3,
                           "nextRetryTime", "2026-01-01T00:10:00Z");
    json_t *c5 = kube_conditions(d5, 1, c1, "2026-01-01T00:06:00Z");
    assert_string_equal(cs(c5, "Stalled", "status"), "True");
    assert_non_null(strstr(cs(c5, "Stalled", "message"), "store unreachable"));
    assert_string_equal(cs(c5, "Progressing", "status"), "True");
    assert_string_equal(cs(c5, "Progressing", "lastTransitionTime"), "2026-01-01T00:00:00Z");
    json_t *docs[] = {d1, d2, d4, d5, c1, c2, c3, c4, c5};
    for (size_t k = 0; k < sizeof docs / sizeof *docs; k++)
        json_decref(docs[k]);
}

static void test_status_diff(void **state)
{
    (void)state;
    json_t *d = json_pack("{s:s, s:[{s:s, s:s}]}", "phase", "Cloning", "steps", "name", "Clone",
                          "state", "Running");
    json_t *a = kube_status_body(d, 1, NULL, "2026-01-01T00:00:00Z");
    /* Written once, the same document again is no write, even later. */
    json_t *b = kube_status_body(d, 1, a, "2026-01-01T00:00:09Z");
    assert_false(kube_status_differs(a, b));
    /* Progress inside a phase waits for the next phase. */
    json_object_set_new(d, "steps", json_pack("[{s:s, s:s, s:i}]", "name", "Clone", "state",
                                              "Running", "objectsCopied", 5));
    json_t *c = kube_status_body(d, 1, a, "2026-01-01T00:00:10Z");
    assert_false(kube_status_differs(a, c));
    /* A new generation, a new phase: writes. */
    json_t *e = kube_status_body(d, 2, a, "2026-01-01T00:00:10Z");
    assert_true(kube_status_differs(a, e));
    json_object_set_new(d, "phase", json_string("Verifying"));
    json_t *f = kube_status_body(d, 1, a, "2026-01-01T00:00:10Z");
    assert_true(kube_status_differs(a, f));
    assert_true(kube_status_differs(a, NULL));
    json_t *all[] = {d, a, b, c, e, f};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        json_decref(all[k]);
}

static void test_event_aggregation(void **state)
{
    (void)state;
    kube_evagg *a = kube_evagg_new();
    char n1[300], n2[300];
    int count = 0;
    int64_t t = 1000000;
    assert_int_equal(kube_evagg_decide(a, "u1", "s1", "Warning", "Conflict", "busy", t, n1,
                                       sizeof n1, &count), KUBE_EV_POST);
    assert_int_equal(count, 1);
    assert_true(!strncmp(n1, "s1.", 3));
    /* The same again: the first one's count goes up. */
    assert_int_equal(kube_evagg_decide(a, "u1", "s1", "Warning", "Conflict", "busy", t + 10, n2,
                                       sizeof n2, &count), KUBE_EV_PATCH);
    assert_int_equal(count, 2);
    assert_string_equal(n1, n2);
    /* Another message, another object: new events. */
    assert_int_equal(kube_evagg_decide(a, "u1", "s1", "Warning", "Conflict", "other", t, n2,
                                       sizeof n2, &count), KUBE_EV_POST);
    assert_int_equal(kube_evagg_decide(a, "u2", "s2", "Warning", "Conflict", "busy", t, n2,
                                       sizeof n2, &count), KUBE_EV_POST);
    /* After ten quiet minutes a repeat is a new event. */
    assert_int_equal(kube_evagg_decide(a, "u1", "s1", "Warning", "Conflict", "busy",
                                       t + 11 * 60 * 1000, n2, sizeof n2, &count), KUBE_EV_POST);
    assert_int_equal(count, 1);
    assert_string_not_equal(n1, n2);
    /* The rate limit: 25 in a burst per object (u3 fresh), then one per 5
     * minutes. */
    char msg[32];
    int posted = 0;
    for (int i = 0; i < 30; i++) {
        snprintf(msg, sizeof msg, "m%d", i);
        posted += kube_evagg_decide(a, "u3", "s3", "Normal", "Phase", msg, t, n2, sizeof n2,
                                    &count) == KUBE_EV_POST;
    }
    assert_int_equal(posted, 25);
    assert_int_equal(kube_evagg_decide(a, "u3", "s3", "Normal", "Phase", "late",
                                       t + 5 * 60 * 1000 + 1, n2, sizeof n2, &count),
                     KUBE_EV_POST);
    assert_int_equal(kube_evagg_decide(a, "u3", "s3", "Normal", "Phase", "later",
                                       t + 5 * 60 * 1000 + 2, n2, sizeof n2, &count),
                     KUBE_EV_DROP);
    kube_evagg_forget(a, "u3");   /* a deleted object starts afresh */
    assert_int_equal(kube_evagg_decide(a, "u3", "s3", "Normal", "Phase", "new", t, n2,
                                       sizeof n2, &count), KUBE_EV_POST);
    kube_evagg_free(a);
}

static void test_queue_backoff(void **state)
{
    (void)state;
    kube_queue *q = NULL;
    TU_OK(kube_queue_new(100, 1000, &q));
    /* Added twice: queued once. */
    kube_queue_add(q, "a");
    kube_queue_add(q, "a");
    kube_queue_add(q, "b");
    assert_int_equal(kube_queue_len(q), 2);
    char *k = NULL;
    assert_true(kube_queue_get(q, 0, &k));
    assert_string_equal(k, "a");
    /* Added while processing: not handed out twice, queued again at done. */
    kube_queue_add(q, "a");
    assert_int_equal(kube_queue_len(q), 1);   /* b only */
    kube_queue_done(q, "a");
    assert_int_equal(kube_queue_len(q), 2);
    free(k);
    /* Per-key exponential backoff, capped; forget resets. */
    assert_int_equal(kube_queue_next_backoff(q, "x"), 100);
    uint32_t want[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_int_equal(kube_queue_add_rate_limited(q, "x", 0), want[i]);
    assert_int_equal(kube_queue_failures(q, "x"), 6);
    assert_int_equal(kube_queue_next_backoff(q, "y"), 100);   /* per key */
    kube_queue_forget(q, "x");
    assert_int_equal(kube_queue_next_backoff(q, "x"), 100);
    /* The server's Retry-After wins over a shorter backoff. */
    assert_int_equal(kube_queue_add_rate_limited(q, "z", 3000), 3000);
    /* Delayed keys are not ready yet; add() makes one ready now. */
    size_t before = kube_queue_len(q);
    kube_queue_add_after(q, "later", 60000);
    assert_int_equal(kube_queue_len(q), before);
    kube_queue_add(q, "later");
    assert_int_equal(kube_queue_len(q), before + 1);
    kube_queue_shutdown(q);
    assert_false(kube_queue_get(q, -1, &k));
    kube_queue_free(q);
}

/* ---- the watch cache and reconcile without an API server ------------------- */

static char *write_kubeconfig(const char *dir)
{
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    snprintf(p, n, "%s/kubeconfig", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    /* Port 1 refuses connections at once: every request fails fast. */
    fputs("apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {server: "
          "\"https://127.0.0.1:1\"}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- "
          "name: c\n  context: {cluster: t, user: u, namespace: ns}\ncurrent-context: c\n", f);
    fclose(f);
    return p;
}

static int changes;
static void on_change(void *ctx, const char *uid)
{
    (void)ctx;
    (void)uid;
    changes++;
}

static void test_watch_cache(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("kube_watch");
    char *kc = write_kubeconfig(dir);
    kube_client *c = NULL;
    TU_OK(kube_client_new(kc, NULL, false, &c));
    assert_string_equal(kube_client_namespace(c), "ns");
    kube_watch *w = NULL;
    TU_OK(kube_watch_new(c, "/apis/shale.io/v1alpha1/namespaces/ns/shardsplits", NULL,
                         on_change, NULL, &w));
    changes = 0;
    const char *s1 =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\",\"uid\":\"u1\","
        "\"resourceVersion\":\"5\"}}}\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n"
        "not json\n"
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"y\",\"uid\":\"u2\","
        "\"resourceVersion\":\"10\"}}}\n";
    assert_true(kube_watch_feed(w, s1, strlen(s1)));
    assert_int_equal(changes, 2);
    json_t *o = kube_watch_get(w, "u1");
    assert_non_null(o);
    json_decref(o);
    char *uid = kube_watch_uid_of(w, "y");
    assert_string_equal(uid, "u2");
    free(uid);
    /* A write's answer with an older resourceVersion does not go back. */
    json_t *old = json_pack("{s:{s:s, s:s, s:s, s:s}}", "metadata", "name", "y", "uid", "u2",
                            "resourceVersion", "7", "note", "old");
    kube_watch_put(w, old);
    json_decref(old);
    o = kube_watch_get(w, "u2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "metadata"),
                                                          "resourceVersion")), "10");
    json_decref(o);
    /* Deleted: gone from the cache, and the controller hears of it. */
    const char *s2 = "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"x\","
                     "\"uid\":\"u1\",\"resourceVersion\":\"11\"}}}\n";
    assert_true(kube_watch_feed(w, s2, strlen(s2)));
    assert_int_equal(changes, 3);
    assert_null(kube_watch_get(w, "u1"));
    /* An in-stream ERROR (410 Expired) ends the stream to list again;
     * nothing after it is taken. */
    const char *s3 = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                     "\"reason\":\"Expired\"}}\n{\"type\":\"ADDED\",\"object\":{\"metadata\":"
                     "{\"name\":\"z\",\"uid\":\"u3\",\"resourceVersion\":\"12\"}}}\n";
    assert_false(kube_watch_feed(w, s3, strlen(s3)));
    assert_null(kube_watch_get(w, "u3"));
    kube_watch_free(w);
    kube_client_free(c);
    unlink(kc);
    free(kc);
    tu_rmtree(dir);
    free(dir);
}

/* A split service that counts submits, accepts them and then knows the
 * split (running). */
static int submits;
static char known[64];
static shale_status f_submit(split_service *s, const split_request *r, bool *c, char **st)
{
    (void)s;
    submits++;
    snprintf(known, sizeof known, "%s", r->name);
    *c = true;
    *st = xstrdup("{\"phase\":\"Accepted\"}");
    return SHALE_OK;
}
static shale_status f_get(split_service *s, const char *n, char **st)
{
    (void)s;
    *st = strcmp(n, known) ? NULL : xstrdup("{\"phase\":\"Cloning\"}");
    return *st ? SHALE_OK : SHALE_NOT_FOUND;
}
static shale_status f_list(split_service *s, char **o)
{
    (void)s;
    *o = xstrdup("[]");
    return SHALE_OK;
}
static shale_status f_abort(split_service *s, const char *n, char **st)
{
    (void)s;
    (void)n;
    *st = NULL;
    return SHALE_CONFLICT;
}
static bool f_ready(split_service *s)
{
    (void)s;
    return true;
}
static const split_service_ops ops = {f_submit, f_get, f_list, f_abort, f_ready};
static split_service svc = {&ops};

static char *event(const char *type, const char *uid, const char *fin, const char *children)
{
    char *e = malloc(2048);
    snprintf(e, 2048,
             "{\"type\":\"%s\",\"object\":{\"metadata\":{\"name\":\"s-%s\",\"uid\":\"%s\","
             "\"generation\":1,\"resourceVersion\":\"3\"%s},\"spec\":{\"parent\":"
             "{\"shard\":\"orders-0\"},\"children\":%s}}}\n",
             type, uid, uid, fin, children);
    return e;
}

static void test_reconcile_rules(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("kube_reconcile");
    char *kc = write_kubeconfig(dir);
    agent_config cfg;
    TU_OK(agent_config_defaults(&cfg));
    cfg.shard = xstrdup("orders-0");
    cfg.kubeconfig = xstrdup(kc);
    source_kube *k = NULL;
    TU_OK(source_kube_new(&cfg, &svc, &k));
    const char *good = "[{\"name\":\"a\",\"store\":\"mem://a\",\"range\":{\"start\":\"\","
                       "\"end\":\"m\"}},{\"name\":\"b\",\"store\":\"mem://b\",\"range\":"
                       "{\"start\":\"m\",\"end\":\"\"}}]";
    const char *overlap = "[{\"name\":\"a\",\"store\":\"mem://a\",\"range\":{\"start\":\"\","
                          "\"end\":\"n\"}},{\"name\":\"b\",\"store\":\"mem://b\",\"range\":"
                          "{\"start\":\"m\",\"end\":\"\"}}]";
    submits = 0;
    known[0] = '\0';
    /* The finalizer cannot be set (no API server): the split waits. */
    char *e = event("ADDED", "u1", "", good);
    source_kube_feed(k, e, strlen(e));
    free(e);
    assert_int_equal(submits, 0);
    /* With the finalizer in place it is submitted, once per generation. */
    e = event("MODIFIED", "u1", ",\"finalizers\":[\"shale.io/split\"]", good);
    source_kube_feed(k, e, strlen(e));
    source_kube_feed(k, e, strlen(e));
    free(e);
    assert_int_equal(submits, 1);
    /* An invalid request is refused without a submit, and its own
     * MODIFIED events (same generation) change nothing. */
    e = event("ADDED", "u2", "", overlap);
    for (int i = 0; i < 5; i++)
        source_kube_feed(k, e, strlen(e));
    free(e);
    assert_int_equal(submits, 1);
    source_kube_free(k);
    agent_config_free(&cfg);
    unlink(kc);
    free(kc);
    tu_rmtree(dir);
    free(dir);
}

/* An API server that never answers (a socket that listens and never
 * accepts: connects succeed, TLS never starts).  The status listener must
 * still return at once, newer statuses replace older ones, and shutdown
 * does not wait out the request. */
static void test_status_never_blocks(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    char *dir = tu_tmpdir("kube_slow");
    size_t n = strlen(dir) + 32;
    char *kc = malloc(n);
    snprintf(kc, n, "%s/kubeconfig", dir);
    FILE *f = fopen(kc, "w");
    fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {server: "
               "\"https://127.0.0.1:%u\"}\nusers:\n- name: u\n  user: {token: t}\n"
               "contexts:\n- name: c\n  context: {cluster: t, user: u}\ncurrent-context: c\n",
            (unsigned)ntohs(a.sin_port));
    fclose(f);
    kube_client *c = NULL;
    TU_OK(kube_client_new(kc, "ns", false, &c));
    kube_status *ks = NULL;
    TU_OK(kube_status_new(c, "orders-0", 0, &ks));
    kube_target t = {"ns", "s1", "u1", "1", 1, NULL};
    static const char *const phases[] = {"Accepted", "Fencing", "Flushing", "WipingWAL",
                                         "Cloning", "Verifying"};
    int64_t t0 = mono_ms();
    char doc[128];
    for (int i = 0; i < 300; i++) {
        snprintf(doc, sizeof doc, "{\"phase\":\"%s\",\"message\":\"%d\"}", phases[i % 6], i);
        kube_status_want(ks, &t, doc);
    }
    int64_t took = mono_ms() - t0;
    assert_true(took < 1000);   /* 300 hand-overs; each is a copy, not a request */
    assert_false(kube_status_idle(ks));   /* the first write hangs */
    kube_status_stats st;
    kube_status_get_stats(ks, &st);
    assert_true(st.coalesced >= 290);   /* only the newest wanted status is kept */
    assert_int_equal(st.status_writes, 0);
    t0 = mono_ms();
    kube_client_cancel(c);
    kube_status_free(ks, 0);
    assert_true(mono_ms() - t0 < 5000);   /* not the 30 s request timeout */
    kube_client_free(c);
    close(fd);
    unlink(kc);
    free(kc);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_cluster_url),
        cmocka_unit_test(test_condition_transitions),
        cmocka_unit_test(test_status_diff),
        cmocka_unit_test(test_event_aggregation),
        cmocka_unit_test(test_queue_backoff),
        cmocka_unit_test(test_watch_cache),
        cmocka_unit_test(test_reconcile_rules),
        cmocka_unit_test(test_status_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
