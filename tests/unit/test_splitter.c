/*
 * test_splitter.c -- the split state machine through its service API, on
 * file:// stores with a separate local WAL store: N-way splits that
 * partition the parent, fencing of the serving writer, repeat/conflict
 * rules, abort, dry run, bad requests.
 */
#include "support/dbtest.h"
#include "splitter.h"
#include "request.h"
#include "db/checkpoint_int.h"
#include "db/manifest.h"
#include "db/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx {
    char *dir, *parent, *wal;
    char *kid[4], *kidwal[4];
    shale_options o;
    splitter *sp;
    unsigned n;
} fx;

/* fault_wal: the local WAL store behind a fault+ URI (rules added by the
 * test through shale_fault_for_uri). */
static int setup_with(void **state, bool fault_wal)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("splitter");
    f->parent = tu_file_uri(f->dir, "parent");
    f->wal = tu_file_uri(f->dir, "local-wal");
    if (fault_wal) {
        char *u = tu_fault_uri(f->wal);
        free(f->wal);
        f->wal = u;
    }
    for (int i = 0; i < 4; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "child%d", i);
        f->kid[i] = tu_file_uri(f->dir, sub);
        snprintf(sub, sizeof sub, "child%d-wal", i);
        f->kidwal[i] = tu_file_uri(f->dir, sub);
    }
    dt_small_options(&f->o);
    f->o.wal_store_uri = f->wal;
    f->n = tu_quick() ? 600 : 3000;
    shale_db *db = NULL;
    assert_int_equal(shale_open(f->parent, &f->o, &db), SHALE_OK);
    for (unsigned i = 0; i < f->n; i++)
        dt_put(db, i, 1 + i % 3);
    TU_OK(shale_close(db));  /* much of it only in the WAL */
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false);
}

static int setup_fault_wal(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    fx *f = *state;
    splitter_free(f->sp);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->wal);
    for (int i = 0; i < 4; i++) {
        free(f->kid[i]);
        free(f->kidwal[i]);
    }
    free(f);
    return 0;
}

static void new_splitter_v(fx *f, bool start, split_verify verify)
{
    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;   /* mem:// and fault+ children (tests) */
    if (verify != SPLIT_VERIFY_DEFAULT)
        so.verify = verify;
    so.shard = "orders-0";
    so.store_uri = f->parent;
    so.wal_store_uri = f->wal;
    so.db = f->o;
    so.db.wal_store_uri = NULL;
    TU_OK(splitter_new(&so, &f->sp));
    if (start)
        TU_OK(splitter_start(f->sp));
}

static void new_splitter(fx *f, bool start)
{
    new_splitter_v(f, start, SPLIT_VERIFY_DEFAULT);
}

/* A request splitting at the given key indexes (k boundaries -> k+1 kids);
 * verify: the request's verify mode, NULL to leave it to the agent. */
static split_request *request_v(fx *f, const char *name, const unsigned *cuts, int ncuts,
                                bool dry, const char *verify)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "name: %s\nparent:\n  shard: orders-0\ndryRun: %s\n%s%s%s"
                                "children:\n", name, dry ? "true" : "false",
                                verify ? "verify: " : "", verify ? verify : "",
                                verify ? "\n" : "");
    for (int i = 0; i <= ncuts; i++) {
        char lo[32] = "", hi[32] = "";
        if (i > 0)
            dt_key(lo, sizeof lo, cuts[i - 1]);
        if (i < ncuts)
            dt_key(hi, sizeof hi, cuts[i]);
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "  - name: kid-%d\n    store: %s\n    walStore: %s\n"
                              "    range: {start: \"%s\", end: \"%s\"}\n",
                              i, f->kid[i], f->kidwal[i], lo, hi);
    }
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, n, &r));
    return r;
}

static split_request *request(fx *f, const char *name, const unsigned *cuts, int ncuts,
                              bool dry)
{
    return request_v(f, name, cuts, ncuts, dry, NULL);
}

static char *submit(fx *f, split_request *r, bool *created)
{
    char *status = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->submit(svc, r, created, &status));
    return status;
}

static void expect_phase(const char *status, const char *phase)
{
    char want[64];
    snprintf(want, sizeof want, "\"phase\": \"%s\"", phase);
    if (!strstr(status, want))
        fail_msg("status is not %s:\n%s", phase, status);
}

