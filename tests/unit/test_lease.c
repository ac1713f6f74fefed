/*
 * test_lease.c -- split safety held in the store: the shard's split lease
 * (lease.c) through the splitter's service, resume from journals that
 * cannot be read or are corrupt, Stalled past the point of no return, and
 * dry-run expiry.
 *
 * Races are real: two threads released by one barrier submit different
 * splits of one shard, to two splitters on one parent store (two agents)
 * or to one splitter (two sources).  Exactly one may win, whatever the
 * timing, and the loser's Conflict names the winner.
 */
#include "support/splittest.h"   /* sf_lease_read */
#include "splitter.h"
#include "request.h"
#include "journal.h"
#include "lease.h"
#include "metrics.h"
#include "splitter_int.h"   /* splitter_parent_prime */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx {
    char *dir, *parent, *wal;
    char *kid[2][2], *kidwal[2][2];   /* [split][child] */
    shale_options o;
    unsigned n;
} fx;

static fx *fx_new(bool fault_parent)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("lease");
    f->parent = tu_file_uri(f->dir, "parent");
    f->wal = tu_file_uri(f->dir, "local-wal");
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < 2; c++) {
            char sub[32];
            snprintf(sub, sizeof sub, "s%d-child%d", s, c);
            f->kid[s][c] = tu_file_uri(f->dir, sub);
            snprintf(sub, sizeof sub, "s%d-child%d-wal", s, c);
            f->kidwal[s][c] = tu_file_uri(f->dir, sub);
        }
    dt_small_options(&f->o);
    f->o.wal_store_uri = f->wal;
    f->n = tu_quick() ? 300 : 1000;
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &f->o, &db));
    for (unsigned i = 0; i < f->n; i++)
        dt_put(db, i, 1);
    TU_OK(shale_close(db));
    if (fault_parent) {
        char *u = tu_fault_uri(f->parent);
        free(f->parent);
        f->parent = u;
    }
    return f;
}

static void fx_free(fx *f)
{
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->wal);
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < 2; c++) {
            free(f->kid[s][c]);
            free(f->kidwal[s][c]);
        }
    free(f);
}

static splitter *agent(fx *f, bool start)
{
    splitter_options so;
    splitter_options_init(&so);
    so.shard = "orders-0";
    so.store_uri = f->parent;
    so.wal_store_uri = f->wal;
    so.db = f->o;
    so.db.wal_store_uri = NULL;
    so.retry_base_ms = 5;
    so.retry_max_ms = 40;
    splitter *sp = NULL;
    TU_OK(splitter_new(&so, &sp));
    if (start)
        TU_OK(splitter_start(sp));
    return sp;
}

/* Split number s (its own children) of the shard, cut in the middle. */
static split_request *request(fx *f, const char *name, int s, bool dry)
{
    char text[2048], cut[32];
    dt_key(cut, sizeof cut, f->n / 2);
    int n = snprintf(text, sizeof text,
                     "name: %s\nparent: {shard: orders-0}\ndryRun: %s\nchildren:\n"
                     "  - {name: a, store: \"%s\", walStore: \"%s\", range: {start: \"\", "
                     "end: \"%s\"}}\n"
                     "  - {name: b, store: \"%s\", walStore: \"%s\", range: {start: \"%s\", "
                     "end: \"\"}}\n",
                     name, dry ? "true" : "false", f->kid[s][0], f->kidwal[s][0], cut,
                     f->kid[s][1], f->kidwal[s][1], cut);
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, (size_t)n, &r));
    return r;
}

static shale_status submit(splitter *sp, split_request *r, bool *created, char **st)
{
    split_service *svc = splitter_service(sp);
    return svc->ops->submit(svc, r, created, st);
}

static char *status(splitter *sp, const char *name)
{
    char *s = NULL;
    split_service *svc = splitter_service(sp);
    TU_OK(svc->ops->get(svc, name, &s));
    return s;
}

