/*
 * test_splitter_verify.c -- the split's Verify step finds a damaged child,
 * in both modes (full and by references), through the splitter's service
 * API on the fixture of support/splittest.c.  The split's other rules are
 * in test_splitter.c.
 */
#include "support/splittest.h"
#include "db/checkpoint_int.h"
#include "db/manifest.h"
#include "db/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    sf_fx *f;
    damage kind;
    bool done;
    unsigned cut;            /* the first child's range ends at this key index */
    shale_status rc;         /* the damage's own failure, if any */
    char msg[600];
} damager;

static void run_split(sf_fx *f, const char *name, const char *verify, const char *mode,
                      const char *says)
{
    unsigned cuts[] = {f->n / 3, 2 * f->n / 3};
    split_request *r = sf_request_v(f, name, cuts, 2, false, verify);
    bool created;
    free(sf_submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = sf_get_status(f, name);
    sf_expect_phase(st, "Complete");
    char want[64];
    snprintf(want, sizeof want, "\"verifyMode\": \"%s\"", mode);
    if (!strstr(st, want) || !strstr(st, says))
        fail_msg("expected Verify %s (\"%s\"):\n%s", mode, says, st);
    free(st);
    split_request_free(r);
    sf_check_children(f, cuts, 2);
}

static void test_verify_references_completes(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter(f, true);
    run_split(f, "by-refs", "references", "references", "reference exactly the parent's");
}

static void test_verify_mode_default_and_override(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter_v(f, true, SPLIT_VERIFY_REFERENCES);
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
    sf_fx *f = *state;
    sf_new_splitter(f, true);
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
    free(sf_submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char *st = sf_get_status(f, "second");
    sf_expect_phase(st, "Complete");
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
    /* A damaged block is made before Clone, in the parent's SST the first
     * child references: Verify's reads of the parent are made ahead,
     * beside Clone (agent/verify_warm.h), so a block changed after they
     * read it is not what Verify compares -- as a block damaged after
     * Verify is not.  What must hold is that the children's data read back
     * is checked: the warm-up's read fails its checksum, caches nothing,
     * and Verify's own read names it. */
    const char *when = d->kind == DMG_CORRUPT_BLOCK ? "WipeLocalWAL" : "Clone";
    if (strcmp(step, when) || d->done)
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
    DO(manifest_store_load_latest(d->kind == DMG_CORRUPT_BLOCK ? par : kid, 0, &m));
    if (!d->rc && d->kind == DMG_CORRUPT_BLOCK) {
        /* The version the split's checkpoint pins, whose SSTs the children
         * reference (the parent's latest may be a compaction's since). */
        uint64_t pinned = 0;
        for (size_t i = 0; i < m->checkpoint_count; i++)
            if (m->checkpoints[i].name && !strcmp(m->checkpoints[i].name, "split:damaged"))
                pinned = m->checkpoints[i].manifest_id;
        manifest_free(m);
        m = NULL;
        if (!pinned) {
            d->rc = SHALE_NOT_FOUND;
            snprintf(d->msg, sizeof d->msg, "no checkpoint split:damaged in the parent");
        } else {
            DO(manifest_store_load(par, pinned, &m));
        }
    }
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
        /* The parent's first SST with keys below the cut, newest level
         * first: one the first child references, whose first block (the
         * one damaged) the child's range-start window reads. */
        char cut[32];
        size_t cutl = dt_key(cut, sizeof cut, d->cut);
        const sst_handle *h = NULL;
        for (size_t k = 0; !h && k < m->l0_count; k++)
            if (m->l0[k].first_key &&
                shale_key_compare(m->l0[k].first_key, m->l0[k].first_klen, cut, cutl) < 0)
                h = &m->l0[k];
        for (size_t r = 0; !h && r < m->run_count; r++)
            if (m->runs[r].count && m->runs[r].ssts[0].first_key &&
                shale_key_compare(m->runs[r].ssts[0].first_key, m->runs[r].ssts[0].first_klen,
                                  cut, cutl) < 0)
                h = &m->runs[r].ssts[0];
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
static void verify_fails(sf_fx *f, damage kind, const char *verify, unsigned cut,
                         const char *what)
{
    sf_new_splitter(f, false);
    damager d = {f, kind, false, cut, SHALE_OK, ""};
    splitter_on_step(f->sp, damage_after_clone, &d);
    TU_OK(splitter_start(f->sp));
    unsigned cuts[1] = {cut};
    split_request *r = sf_request_v(f, "damaged", cuts, 1, false, verify);
    bool created;
    free(sf_submit(f, r, &created));
    TU_OK(splitter_wait_idle(f->sp, 60000));
    assert_true(d.done);
    if (d.rc)
        fail_msg("damaging kid-0 failed: %s", d.msg);
    char *st = sf_get_status(f, "damaged");
    sf_expect_phase(st, "Failed");
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
    sf_fx *f = *state;
    verify_fails(f, DMG_VALUE, NULL, f->n + 100, "different value");
}

static void test_verify_catches_a_missing_key(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_DELETE, NULL, f->n + 100, "lacks key");
}

static void test_verify_catches_an_extra_key(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_ADD, NULL, f->n + 100, "does not have");
}

static void test_references_catch_a_writer_on_a_child(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_WRITER, "references", f->n / 2, "a writer has opened the child");
}

static void test_references_catch_a_dropped_sst(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_DROP_SST, "references", f->n / 2, "lacks the parent's");
}

static void test_references_catch_a_missing_object(void **state)
{
    sf_fx *f = *state;
    /* More than one SST: found missing by the LIST of the parent's SSTs. */
    verify_fails(f, DMG_DELETE_OBJECT, "references", f->n / 2,
                 "which does not exist (not in the store's listing)");
}

/* The parent here has more than one SST: its objects are checked by one
 * LIST of its SSTs with their sizes (LIST_MIN_OBJECTS), which must see a
 * size that differs from the manifest's as a HEAD did. */
static void test_references_catch_a_truncated_object(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_TRUNCATE_OBJECT, "references", f->n / 2, "the store's listing says");
}

static void test_references_catch_a_missing_pin(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_DROP_PIN, "references", f->n / 2, "has no pin");
}

static void test_references_catch_a_damaged_block(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_CORRUPT_BLOCK, "references", f->n / 2, "checksum mismatch");
}

static void test_references_catch_another_range(void **state)
{
    sf_fx *f = *state;
    verify_fails(f, DMG_RANGE, "references", f->n / 2, "another key range");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sf_setup, sf_teardown)
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