static char *get_status(fx *f, const char *name)
{
    char *s = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->get(svc, name, &s));
    return s;
}

/* Every child holds exactly the parent's keys of its range. */
static void check_children(fx *f, const unsigned *cuts, int ncuts)
{
    uint64_t total = 0;
    for (int c = 0; c <= ncuts; c++) {
        shale_options o = f->o;
        o.wal_store_uri = f->kidwal[c];
        shale_reader *r = NULL;
        TU_OK(shale_reader_open(f->kid[c], &o, NULL, &r));
        unsigned lo = c ? cuts[c - 1] : 0, hi = c < ncuts ? cuts[c] : f->n;
        for (unsigned i = 0; i < f->n; i += 7)
            dt_expect_reader(r, i, i >= lo && i < hi ? 1 + i % 3 : 0);
        uint64_t cnt = 0;
        TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &cnt));
        assert_int_equal(cnt, hi - lo);
        total += cnt;
        shale_reader_close(r);
    }
    assert_int_equal(total, f->n);
}

static void test_three_way_split_partitions_parent(void **state)
{
    fx *f = *state;
    shale_db *serving = NULL;                /* the shard's serving writer */
    TU_OK(shale_open(f->parent, &f->o, &serving));
    dt_put(serving, 1, 2);                   /* acknowledged before the split */
    new_splitter(f, true);
    unsigned cuts[] = {f->n / 3, 2 * f->n / 3};
    split_request *r = request(f, "split-a", cuts, 2, false);
    bool created = false;
    char *st = submit(f, r, &created);
    assert_true(created);
    free(st);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = get_status(f, "split-a");
    expect_phase(st, "Complete");
    assert_non_null(strstr(st, "\"checkpointId\""));
    free(st);
    /* The serving writer was fenced: its writes fail, none is lost. */
    char k[32];
    size_t kl = dt_key(k, sizeof k, 5);
    TU_RC(SHALE_FENCED, shale_put(serving, k, kl, "late", 4));
    shale_close(serving);
    check_children(f, cuts, 2);
    /* Same request again: no-op; same name, other content: conflict. */
    created = true;
    st = submit(f, r, &created);
    assert_false(created);
    expect_phase(st, "Complete");
    free(st);
    unsigned other[] = {f->n / 2};
    split_request *r2 = request(f, "split-a", other, 1, false);
    char *s2 = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_RC(SHALE_CONFLICT, svc->ops->submit(svc, r2, &created, &s2));
    /* Abort after completion is refused. */
    TU_RC(SHALE_CONFLICT, svc->ops->abort(svc, "split-a", &s2));
    split_request_free(r);
    split_request_free(r2);
    /* The local WAL was wiped except for the fence. */
    shale_objstore *w = NULL;
    TU_OK(shale_objstore_open(f->wal, NULL, &w));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(w, "wal/", &l));
    assert_int_equal(l.count, 1);
    shale_objlist_free(&l);
    shale_objstore_close(w);
}

static void test_abort_before_wipe_leaves_parent(void **state)
{
    fx *f = *state;
    new_splitter(f, false);                  /* not started: abort wins */
    shale_db *w = NULL;
    TU_OK(shale_open(f->parent, &f->o, &w)); /* the shard's live writer */
    unsigned cuts[] = {f->n / 2};
    split_request *r = request(f, "split-b", cuts, 1, false);
    bool created;
    free(submit(f, r, &created));
    char *st = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->abort(svc, "split-b", &st));
    free(st);
    TU_OK(splitter_start(f->sp));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = get_status(f, "split-b");
    expect_phase(st, "Aborted");
    free(st);
    split_request_free(r);
    /* Fence's open, started beside version 1, waited for the worker's
     * Fence and the abort cancelled it: the live writer was never fenced. */
    dt_put(w, f->n + 2, 1);
    TU_OK(shale_flush_wal(w));
    TU_OK(shale_close(w));
    /* The parent is readable and writable with all its data. */
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &f->o, &db));
    for (unsigned i = 0; i < f->n; i += 5)
        dt_expect(db, i, 1 + i % 3);
    dt_put(db, f->n + 1, 1);
    TU_OK(shale_close(db));
    /* A second split is possible after an abort. */
    r = request(f, "split-c", cuts, 1, false);
    free(submit(f, r, &created));
    assert_true(created);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = get_status(f, "split-c");
    expect_phase(st, "Complete");
    free(st);
    split_request_free(r);
}