static void expect_in(const char *text, const char *want)
{
    if (!text || !strstr(text, want))
        fail_msg("expected '%s' in:\n%s", want, text ? text : "(null)");
}

/* ---- races ------------------------------------------------------------------ */

typedef struct racer {
    splitter *sp;
    split_request *r;
    pthread_barrier_t *go;
    shale_status rc;
    bool created;
    char msg[600];
} racer;

static void *race(void *arg)
{
    racer *x = arg;
    char *st = NULL;
    pthread_barrier_wait(x->go);
    x->rc = submit(x->sp, x->r, &x->created, &st);
    snprintf(x->msg, sizeof x->msg, "%s", x->rc ? shale_errmsg() : "");
    free(st);
    return NULL;
}

/* Two submits of different splits at one moment: one runs, the other is
 * refused naming it.  two_agents: each to its own splitter on the parent.
 * primed: each splitter knows the parent's range, as after its worker's
 * first pass, so each take goes out beside the parent's manifest GET
 * rather than after it (split_accept.c, "The parent's range"). */
static void race_round(bool two_agents, bool primed)
{
    fx *f = fx_new(false);
    /* Not started: the winner holds the lease from its accept until the
     * workers start below, so the loser's submit meets it whatever the
     * timing (a started winner could finish and release it first). */
    splitter *a = agent(f, false), *b = two_agents ? agent(f, false) : a;
    if (primed) {
        splitter_parent_prime(a);
        if (b != a)
            splitter_parent_prime(b);
        assert_true(a->prange_known && b->prange_known);
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    racer x[2] = {{a, request(f, "split-x", 0, false), &go, 0, false, ""},
                  {b, request(f, "split-y", 1, false), &go, 0, false, ""}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race, &x[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int won = x[0].rc == SHALE_OK ? 0 : 1, lost = 1 - won;
    if (x[won].rc || !x[won].created)
        fail_msg("no submit won: %s / %s", x[0].msg, x[1].msg);
    assert_int_equal(x[lost].rc, SHALE_CONFLICT);
    expect_in(x[lost].msg, won ? "being split by split-y" : "being split by split-x");
    TU_OK(splitter_start(a));
    if (b != a)
        TU_OK(splitter_start(b));
    TU_OK(splitter_wait_idle(a, 60000));
    TU_OK(splitter_wait_idle(b, 60000));
    char *st = status(a == b || !won ? a : b, x[won].r->name);
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    /* The loser never ran: no journal, its children untouched. */
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_objlist l;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "splits/%s/", x[lost].r->name);
    TU_OK(shale_objstore_list_all(s, prefix, &l));
    assert_int_equal(l.count, 0);
    shale_objlist_free(&l);
    shale_objstore_close(s);
    shale_reader *rd = NULL;
    shale_options o = f->o;
    o.wal_store_uri = NULL;
    assert_int_not_equal(shale_reader_open(f->kid[lost][0], &o, NULL, &rd), SHALE_OK);
    assert_false(sf_lease_read(f->parent).held);
    for (int i = 0; i < 2; i++)
        split_request_free(x[i].r);
    pthread_barrier_destroy(&go);
    if (b != a)
        splitter_free(b);
    splitter_free(a);
    fx_free(f);
}

static void test_two_agents_race_one_wins(void **state)
{
    (void)state;
    for (int i = 0; i < (tu_quick() ? 3 : 10); i++)
        race_round(true, false);
}

static void test_two_sources_race_one_wins(void **state)
{
    (void)state;
    for (int i = 0; i < (tu_quick() ? 3 : 10); i++)
        race_round(false, false);
}

static void test_two_agents_race_with_kept_range(void **state)
{
    (void)state;
    for (int i = 0; i < (tu_quick() ? 3 : 10); i++)
        race_round(true, true);
}

static void test_two_sources_race_with_kept_range(void **state)
{
    (void)state;
    for (int i = 0; i < (tu_quick() ? 3 : 10); i++)
        race_round(false, true);
}

/* ---- restarts and other agents ------------------------------------------------ */

static void test_restarted_agent_keeps_refusing(void **state)
{
    (void)state;
    fx *f = fx_new(false);
    splitter *a = agent(f, false);   /* accepts, never runs */
    split_request *x = request(f, "split-x", 0, false), *y = request(f, "split-y", 1, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    free(st);
    splitter_free(a);                /* the agent dies holding the lease */
    a = agent(f, false);
    TU_RC(SHALE_CONFLICT, submit(a, y, &created, &st));
    expect_in(shale_errmsg(), "being split by split-x");
    lease_view v = sf_lease_read(f->parent);
    assert_true(v.held);
    assert_string_equal(v.holder, "split-x");
    TU_OK(splitter_start(a));
    TU_OK(splitter_wait_idle(a, 60000));
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    expect_in(st, "\"state\": \"Released\"");
    free(st);
    assert_false(sf_lease_read(f->parent).held);
    /* Free again: the next split of the shard is taken. */
    TU_OK(submit(a, y, &created, &st));
    assert_true(created);
    free(st);
    splitter_free(a);
    split_request_free(x);
    split_request_free(y);
    fx_free(f);
}

static void test_same_request_to_another_agent_returns_status(void **state)
{
    (void)state;
    fx *f = fx_new(false);
    splitter *a = agent(f, false), *b = agent(f, false);
    split_request *x = request(f, "split-x", 0, false), *x2 = request(f, "split-x", 1, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    assert_true(created);
    free(st);
    TU_OK(submit(b, x, &created, &st));       /* the same request, elsewhere */
    assert_false(created);
    expect_in(st, "\"name\": \"split-x\"");
    /* Journal version 1 records the accept and Fence Running (docs/agent.md
     * "Journal"): read from the store, the split is Fencing. */
    expect_in(st, "\"phase\": \"Fencing\"");
    free(st);
    TU_RC(SHALE_CONFLICT, submit(b, x2, &created, &st));  /* same name, other children */
    expect_in(shale_errmsg(), "different request");
    TU_OK(splitter_start(a));
    TU_OK(splitter_start(b));
    TU_OK(splitter_wait_idle(a, 60000));
    TU_OK(splitter_wait_idle(b, 60000));
    st = status(b, "split-x");                /* read from the journal in the store */
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    TU_OK(submit(b, x, &created, &st));       /* and again after the end */
    assert_false(created);
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    splitter_free(a);
    splitter_free(b);
    split_request_free(x);
    split_request_free(x2);
    fx_free(f);
}

/* Journal version 1 cannot be written at Accept (after_effect: it landed,
 * but the agent saw an error; or it did not land): the lease stays with the
 * split, another split is refused, and re-sending the request finishes the
 * accept.  Never two splits, never a split stuck without its journal. */
static void accept_write_fails(bool landed)
{
    fx *f = fx_new(true);
    shale_fault *ctl = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(ctl);
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_PUT_IF_ABSENT), "splits/split-x/", 1, 1,
                             SHALE_IO, landed, 0, 0};
    TU_OK(shale_fault_add(ctl, &rule, NULL));
    splitter *a = agent(f, true);
    split_request *x = request(f, "split-x", 0, false), *y = request(f, "split-y", 1, false);
    bool created;
    char *st = NULL;
    TU_RC(SHALE_IO, submit(a, x, &created, &st));
    expect_in(shale_errmsg(), "re-send the request");
    assert_int_equal(shale_fault_injected(ctl), 1);
    TU_RC(SHALE_CONFLICT, submit(a, y, &created, &st));
    expect_in(shale_errmsg(), "being split by split-x");
    TU_OK(submit(a, x, &created, &st));       /* re-sent */
    free(st);
    TU_OK(splitter_wait_idle(a, 60000));
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    assert_false(sf_lease_read(f->parent).held);
    shale_fault_clear(ctl);
    splitter_free(a);
    split_request_free(x);
    split_request_free(y);
    fx_free(f);
}

static void test_accept_journal_write_fails(void **state)
{
    (void)state;
    accept_write_fails(false);
}

static void test_accept_journal_write_lands_but_fails(void **state)
{
    (void)state;
    accept_write_fails(true);
}

/* ---- journals at start ---------------------------------------------------------- */

static void put_object(fx *f, const char *key, const char *text)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    TU_OK(shale_objstore_put(s, key, text, strlen(text)));
    shale_objstore_close(s);
}

/* A journal that does not decode: reported by name, left in place, new
 * splits refused until `--clear-journal` (splitter_clear_journal). */
static void test_corrupt_journal_blocks_until_cleared(void **state)
{
    (void)state;
    fx *f = fx_new(false);
    put_object(f, "splits/broken/00000000000000000003.json", "{\"phase\": [");
    splitter *a = agent(f, true);
    char *st = status(a, "broken");
    expect_in(st, "\"reason\": \"JournalCorrupt\"");
    free(st);
    split_request *y = request(f, "split-y", 1, false);
    bool created;
    TU_RC(SHALE_CONFLICT, submit(a, y, &created, &st));
    expect_in(shale_errmsg(), "journal of split broken is corrupt");
    splitter_stats ss;
    splitter_get_stats(a, &ss);
    assert_int_equal(ss.journals_corrupt, 1);
    splitter_free(a);
    splitter_options so;
    splitter_options_init(&so);
    so.shard = "orders-0";
    so.store_uri = f->parent;
    TU_OK(splitter_clear_journal(&so, "broken"));
    a = agent(f, true);
    st = status(a, "broken");
    expect_in(st, "\"reason\": \"ClearedByOperator\"");
    expect_in(st, "\"phase\": \"Failed\"");
    free(st);
    TU_OK(submit(a, y, &created, &st));
    assert_true(created);
    free(st);
    TU_OK(splitter_wait_idle(a, 60000));
    st = status(a, "split-y");
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    /* The bad version is still there, under the operator's. */
    shale_objstore *s = NULL;
    void *data = NULL;
    size_t len;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    TU_OK(shale_objstore_get(s, "splits/broken/00000000000000000003.json", &data, &len));
    free(data);
    shale_objstore_close(s);
    splitter_free(a);
    split_request_free(y);
    fx_free(f);
}

/* A journal version newer than this agent reads is refused by name. */
static void test_newer_journal_format_is_refused(void **state)
{
    (void)state;
    split_state *s = NULL;
    const char *doc = "{\"format\": 99, \"name\": \"x\"}";
    TU_RC(SHALE_UNSUPPORTED, journal_decode("splits/x/1", doc, strlen(doc), &s));
    expect_in(shale_errmsg(), "format 99");
    assert_null(s);
}

/* A format-1 journal (steps positional, phase "Complete" while the
 * Complete step ran: the agent was killed during it) resumes, re-runs
 * Complete and gets its completion time. */
static void test_format1_journal_killed_in_complete_finishes(void **state)
{
    (void)state;
    fx *f = fx_new(false);
    splitter *a = agent(f, false);
    split_request *x = request(f, "split-x", 0, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    free(st);
    TU_OK(splitter_start(a));
    TU_OK(splitter_wait_idle(a, 60000));
    splitter_free(a);
    /* Rewrite its history as a format-1 agent killed in Complete would
     * have left it: a new version with Complete Running, phase Complete,
     * no completion time, and no lease (leases came with format 2). */
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    uint64_t v = 0;
    split_state *old = NULL;
    TU_OK(journal_load(s, "split-x", &v, &old));
    const char *cp = old->checkpoint_id;
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "{\"name\": \"split-x\", \"uid\": \"split-x\", \"shard\": \"orders-0\", "
                     "\"phase\": \"Complete\", \"dryRun\": false, \"message\": \"\", "
                     "\"reason\": \"\", \"checkpointId\": \"%s\", \"replayAfterWalId\": %llu, "
                     "\"startTime\": \"2026-01-01T00:00:00.000Z\", \"completionTime\": null, "
                     "\"journalVersion\": %llu, \"steps\": [",
                     cp, (unsigned long long)old->replay_after_wal_id,
                     (unsigned long long)v + 1);
    for (int i = 0; i < STEP_COUNT; i++)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "%s{\"name\": \"%s\", \"state\": \"%s\", \"startTime\": "
                      "\"2026-01-01T00:00:00.000Z\", \"endTime\": null, \"message\": \"\"}",
                      i ? ", " : "", split_step_name((split_step)i),
                      i == STEP_COMPLETE ? "Running" : "Done");
    n += snprintf(text + n, sizeof text - (size_t)n, "], \"children\": [], \"request\": %s}",
                  old->request_json);
    char key[128];
    snprintf(key, sizeof key, "splits/split-x/%020llu.json", (unsigned long long)v + 1);
    TU_OK(shale_objstore_put_if_absent(s, key, text, (size_t)n));
    split_state_free(old);
    shale_objstore_close(s);
    a = agent(f, true);
    TU_OK(splitter_wait_idle(a, 60000));
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    expect_in(st, "\"completionTime\": \"2");
    free(st);
    splitter_free(a);
    split_request_free(x);
    fx_free(f);
}

