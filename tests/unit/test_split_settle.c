/*
 * test_split_settle.c -- what a finished split owes after its terminal
 * journal write (split_settle.c): the release of its checkpoint and of the
 * shard's split lease, made after the split is journalled Complete and
 * recorded by one more journal version.  An agent killed anywhere after
 * the terminal write leaves them owed; a restarted agent settles them
 * without running a step again.  The agent kill matrix
 * (tests/integration/agent_kill_matrix.sh) kills a real agent at each
 * journal version; this suite rebuilds the journal states those kills
 * leave, including the previous agent's (Complete Running), and checks
 * the store after the restart.  And the release this process wrote is the
 * next take's hint: the next split lists neither the lease nor its
 * journal.
 */
#include "support/dbtest.h"
#include "splitter.h"
#include "request.h"
#include "journal.h"
#include "lease.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx {
    char *dir, *parent, *wal, *kid[2], *kidwal[2];
    shale_options o;
    unsigned n;
} fx;

static fx *fx_new(void)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("settle");
    f->parent = tu_file_uri(f->dir, "parent");
    f->wal = tu_file_uri(f->dir, "local-wal");
    for (int c = 0; c < 2; c++) {
        char sub[32];
        snprintf(sub, sizeof sub, "child%d", c);
        f->kid[c] = tu_file_uri(f->dir, sub);
        snprintf(sub, sizeof sub, "child%d-wal", c);
        f->kidwal[c] = tu_file_uri(f->dir, sub);
    }
    dt_small_options(&f->o);
    f->o.wal_store_uri = f->wal;
    f->n = 300;
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &f->o, &db));
    for (unsigned i = 0; i < f->n; i++)
        dt_put(db, i, 1);
    TU_OK(shale_close(db));
    return f;
}

static void fx_free(fx *f)
{
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->wal);
    for (int c = 0; c < 2; c++) {
        free(f->kid[c]);
        free(f->kidwal[c]);
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
    so.policy.allow_test_schemes = true;   /* a fault+ parent (below) */
    so.retry_base_ms = 5;
    so.retry_max_ms = 40;
    splitter *sp = NULL;
    TU_OK(splitter_new(&so, &sp));
    if (start)
        TU_OK(splitter_start(sp));
    return sp;
}

static split_request *request(fx *f, const char *name)
{
    char text[2048], cut[32];
    dt_key(cut, sizeof cut, f->n / 2);
    int n = snprintf(text, sizeof text,
                     "name: %s\nparent: {shard: orders-0}\nchildren:\n"
                     "  - {name: a, store: \"%s\", walStore: \"%s\", range: {start: \"\", "
                     "end: \"%s\"}}\n"
                     "  - {name: b, store: \"%s\", walStore: \"%s\", range: {start: \"%s\", "
                     "end: \"\"}}\n",
                     name, f->kid[0], f->kidwal[0], cut, f->kid[1], f->kidwal[1], cut);
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, (size_t)n, &r));
    return r;
}

static bool has_checkpoint(fx *f, const char *id)
{
    shale_options po = f->o;
    shale_checkpoint *cps = NULL;
    size_t ncp = 0;
    TU_OK(shale_checkpoint_list(f->parent, &po, &cps, &ncp));
    bool found = false;
    for (size_t i = 0; i < ncp; i++)
        found = found || !strcmp(cps[i].id, id);
    shale_free(cps);
    return found;
}

/* A split run to Complete here; the journal, the lease and the parent are
 * then put back as a kill after the terminal write leaves them: a
 * checkpoint of the split's name on the parent, the lease taken anew for
 * the split, and a journal version that owes both releases -- this
 * agent's (Verify Done and Complete Done, checkpointReleaseOwed) or, with
 * owed false, the previous agent's killed in Complete (Verify Done,
 * Complete Running, phase Completing, no such field).  A restarted agent
 * must release both and journal it. */