static void test_dry_run_touches_nothing(void **state)
{
    fx *f = *state;
    shale_reader *rd = NULL;
    shale_db_info before, after;
    TU_OK(shale_reader_open(f->parent, &f->o, NULL, &rd));
    TU_OK(shale_reader_info(rd, &before));
    shale_reader_close(rd);
    new_splitter(f, true);
    unsigned cuts[] = {100, 200, 300};
    split_request *r = request(f, "dry", cuts, 3, true);
    bool created;
    free(submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = get_status(f, "dry");
    expect_phase(st, "Complete");
    assert_non_null(strstr(st, "\"plan\""));
    assert_non_null(strstr(st, "\"expectedKeys\": 100"));
    free(st);
    split_request_free(r);
    TU_OK(shale_reader_open(f->parent, &f->o, NULL, &rd));
    TU_OK(shale_reader_info(rd, &after));
    shale_reader_close(rd);
    assert_int_equal(before.writer_epoch, after.writer_epoch);   /* not fenced */
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "splits/", &l));
    assert_int_equal(l.count, 0);                                /* no journal */
    shale_objlist_free(&l);
    shale_objstore_close(s);
    shale_objstore_open(f->kid[0], NULL, &s);
    TU_OK(shale_objstore_list_all(s, "", &l));
    assert_int_equal(l.count, 0);                                /* no child */
    shale_objlist_free(&l);
    shale_objstore_close(s);
}

static void test_bad_requests_touch_nothing(void **state)
{
    fx *f = *state;
    new_splitter(f, true);
    split_service *svc = splitter_service(f->sp);
    const char *bad[] = {
        /* overlapping ranges */
        "name: bad1\nparent: {shard: orders-0}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"m\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"k\", end: \"\"}}\n",
        /* a gap */
        "name: bad2\nparent: {shard: orders-0}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"m\", end: \"\"}}\n",
        /* the same store twice */
        "name: bad3\nparent: {shard: orders-0}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://a\", range: {start: \"k\", end: \"\"}}\n",
        /* another shard */
        "name: bad4\nparent: {shard: other}\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"k\", end: \"\"}}\n",
        /* an unknown verify mode */
        "name: bad5\nparent: {shard: orders-0}\nverify: sometimes\nchildren:\n"
        "  - {name: a, store: \"mem://a\", range: {start: \"\", end: \"k\"}}\n"
        "  - {name: b, store: \"mem://b\", range: {start: \"k\", end: \"\"}}\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        split_request *r = NULL;
        shale_status rc = split_request_parse("test", bad[i], strlen(bad[i]), &r);
        if (rc == SHALE_OK) {
            bool created;
            char *st = NULL;
            rc = svc->ops->submit(svc, r, &created, &st);
            free(st);
            split_request_free(r);
        }
        if (rc != SHALE_INVALID_ARGUMENT)
            fail_msg("bad request %zu: got %s", i, shale_strerror(rc));
        assert_true(strlen(shale_errmsg()) > 0);
    }
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "splits/", &l));
    assert_int_equal(l.count, 0);
    shale_objlist_free(&l);
    shale_objstore_close(s);
}

static void test_second_split_while_running_conflicts(void **state)
{
    fx *f = *state;
    new_splitter(f, false);                  /* the first stays unfinished */
    unsigned cuts[] = {f->n / 2};
    split_request *a = request(f, "first", cuts, 1, false);
    split_request *b = request(f, "second", cuts, 1, false);
    bool created;
    free(submit(f, a, &created));
    char *st = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_RC(SHALE_CONFLICT, svc->ops->submit(svc, b, &created, &st));
    assert_non_null(strstr(shale_errmsg(), "being split by first"));
    /* A new splitter (an agent restart) resumes the journaled split. */
    splitter_free(f->sp);
    f->sp = NULL;
    new_splitter(f, true);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    st = get_status(f, "first");
    expect_phase(st, "Complete");
    free(st);
    check_children(f, cuts, 1);
    split_request_free(a);
    split_request_free(b);
}