/* The journal list (list_fails) or the split's journal itself cannot be
 * read at start: the split is not dropped, new splits are refused
 * meanwhile, and it resumes once the store answers. */
static void unreadable_at_start(bool list_fails)
{
    fx *f = fx_new(true);
    splitter *a = agent(f, false);
    split_request *x = request(f, "split-x", 0, false), *y = request(f, "split-y", 1, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    free(st);
    splitter_free(a);
    shale_fault *ctl = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(ctl);
    shale_fault_rule rule = {SHALE_FAULT_OP(list_fails ? SHALE_OP_LIST : SHALE_OP_GET),
                             list_fails ? "splits/" : "splits/split-x/", 0, 3, SHALE_IO, false,
                             0, 0};
    TU_OK(shale_fault_add(ctl, &rule, NULL));
    a = agent(f, false);
    if (!list_fails) {
        st = status(a, "split-x");
        expect_in(st, "\"reason\": \"JournalUnreadable\"");
        free(st);
    }
    TU_RC(SHALE_RETRYABLE, submit(a, y, &created, &st));
    expect_in(shale_errmsg(), "could not all be read yet");
    TU_OK(splitter_start(a));
    TU_OK(splitter_wait_idle(a, 60000));
    assert_true(shale_fault_injected(ctl) >= 1);
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    shale_fault_clear(ctl);
    splitter_free(a);
    split_request_free(x);
    split_request_free(y);
    fx_free(f);
}

static void test_unreadable_journal_list_is_resumed_later(void **state)
{
    (void)state;
    unreadable_at_start(true);
}

static void test_unreadable_journal_is_resumed_later(void **state)
{
    (void)state;
    unreadable_at_start(false);
}

/* ---- Stalled -------------------------------------------------------------------- */

typedef struct watcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* signalled when Stalled is first seen */
    bool forever;            /* the fault lasts until the test clears it */
    bool stalled, verify_failed, stalled_fields, retried_twice;
    fx *f;
    shale_fault *ctl;
    bool armed;
} watcher;