static void killed_after_verify_done(bool owed)
{
    fx *f = fx_new();
    splitter *a = agent(f, true);
    split_request *x = request(f, "split-x");
    split_service *svc = splitter_service(a);
    bool created;
    char *st = NULL;
    TU_OK(svc->ops->submit(svc, x, &created, &st));
    free(st);
    TU_OK(splitter_wait_idle(a, 60000));
    splitter_free(a);
    shale_db *db = NULL;
    shale_options po = f->o;
    TU_OK(shale_open(f->parent, &po, &db));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "split:split-x", &cp));
    TU_OK(shale_close(db));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    uint64_t v = 0, seq = 0;
    split_state *js = NULL;
    TU_OK(journal_load(s, "split-x", &v, &js));
    assert_int_equal(js->phase, PHASE_COMPLETE);
    assert_false(js->checkpoint_owed);   /* released and journalled by the run */
    bool fresh = false;
    char holder[256];
    TU_OK(lease_take(s, "orders-0", "split-x", js->request_json, &seq, &fresh, holder,
                     sizeof holder));
    assert_true(fresh);
    snprintf(js->checkpoint_id, sizeof js->checkpoint_id, "%s", cp.id);
    js->lease.state = LEASE_HELD;
    js->lease.seq = seq;
    js->lease.release_seq = 0;
    js->checkpoint_owed = owed;
    if (!owed) {
        js->phase = PHASE_COMPLETING;
        js->completion_ms = 0;
        js->steps[STEP_COMPLETE].state = STEP_RUNNING;
    }
    TU_OK(journal_save(s, js));
    split_state_free(js);
    /* The field goes through the journal and back. */
    TU_OK(journal_load(s, "split-x", &v, &js));
    assert_int_equal(js->checkpoint_owed, owed);
    assert_int_equal(js->phase, owed ? PHASE_COMPLETE : PHASE_COMPLETING);
    split_state_free(js);
    assert_true(has_checkpoint(f, cp.id));
    a = agent(f, true);
    TU_OK(splitter_wait_idle(a, 60000));
    svc = splitter_service(a);
    TU_OK(svc->ops->get(svc, "split-x", &st));
    if (!strstr(st, "\"phase\": \"Complete\""))
        fail_msg("not Complete:\n%s", st);
    free(st);
    splitter_free(a);
    if (has_checkpoint(f, cp.id))
        fail_msg("the split's checkpoint %s is still on the parent", cp.id);
    lease_view lv;
    TU_OK(lease_read(s, &lv));
    assert_false(lv.held);
    assert_int_equal(lv.top, seq + 1);
    lease_view_free(&lv);
    TU_OK(journal_load(s, "split-x", &v, &js));
    assert_false(js->checkpoint_owed);
    assert_int_equal(js->phase, PHASE_COMPLETE);
    assert_int_equal(js->steps[STEP_COMPLETE].state, STEP_DONE);
    assert_int_equal(js->lease.state, LEASE_RELEASED);
    assert_int_equal(js->lease.release_seq, seq + 1);
    split_state_free(js);
    shale_objstore_close(s);
    split_request_free(x);
    fx_free(f);
}

static void test_killed_after_complete_journalled_settles(void **state)
{
    (void)state;
    killed_after_verify_done(true);
}

static void test_previous_agent_killed_in_complete_finishes(void **state)
{
    (void)state;
    killed_after_verify_done(false);
}

/* The journal of a split run here: version 1 records Fence and FullFlush
 * Running, version 2 both Done (and WipeLocalWAL Running); one version
 * records Verify Done and Complete Done (with the checkpoint's release
 * owed), the next the releases; none has Complete Running. */
static void test_verify_and_complete_done_in_one_version(void **state)
{
    (void)state;
    fx *f = fx_new();
    splitter *a = agent(f, true);
    split_request *x = request(f, "split-y");
    split_service *svc = splitter_service(a);
    bool created;
    char *st = NULL;
    TU_OK(svc->ops->submit(svc, x, &created, &st));
    free(st);
    TU_OK(splitter_wait_idle(a, 60000));
    splitter_free(a);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    uint64_t newest = 0;
    split_state *js = NULL;
    TU_OK(journal_load(s, "split-y", &newest, &js));
    split_state_free(js);
    for (uint64_t v = 1; v <= newest; v++) {
        char key[128];
        snprintf(key, sizeof key, "splits/split-y/%020llu.json", (unsigned long long)v);
        void *data = NULL;
        size_t len = 0;
        TU_OK(shale_objstore_get(s, key, &data, &len));
        TU_OK(journal_decode(key, data, len, &js));
        if (v == 1) {
            /* Version 1 journals FullFlush Running ahead, with Fence (a
             * resumed FullFlush fences again); read back, a step after an
             * unfinished one shows Pending. */
            json_error_t jerr;
            json_t *doc = json_loadb(data, len, 0, &jerr);
            assert_non_null(doc);
            json_t *ff = json_object_get(json_object_get(doc, "steps"), "FullFlush");
            assert_string_equal(json_string_value(json_object_get(ff, "state")), "Running");
            json_decref(doc);
            assert_int_equal(js->steps[STEP_FENCE].state, STEP_RUNNING);
            assert_int_equal(js->steps[STEP_FULL_FLUSH].state, STEP_PENDING);
        }
        if (v == 2) {   /* Fence's Done went out with FullFlush's */
            assert_int_equal(js->steps[STEP_FENCE].state, STEP_DONE);
            assert_int_equal(js->steps[STEP_FULL_FLUSH].state, STEP_DONE);
            assert_int_equal(js->steps[STEP_WIPE_WAL].state, STEP_RUNNING);
        }
        shale_free(data);
        assert_int_not_equal(js->steps[STEP_COMPLETE].state, STEP_RUNNING);
        if (v == newest - 1) {
            assert_int_equal(js->steps[STEP_VERIFY].state, STEP_DONE);
            assert_int_equal(js->steps[STEP_COMPLETE].state, STEP_DONE);
            assert_int_equal(js->phase, PHASE_COMPLETE);
            assert_true(js->checkpoint_owed);
            assert_int_equal(js->lease.state, LEASE_HELD);
        } else if (v == newest) {
            assert_false(js->checkpoint_owed);
            assert_int_equal(js->lease.state, LEASE_RELEASED);
        } else {
            assert_int_not_equal(js->steps[STEP_VERIFY].state, STEP_DONE);
        }
        split_state_free(js);
    }
    shale_objstore_close(s);
    split_request_free(x);
    fx_free(f);
}