/* ---- Verify finds a damaged child ---------------------------------------------
 * Right after Clone (the step callback runs on the worker before Verify
 * starts) kid-0 is damaged behind the splitter's back.  Verify must find
 * it and fail the split with VerifyFailed, naming kid-0 and what differs,
 * instead of retrying a mismatch that cannot pass.
 *
 * Full Verify compares every key: a writer on the child changes key 5 (not
 * one a sample of every 10th key would read back), deletes it, or adds a
 * key the parent lacks.  Verify by references then must find, without
 * reading the data: a writer opened on the child, an SST (or run) dropped
 * from its manifest, a referenced object deleted from the parent, its pin
 * in the parent removed, its range changed; and, through its sampled
 * reads, a byte flipped in the first block of an SST it references (the
 * object keeps its size, so only a read can tell).  The references split with no
 * damage completes and says so; the agent's default applies to requests
 * that name no mode, and a request's own mode wins. */
typedef enum {
    DMG_VALUE, DMG_DELETE, DMG_ADD,                     /* through a writer */
    DMG_WRITER, DMG_DROP_SST, DMG_DELETE_OBJECT, DMG_DROP_PIN, DMG_RANGE,
    DMG_CORRUPT_BLOCK, DMG_TRUNCATE_OBJECT
} damage;
typedef struct damager {
    fx *f;
    damage kind;
    bool done;
    shale_status rc;         /* the damage's own failure, if any */
    char msg[600];
} damager;

static void run_split(fx *f, const char *name, const char *verify, const char *mode,
                      const char *says)
{
    unsigned cuts[] = {f->n / 3, 2 * f->n / 3};
    split_request *r = request_v(f, name, cuts, 2, false, verify);
    bool created;
    free(submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = get_status(f, name);
    expect_phase(st, "Complete");
    char want[64];
    snprintf(want, sizeof want, "\"verifyMode\": \"%s\"", mode);
    if (!strstr(st, want) || !strstr(st, says))
        fail_msg("expected Verify %s (\"%s\"):\n%s", mode, says, st);
    free(st);
    split_request_free(r);
    check_children(f, cuts, 2);
}

static void test_verify_references_completes(void **state)
{
    fx *f = *state;
    new_splitter(f, true);
    run_split(f, "by-refs", "references", "references", "reference exactly the parent's");
}

static void test_verify_mode_default_and_override(void **state)
{
    fx *f = *state;
    new_splitter_v(f, true, SPLIT_VERIFY_REFERENCES);
    run_split(f, "agent-default", NULL, "references", "sampled windows");
    /* A second split of the same parent into other stores: a request that
     * names full gets full whatever the agent's default. */
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(f->kid[i]);
        f->kid[i] = realloc(f->kid[i], l + 3);
        strcat(f->kid[i], "-2");
        l = strlen(f->kidwal[i]);
        f->kidwal[i] = realloc(f->kidwal[i], l + 3);
        strcat(f->kidwal[i], "-2");
    }
    run_split(f, "asks-full", "full", "full", "key by key");
}

/* A child splits again (its own agent, its own shard): the grandchildren
 * reference SSTs that live in the first parent's store, through kid-0's
 * references, and Verify by references checks those stores and pins too. */