static void on_status(void *ctx, const char *name, const char *json)
{
    (void)name;
    watcher *w = ctx;
    pthread_mutex_lock(&w->mu);
    if (strstr(json, "\"phase\": \"Stalled\"")) {
        w->stalled = true;
        pthread_cond_broadcast(&w->cv);
        if (strstr(json, "\"step\": \"Verify\"") && strstr(json, "\"nextRetryTime\": \"2") &&
            strstr(json, "\"retries\": ") && strstr(json, "\"error\": \"I/O"))
            w->stalled_fields = true;
        if (strstr(json, "\"retries\": 2"))
            w->retried_twice = true;
    }
    if (strstr(json, "VerifyFailed"))
        w->verify_failed = true;
    pthread_mutex_unlock(&w->mu);
}

/* After Clone, the SST reads (the children's SSTs are the parent's
 * objects) fail for a while, in the middle of Verify's scans. */
static void arm_after_clone(void *ctx, const char *step, double secs)
{
    (void)secs;
    watcher *w = ctx;
    if (strcmp(step, "Clone") || w->armed)
        return;
    w->armed = true;
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_GET_RANGE), "compacted/", 0,
                             w->forever ? 0 : 6, SHALE_IO, false, 0, 0};   /* the next 6 reads */
    shale_fault_add(w->ctl, &rule, NULL);
}