/* checkpointReleaseOwed is a boolean or absent (a journal of an agent
 * before it owes none); anything else is a corrupt journal naming it. */
static void test_owed_field_decodes(void **state)
{
    (void)state;
    const char *base = "{\"format\": 2, \"journalVersion\": 5, \"name\": \"x\", "
                       "\"shard\": \"s\", \"phase\": \"Complete\", "
                       "\"checkpointId\": \"01ABC\"%s, \"steps\": {\"Complete\": "
                       "{\"state\": \"Done\"}}}";
    char doc[512];
    split_state *js = NULL;
    snprintf(doc, sizeof doc, base, ", \"checkpointReleaseOwed\": true");
    TU_OK(journal_decode("t", doc, strlen(doc), &js));
    assert_true(js->checkpoint_owed);
    char *text = NULL;
    TU_OK(journal_encode(js, &text));
    assert_non_null(strstr(text, "\"checkpointReleaseOwed\": true"));
    free(text);
    js->checkpoint_owed = false;
    TU_OK(journal_encode(js, &text));
    assert_null(strstr(text, "checkpointReleaseOwed"));
    free(text);
    split_state_free(js);
    snprintf(doc, sizeof doc, base, "");
    TU_OK(journal_decode("t", doc, strlen(doc), &js));
    assert_false(js->checkpoint_owed);
    split_state_free(js);
    snprintf(doc, sizeof doc, base, ", \"checkpointReleaseOwed\": \"yes\"");
    TU_RC(SHALE_CORRUPT, journal_decode("t", doc, strlen(doc), &js));
    assert_non_null(strstr(shale_errmsg(), "checkpointReleaseOwed"));
}

/* The lease's release as the next take's hint (splitter.lease_free_top):
 * after split-b (aborted, its lease released by this process), every LIST
 * of the split lease and of split-c's journal fails, and split-c is
 * accepted and completes all the same -- the submit asks for its
 * journal's version 1 by a HEAD and takes the lease after the release it
 * wrote, listing neither (both were LISTs before 2026-12-02: the submit
 * was refused here then). */
static void test_next_split_lists_no_lease_nor_journal(void **state)
{
    (void)state;
    fx *f = fx_new();
    char *u = tu_fault_uri(f->parent);
    free(f->parent);
    f->parent = u;
    splitter *a = agent(f, false);   /* not started: the abort wins */
    split_service *svc = splitter_service(a);
    split_request *b = request(f, "split-b");
    bool created;
    char *st = NULL;
    TU_OK(svc->ops->submit(svc, b, &created, &st));
    assert_true(created);
    free(st);
    TU_OK(svc->ops->abort(svc, "split-b", &st));
    free(st);
    TU_OK(splitter_start(a));
    TU_OK(splitter_wait_idle(a, 60000));
    TU_OK(svc->ops->get(svc, "split-b", &st));
    assert_non_null(strstr(st, "\"phase\": \"Aborted\""));
    free(st);
    shale_fault *ctl = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(ctl);
    shale_fault_rule lease = {SHALE_FAULT_OP(SHALE_OP_LIST), "splits/_lease/", 0, 0, SHALE_IO,
                              false, 0, 0};
    shale_fault_rule journal = {SHALE_FAULT_OP(SHALE_OP_LIST), "splits/split-c/", 0, 0,
                                SHALE_IO, false, 0, 0};
    TU_OK(shale_fault_add(ctl, &lease, NULL));
    TU_OK(shale_fault_add(ctl, &journal, NULL));
    split_request *c = request(f, "split-c");
    TU_OK(svc->ops->submit(svc, c, &created, &st));
    assert_true(created);
    free(st);
    TU_OK(splitter_wait_idle(a, 60000));
    assert_int_equal(shale_fault_injected(ctl), 0);   /* neither was listed */
    TU_OK(svc->ops->get(svc, "split-c", &st));
    if (!strstr(st, "\"phase\": \"Complete\""))
        fail_msg("not Complete:\n%s", st);
    /* taken right after split-b's release (seq 2), released after it */
    assert_non_null(strstr(st, "00000000000000000003.json"));
    free(st);
    shale_fault_clear(ctl);
    splitter_free(a);
    split_request_free(b);
    split_request_free(c);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owed_field_decodes),
        cmocka_unit_test(test_verify_and_complete_done_in_one_version),
        cmocka_unit_test(test_killed_after_complete_journalled_settles),
        cmocka_unit_test(test_previous_agent_killed_in_complete_finishes),
        cmocka_unit_test(test_next_split_lists_no_lease_nor_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