static void test_verify_references_split_of_a_child(void **state)
{
    fx *f = *state;
    new_splitter(f, true);
    run_split(f, "first", "references", "references", "reference exactly the parent's");
    splitter_free(f->sp);
    f->sp = NULL;
    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;   /* mem:// and fault+ children (tests) */
    so.shard = "kid-0";
    so.store_uri = f->kid[0];
    so.wal_store_uri = f->kidwal[0];
    so.db = f->o;
    so.db.wal_store_uri = NULL;
    TU_OK(splitter_new(&so, &f->sp));
    TU_OK(splitter_start(f->sp));
    unsigned mid = f->n / 6, end = f->n / 3;    /* kid-0 holds [0, n/3) */
    char m[32], e[32], text[2048];
    dt_key(m, sizeof m, mid);
    dt_key(e, sizeof e, end);
    size_t n = (size_t)snprintf(text, sizeof text,
                                "name: second\nparent: {shard: kid-0}\nverify: references\n"
                                "children:\n"
                                "  - {name: g0, store: \"%s\", range: {start: \"\", end: \"%s\"}}\n"
                                "  - {name: g1, store: \"%s\", range: {start: \"%s\", end: \"%s\"}}\n",
                                f->kid[3], m, f->kidwal[3], m, e);
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, n, &r));
    bool created;
    free(submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = get_status(f, "second");
    expect_phase(st, "Complete");
    if (!strstr(st, "reference exactly the parent's"))
        fail_msg("second split not verified by references:\n%s", st);
    free(st);
    split_request_free(r);
    const char *g[2] = {f->kid[3], f->kidwal[3]};
    for (int c = 0; c < 2; c++) {
        shale_options o = f->o;
        o.wal_store_uri = NULL;
        shale_reader *rd = NULL;
        TU_OK(shale_reader_open(g[c], &o, NULL, &rd));
        unsigned lo = c ? mid : 0, hi = c ? end : mid;
        for (unsigned i = 0; i < f->n; i += 7)
            dt_expect_reader(rd, i, i >= lo && i < hi ? 1 + i % 3 : 0);
        uint64_t cnt = 0;
        TU_OK(shale_reader_count(rd, NULL, 0, NULL, 0, &cnt));
        assert_int_equal(cnt, hi - lo);
        shale_reader_close(rd);
    }
}

/* Drops the child's first SST (from L0, else from its first sorted run,
 * the run itself when it held only that one). */
static shale_status drop_first_sst(manifest *m, void *ctx)
{
    (void)ctx;
    if (m->l0_count) {
        sst_handle_clear(&m->l0[0]);
        memmove(m->l0, m->l0 + 1, --m->l0_count * sizeof *m->l0);
    } else if (m->run_count && m->runs[0].count > 1) {
        sst_handle_clear(&m->runs[0].ssts[0]);
        memmove(m->runs[0].ssts, m->runs[0].ssts + 1, --m->runs[0].count * sizeof(sst_handle));
    } else if (m->run_count) {
        for (size_t i = 0; i < m->runs[0].count; i++)
            sst_handle_clear(&m->runs[0].ssts[i]);
        free(m->runs[0].ssts);
        memmove(m->runs, m->runs + 1, --m->run_count * sizeof *m->runs);
    } else {
        return SHALE_NOT_FOUND;   /* nothing to drop: reported as the damage's failure */
    }
    return SHALE_OK;
}

static shale_status narrow_range(manifest *m, void *ctx)
{
    (void)ctx;
    free(m->range_start);
    m->range_start = (uint8_t *)strdup("k");   /* kid-0 starts unbounded */
    m->range_start_len = 1;
    return SHALE_OK;
}

/* Writes to kid-0 through a writer of its own (the damage kinds that
 * change data; DMG_WRITER only opens it: that alone writes a fencing WAL). */
static shale_status write_to_child(const damager *d)
{
    shale_options o = d->f->o;
    o.wal_store_uri = d->f->kidwal[0];
    shale_db *w = NULL;
    shale_status rc = shale_open(d->f->kid[0], &o, &w);
    char k[32], v[128];
    size_t kl, vl;
    if (!rc && d->kind == DMG_VALUE) {
        kl = dt_key(k, sizeof k, 5), vl = dt_val(v, sizeof v, 5, 9);
        rc = shale_put(w, k, kl, v, vl);
    } else if (!rc && d->kind == DMG_DELETE) {
        kl = dt_key(k, sizeof k, 5);
        rc = shale_delete(w, k, kl);
    } else if (!rc && d->kind == DMG_ADD) {
        /* absent from the parent; sorts inside kid-0 */
        kl = dt_key(k, sizeof k, d->f->n + 5), vl = dt_val(v, sizeof v, d->f->n + 5, 1);
        rc = shale_put(w, k, kl, v, vl);
    }
    shale_status crc = shale_close(w);
    return rc ? rc : crc;
}

/* Runs on the splitter's worker thread, so it records a failure for the
 * test's thread to report instead of asserting (cmocka asserts only on
 * the thread running the test). */