static void test_verify_read_errors_stall_then_complete(void **state)
{
    (void)state;
    fx *f = fx_new(true);
    watcher w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false, false,
                 false, f, NULL, false};
    w.ctl = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(w.ctl);
    splitter *a = agent(f, false);
    TU_OK(splitter_add_listener(a, on_status, &w));
    splitter_on_step(a, arm_after_clone, &w);
    TU_OK(splitter_start(a));
    split_request *x = request(f, "split-x", 0, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    free(st);
    TU_OK(splitter_wait_idle(a, 60000));
    assert_true(w.armed);
    assert_true(shale_fault_injected(w.ctl) >= 1);
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    assert_true(w.stalled);
    assert_true(w.stalled_fields);
    assert_true(w.retried_twice);   /* kept failing, kept being retried */
    assert_false(w.verify_failed);
    splitter_stats ss;
    splitter_get_stats(a, &ss);
    assert_true(ss.retries >= 1);
    assert_int_equal(ss.stalled, 0);
    shale_fault_clear(w.ctl);
    splitter_free(a);
    split_request_free(x);
    fx_free(f);
}

/* While Stalled the agent answers: status shows the stall, another split
 * is refused naming this one, an abort is refused (past the point of no
 * return), the metrics show it; once the store heals the split completes. */