#define DO(x)                                                                       \
    do {                                                                            \
        if (!d->rc && (d->rc = (x)))                                                \
            snprintf(d->msg, sizeof d->msg, "%s: %s", #x, shale_errmsg());          \
    } while (0)

static void damage_after_clone(void *ctx, const char *step, double secs)
{
    (void)secs;
    damager *d = ctx;
    if (strcmp(step, "Clone") || d->done)
        return;
    d->done = true;
    if (d->kind <= DMG_WRITER) {
        DO(write_to_child(d));
        return;
    }
    shale_objstore *kid = NULL, *par = NULL;
    manifest *m = NULL;
    DO(shale_objstore_open(d->f->kid[0], NULL, &kid));
    DO(shale_objstore_open(d->f->parent, NULL, &par));
    DO(manifest_store_load_latest(kid, 0, &m));
    if (d->rc) {
    } else if (d->kind == DMG_DROP_SST) {
        DO(manifest_store_update(kid, NULL, drop_first_sst, NULL));
    } else if (d->kind == DMG_DELETE_OBJECT) {
        const sst_handle *h = m->l0_count ? &m->l0[0] : m->run_count ? &m->runs[0].ssts[0] : NULL;
        char key[64];
        if (h) {
            sst_key(h->id, key, sizeof key);
            DO(shale_objstore_delete(par, key));
        } else {
            d->rc = SHALE_NOT_FOUND;
            snprintf(d->msg, sizeof d->msg, "the child references no SST");
        }
    } else if (d->kind == DMG_CORRUPT_BLOCK) {
        const sst_handle *h = m->l0_count ? &m->l0[0] : m->run_count ? &m->runs[0].ssts[0] : NULL;
        char key[64];
        void *data = NULL;
        size_t len = 0;
        if (h) {
            sst_key(h->id, key, sizeof key);
            DO(shale_objstore_get(par, key, &data, &len));
        }
        if (!d->rc && len > 10) {
            ((uint8_t *)data)[10] ^= 0x40;
            DO(shale_objstore_put(par, key, data, len));
        } else if (!d->rc) {
            d->rc = SHALE_NOT_FOUND;
            snprintf(d->msg, sizeof d->msg, "no SST with a block to damage");
        }
        free(data);
    } else if (d->kind == DMG_TRUNCATE_OBJECT) {
        /* The child's first SST one byte short: only its size tells. */
        const sst_handle *h = m->l0_count ? &m->l0[0] : m->run_count ? &m->runs[0].ssts[0] : NULL;
        char key[64];
        void *data = NULL;
        size_t len = 0;
        if (h) {
            sst_key(h->id, key, sizeof key);
            DO(shale_objstore_get(par, key, &data, &len));
        }
        if (!d->rc && len > 1) {
            DO(shale_objstore_put(par, key, data, len - 1));
        } else if (!d->rc) {
            d->rc = SHALE_NOT_FOUND;
            snprintf(d->msg, sizeof d->msg, "no SST to truncate");
        }
        free(data);
    } else if (d->kind == DMG_DROP_PIN) {
        DO(cp_remove(par, m->parents[0].final_checkpoint_id, false));
    } else {
        DO(manifest_store_update(kid, NULL, narrow_range, NULL));
    }
    manifest_free(m);
    shale_objstore_close(kid);
    shale_objstore_close(par);
}
#undef DO

/* verify: the request's mode (NULL: the agent's default, full); cut: the
 * key index where kid-0 ends. */
static void verify_fails(fx *f, damage kind, const char *verify, unsigned cut,
                         const char *what)
{
    new_splitter(f, false);
    damager d = {f, kind, false, SHALE_OK, ""};
    splitter_on_step(f->sp, damage_after_clone, &d);
    TU_OK(splitter_start(f->sp));
    unsigned cuts[1] = {cut};
    split_request *r = request_v(f, "damaged", cuts, 1, false, verify);
    bool created;
    free(submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    assert_true(d.done);
    if (d.rc)
        fail_msg("damaging kid-0 failed: %s", d.msg);
    char *st = get_status(f, "damaged");
    expect_phase(st, "Failed");
    if (!strstr(st, "\"reason\": \"VerifyFailed\"") || !strstr(st, what) ||
        !strstr(st, "kid-0"))
        fail_msg("expected VerifyFailed naming kid-0 and '%s':\n%s", what, st);
    /* Past the wipe the shard's data lives in the children: the split lease
     * stays held for an operator (docs/agent.md). */
    if (!strstr(st, "\"state\": \"Held\"") || !strstr(st, "lease stays held"))
        fail_msg("expected the split lease to stay held:\n%s", st);
    free(st);
    split_request_free(r);
}

/* Full: every key below f->n + 5 in kid-0 (one cut far above). */
static void test_verify_catches_a_changed_value(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_VALUE, NULL, f->n + 100, "different value");
}

static void test_verify_catches_a_missing_key(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_DELETE, NULL, f->n + 100, "lacks key");
}

static void test_verify_catches_an_extra_key(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_ADD, NULL, f->n + 100, "does not have");
}

static void test_references_catch_a_writer_on_a_child(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_WRITER, "references", f->n / 2, "a writer has opened the child");
}

static void test_references_catch_a_dropped_sst(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_DROP_SST, "references", f->n / 2, "lacks the parent's");
}

static void test_references_catch_a_missing_object(void **state)
{
    fx *f = *state;
    /* More than one SST: found missing by the LIST of the parent's SSTs. */
    verify_fails(f, DMG_DELETE_OBJECT, "references", f->n / 2,
                 "which does not exist (not in the store's listing)");
}

/* The parent here has more than one SST: its objects are checked by one
 * LIST of its SSTs with their sizes (LIST_MIN_OBJECTS), which must see a
 * size that differs from the manifest's as a HEAD did. */
static void test_references_catch_a_truncated_object(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_TRUNCATE_OBJECT, "references", f->n / 2, "the store's listing says");
}

static void test_references_catch_a_missing_pin(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_DROP_PIN, "references", f->n / 2, "has no pin");
}

static void test_references_catch_a_damaged_block(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_CORRUPT_BLOCK, "references", f->n / 2, "checksum mismatch");
}

static void test_references_catch_another_range(void **state)
{
    fx *f = *state;
    verify_fails(f, DMG_RANGE, "references", f->n / 2, "another key range");
}

/* ---- The wipe under store faults --------------------------------------------
 * The 5th delete of the local WAL fails.  The wipe is past the point of no
 * return, so the step is redone until it passes: the split completes, the
 * children hold their ranges and only the fence is left in the local WAL. */
static void test_wipe_fault_is_retried_to_completion(void **state)
{
    fx *f = *state;
    shale_fault *ctl = shale_fault_for_uri(f->wal, NULL);
    assert_non_null(ctl);
    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_DELETE), "wal/", 5, 1, SHALE_IO,
                             false, 0, 0};
    TU_OK(shale_fault_add(ctl, &rule, NULL));
    new_splitter(f, true);
    unsigned cuts[] = {f->n / 3, 2 * f->n / 3};
    split_request *r = request(f, "wipe-fault", cuts, 2, false);
    bool created;
    free(submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    assert_int_equal(shale_fault_injected(ctl), 1);
    char *st = get_status(f, "wipe-fault");
    expect_phase(st, "Complete");
    free(st);
    split_request_free(r);
    check_children(f, cuts, 2);
    shale_objstore *w = NULL;
    TU_OK(shale_objstore_open(f->wal, NULL, &w));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(w, "wal/", &l));
    assert_int_equal(l.count, 1);
    shale_objlist_free(&l);
    shale_objstore_close(w);
    shale_fault_clear(ctl);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_three_way_split_partitions_parent),
        T(test_abort_before_wipe_leaves_parent),
        T(test_dry_run_touches_nothing),
        T(test_bad_requests_touch_nothing),
        T(test_second_split_while_running_conflicts),
        T(test_verify_catches_a_changed_value),
        T(test_verify_catches_a_missing_key),
        T(test_verify_catches_an_extra_key),
        T(test_verify_references_completes),
        T(test_verify_mode_default_and_override),
        T(test_verify_references_split_of_a_child),
        T(test_references_catch_a_writer_on_a_child),
        T(test_references_catch_a_dropped_sst),
        T(test_references_catch_a_missing_object),
        T(test_references_catch_a_missing_pin),
        T(test_references_catch_another_range),
        T(test_references_catch_a_damaged_block),
        T(test_references_catch_a_truncated_object),
        cmocka_unit_test_setup_teardown(test_wipe_fault_is_retried_to_completion,
                                        setup_fault_wal, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