static void test_stalled_splitter_stays_responsive(void **state)
{
    (void)state;
    fx *f = fx_new(true);
    watcher w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, true, false, false, false,
                 false, f, NULL, false};
    w.ctl = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(w.ctl);
    splitter *a = agent(f, false);
    TU_OK(splitter_add_listener(a, on_status, &w));
    splitter_on_step(a, arm_after_clone, &w);
    TU_OK(splitter_start(a));
    split_request *x = request(f, "split-x", 0, false), *y = request(f, "split-y", 1, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    free(st);
    pthread_mutex_lock(&w.mu);
    while (!w.stalled)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Stalled\"");
    expect_in(st, "\"step\": \"Verify\"");
    free(st);
    TU_RC(SHALE_CONFLICT, submit(a, y, &created, &st));
    expect_in(shale_errmsg(), "being split by split-x");
    split_service *svc = splitter_service(a);
    TU_RC(SHALE_CONFLICT, svc->ops->abort(svc, "split-x", &st));
    expect_in(shale_errmsg(), "point of no return");
    char *m = metrics_render(a);
    expect_in(m, "shale_split_stalled 1");
    expect_in(m, "shale_split_refused_total 1");
    free(m);
    shale_fault_clear(w.ctl);      /* the store heals */
    TU_OK(splitter_wait_idle(a, 60000));
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    free(st);
    m = metrics_render(a);
    expect_in(m, "shale_split_stalled 0");
    free(m);
    assert_false(w.verify_failed);
    splitter_free(a);
    split_request_free(x);
    split_request_free(y);
    fx_free(f);
}

/* The agent stops while a step is Stalled (the journal's newest version
 * records the stall); restarted after the store healed, it resumes the
 * step and completes, the stall cleared. */
static void test_stalled_split_resumes_after_restart(void **state)
{
    (void)state;
    fx *f = fx_new(true);
    watcher w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, true, false, false, false,
                 false, f, NULL, false};
    w.ctl = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(w.ctl);
    splitter *a = agent(f, false);
    TU_OK(splitter_add_listener(a, on_status, &w));
    splitter_on_step(a, arm_after_clone, &w);
    TU_OK(splitter_start(a));
    split_request *x = request(f, "split-x", 0, false);
    bool created;
    char *st = NULL;
    TU_OK(submit(a, x, &created, &st));
    free(st);
    pthread_mutex_lock(&w.mu);
    while (!w.stalled)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    splitter_free(a);                /* stops mid-retry */
    shale_fault_clear(w.ctl);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    uint64_t v;
    split_state *js = NULL;
    TU_OK(journal_load(s, "split-x", &v, &js));
    assert_int_equal(js->phase, PHASE_STALLED);
    assert_true(js->stalled.on);
    assert_int_equal(js->stalled.step, STEP_VERIFY);
    assert_int_equal(js->steps[STEP_VERIFY].state, STEP_RUNNING);
    split_state_free(js);
    shale_objstore_close(s);
    a = agent(f, true);
    TU_OK(splitter_wait_idle(a, 60000));
    st = status(a, "split-x");
    expect_in(st, "\"phase\": \"Complete\"");
    assert_null(strstr(st, "\"stalled\""));
    free(st);
    assert_false(sf_lease_read(f->parent).held);
    splitter_free(a);
    split_request_free(x);
    fx_free(f);
}

/* ---- dry runs ------------------------------------------------------------------- */

static int64_t g_now;
static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return g_now;
}

static void test_dry_runs_expire(void **state)
{
    (void)state;
    fx *f = fx_new(false);
    splitter_options so;
    splitter_options_init(&so);
    so.shard = "orders-0";
    so.store_uri = f->parent;
    so.wal_store_uri = f->wal;
    so.db = f->o;
    so.db.wal_store_uri = NULL;
    so.dry_run_keep = 3;
    so.dry_run_max_age_s = 60;
    so.clock_ms = fake_clock;
    g_now = 1000000;
    splitter *a = NULL;
    TU_OK(splitter_new(&so, &a));
    TU_OK(splitter_start(a));
    split_service *svc = splitter_service(a);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "dry-%d", i);
        split_request *r = request(f, name, 0, true);
        bool created;
        char *st = NULL;
        TU_OK(submit(a, r, &created, &st));
        free(st);
        split_request_free(r);
        TU_OK(splitter_wait_idle(a, 60000));
        g_now += 1000;
    }
    /* Count bound: the newest three of five kept (the fifth's submit
     * pruned down to three finished ones plus itself). */
    char *st = NULL;
    TU_RC(SHALE_NOT_FOUND, svc->ops->get(svc, "dry-0", &st));
    st = status(a, "dry-4");
    expect_in(st, "\"DryRun\"");
    free(st);
    /* Age bound: a minute later every finished dry run is gone. */
    g_now += 61 * 1000;
    char *list = NULL;
    TU_OK(svc->ops->list(svc, &list));
    assert_null(strstr(list, "dry-"));
    free(list);
    splitter_free(a);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_agents_race_one_wins),
        cmocka_unit_test(test_two_sources_race_one_wins),
        cmocka_unit_test(test_two_agents_race_with_kept_range),
        cmocka_unit_test(test_two_sources_race_with_kept_range),
        cmocka_unit_test(test_restarted_agent_keeps_refusing),
        cmocka_unit_test(test_same_request_to_another_agent_returns_status),
        cmocka_unit_test(test_accept_journal_write_fails),
        cmocka_unit_test(test_accept_journal_write_lands_but_fails),
        cmocka_unit_test(test_corrupt_journal_blocks_until_cleared),
        cmocka_unit_test(test_newer_journal_format_is_refused),
        cmocka_unit_test(test_format1_journal_killed_in_complete_finishes),
        cmocka_unit_test(test_unreadable_journal_list_is_resumed_later),
        cmocka_unit_test(test_unreadable_journal_is_resumed_later),
        cmocka_unit_test(test_verify_read_errors_stall_then_complete),
        cmocka_unit_test(test_stalled_splitter_stays_responsive),
        cmocka_unit_test(test_stalled_split_resumes_after_restart),
        cmocka_unit_test(test_dry_runs_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
