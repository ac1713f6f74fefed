/*
 * test_iter.c -- the user iterator (db/iter.c): snapshot visibility,
 * newest-version-wins, tombstones, [start, end) bounds, error propagation
 * from a failing internal iterator, key/value stability, release callback.
 *
 * Internal iterators here are memtable iterators and a test-local sorted
 * array iterator (which can fail on demand and reuses one entry buffer, so
 * it invalidates what entry() returned on every move).
 */
#include "support/testutil.h"
#include "db/iter_int.h"
#include "db/memtable.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- test-local array iterator -------------------------------------------- */

typedef struct arr_iter {
    kv_iter base;
    const kv_entry *ents;
    size_t n, pos;
    size_t fail_after;      /* moves (seek/next) before it fails; SIZE_MAX never */
    size_t moves;
    shale_status rc;
    uint8_t scratch[256];   /* entry() bytes live here: rewritten on every move */
    int *destroyed;
} arr_iter;

static void arr_load(arr_iter *a)
{
    memset(a->scratch, 0xEE, sizeof a->scratch);  /* poison what was handed out */
    if (a->moves++ >= a->fail_after) {
        a->rc = shale_err(SHALE_IO, "arr_iter: injected failure at move %zu", a->moves);
        a->pos = a->n;
        return;
    }
    if (a->pos < a->n) {
        const kv_entry *e = &a->ents[a->pos];
        assert_true(e->klen + e->vlen <= sizeof a->scratch);
        memcpy(a->scratch, e->key, e->klen);
        if (e->vlen)
            memcpy(a->scratch + e->klen, e->val, e->vlen);
    }
}

static void arr_seek_first(kv_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    a->pos = 0;
    arr_load(a);
}

static void arr_seek(kv_iter *it, const uint8_t *k, size_t kl)
{
    arr_iter *a = (arr_iter *)it;
    a->pos = 0;
    while (a->pos < a->n && kv_key_cmp(a->ents[a->pos].key, a->ents[a->pos].klen, k, kl) < 0)
        a->pos++;
    arr_load(a);
}

static void arr_next(kv_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos < a->n);
    a->pos++;
    arr_load(a);
}

static bool arr_valid(const kv_iter *it)
{
    const arr_iter *a = (const arr_iter *)it;
    return a->rc == SHALE_OK && a->pos < a->n;
}

static void arr_entry(const kv_iter *it, kv_entry *out)
{
    const arr_iter *a = (const arr_iter *)it;
    *out = a->ents[a->pos];
    out->key = a->scratch;
    out->val = a->ents[a->pos].vlen ? a->scratch + out->klen : NULL;
}

static shale_status arr_status(const kv_iter *it)
{
    return ((const arr_iter *)it)->rc;
}

static void arr_destroy(kv_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    if (a->destroyed)
        (*a->destroyed)++;
    free(a);
}

static const kv_iter_ops arr_ops = {arr_seek_first, arr_seek, arr_next, arr_valid,
                                    arr_entry, arr_status, arr_destroy};

static arr_iter *arr_new(const kv_entry *ents, size_t n, size_t fail_after, int *destroyed)
{
    arr_iter *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->base.ops = &arr_ops;
    a->ents = ents;
    a->n = n;
    a->pos = n;
    a->fail_after = fail_after;
    a->destroyed = destroyed;
    return a;
}

/* ---- helpers ---------------------------------------------------------------- */

#define K(s) (const uint8_t *)(s), (sizeof(s) - 1)

static void put(memtable *m, const char *k, uint64_t seq, const char *v)
{
    kv_entry e = {(const uint8_t *)k, strlen(k), seq, KV_PUT, (const uint8_t *)v, strlen(v)};
    TU_OK(memtable_add(m, &e));
}

static void del(memtable *m, const char *k, uint64_t seq)
{
    kv_entry e = {(const uint8_t *)k, strlen(k), seq, KV_DELETE, NULL, 0};
    TU_OK(memtable_add(m, &e));
}

/* Runs a user iterator over m and renders "k=v k=v ..." into out. */
static void scan(memtable *m, uint64_t snap, const char *start, const char *end, char *out,
                 size_t cap)
{
    kv_iter *in = memtable_iter_new(m);
    assert_non_null(in);
    shale_iter *it = NULL;
    TU_OK(user_iter_new(in, snap, (const uint8_t *)start, start ? strlen(start) : 0,
                        (const uint8_t *)end, end ? strlen(end) : 0, NULL, NULL, &it));
    size_t len = 0;
    out[0] = '\0';
    for (; shale_iter_valid(it); shale_iter_next(it)) {
        size_t kl, vl;
        const char *k = shale_iter_key(it, &kl);
        const char *v = shale_iter_value(it, &vl);
        int w = snprintf(out + len, cap - len, "%s%.*s=%.*s", len ? " " : "", (int)kl, k,
                         (int)vl, v);
        assert_true(w > 0 && (size_t)w < cap - len);
        len += (size_t)w;
    }
    TU_OK(shale_iter_status(it));
    shale_iter_next(it);  /* past the end: harmless */
    assert_false(shale_iter_valid(it));
    shale_iter_free(it);
}

/* a: 1 put, 3 put, 5 del, 9 put
 * b: 2 put, 4 del, 6 put
 * c: 7 put
 * d: 8 del (never visible)
 * e: 10 del, 11 put */
static memtable *fixture(void)
{
    memtable *m = memtable_new();
    assert_non_null(m);
    put(m, "a", 1, "a1");
    put(m, "b", 2, "b2");
    put(m, "a", 3, "a3");
    del(m, "b", 4);
    del(m, "a", 5);
    put(m, "b", 6, "b6");
    put(m, "c", 7, "c7");
    del(m, "d", 8);
    put(m, "a", 9, "a9");
    del(m, "e", 10);
    put(m, "e", 11, "e11");
    return m;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_snapshot_versions_tombstones(void **state)
{
    (void)state;
    memtable *m = fixture();
    static const char *want[] = {
        /* 0 */ "",
        /* 1 */ "a=a1",
        /* 2 */ "a=a1 b=b2",
        /* 3 */ "a=a3 b=b2",
        /* 4 */ "a=a3",
        /* 5 */ "",
        /* 6 */ "b=b6",
        /* 7 */ "b=b6 c=c7",
        /* 8 */ "b=b6 c=c7",
        /* 9 */ "a=a9 b=b6 c=c7",
        /* 10 */ "a=a9 b=b6 c=c7",
        /* 11 */ "a=a9 b=b6 c=c7 e=e11",
    };
    char out[256];
    for (uint64_t s = 0; s < sizeof want / sizeof *want; s++) {
        scan(m, s, NULL, NULL, out, sizeof out);
        if (strcmp(out, want[s]))
            fail_msg("snapshot %llu: got \"%s\" want \"%s\"", (unsigned long long)s, out,
                     want[s]);
    }
    scan(m, KV_MAX_SEQ, NULL, NULL, out, sizeof out);
    assert_string_equal(out, "a=a9 b=b6 c=c7 e=e11");
    memtable_unref(m);
}

static void test_bounds(void **state)
{
    (void)state;
    memtable *m = fixture();
    char out[256];
    scan(m, 11, "b", "e", out, sizeof out);     /* start inclusive, end exclusive */
    assert_string_equal(out, "b=b6 c=c7");
    scan(m, 11, "a0", "c", out, sizeof out);    /* bounds between keys */
    assert_string_equal(out, "b=b6");
    scan(m, 11, "ab", "ee", out, sizeof out);
    assert_string_equal(out, "b=b6 c=c7 e=e11");
    scan(m, 11, NULL, "b", out, sizeof out);    /* unbounded start */
    assert_string_equal(out, "a=a9");
    scan(m, 11, "", "b", out, sizeof out);      /* 0-length = unbounded */
    assert_string_equal(out, "a=a9");
    scan(m, 11, "c", NULL, out, sizeof out);    /* unbounded end */
    assert_string_equal(out, "c=c7 e=e11");
    scan(m, 11, "c", "", out, sizeof out);
    assert_string_equal(out, "c=c7 e=e11");
    scan(m, 11, "c", "c", out, sizeof out);     /* empty range */
    assert_string_equal(out, "");
    scan(m, 11, "d", "c", out, sizeof out);     /* start > end */
    assert_string_equal(out, "");
    scan(m, 11, "d", "e", out, sizeof out);     /* only a tombstone inside */
    assert_string_equal(out, "");
    scan(m, 11, "f", NULL, out, sizeof out);    /* past the last key */
    assert_string_equal(out, "");
    scan(m, 4, "b", "z", out, sizeof out);      /* bounds and snapshot together */
    assert_string_equal(out, "");
    scan(m, 3, "b", "z", out, sizeof out);
    assert_string_equal(out, "b=b2");
    /* The start bound is a user key: every version of it is considered, so
     * a newer hidden version does not hide an older visible one. */
    scan(m, 10, "e", NULL, out, sizeof out);
    assert_string_equal(out, "");
    scan(m, 2, "b", "c", out, sizeof out);
    assert_string_equal(out, "b=b2");
    memtable_unref(m);

    /* Bounds are copied: the caller may free them right after the call. */
    m = fixture();
    char *s = strdup("b"), *e = strdup("c");
    assert_non_null(s);
    assert_non_null(e);
    kv_iter *in = memtable_iter_new(m);
    assert_non_null(in);
    shale_iter *it = NULL;
    TU_OK(user_iter_new(in, 11, (uint8_t *)s, 1, (uint8_t *)e, 1, NULL, NULL, &it));
    free(s);
    free(e);
    size_t n = 0;
    for (; shale_iter_valid(it); shale_iter_next(it))
        n++;
    assert_int_equal(n, 1);
    shale_iter_free(it);
    memtable_unref(m);
}

/* A random memtable against a brute-force model, many snapshots and bounds. */
static void test_random_model(void **state)
{
    (void)state;
    uint64_t rng = 99;
    const int nkeys = 60, n = tu_quick() ? 600 : 3000;
    memtable *m = memtable_new();
    assert_non_null(m);
    /* model[k][seq] : 0 absent, 1 put, 2 delete */
    uint8_t *model = calloc((size_t)nkeys * (size_t)(n + 1), 1);
    assert_non_null(model);
    for (int s = 1; s <= n; s++) {
        int k = (int)(tu_rand(&rng) % (uint64_t)nkeys);
        char key[8], val[24];
        snprintf(key, sizeof key, "%02d", k);
        snprintf(val, sizeof val, "%02d@%d", k, s);
        if (tu_rand(&rng) % 3) {
            put(m, key, (uint64_t)s, val);
            model[(size_t)k * (size_t)(n + 1) + (size_t)s] = 1;
        } else {
            del(m, key, (uint64_t)s);
            model[(size_t)k * (size_t)(n + 1) + (size_t)s] = 2;
        }
    }
    char *out = malloc(8192), *want = malloc(8192);
    assert_non_null(out);
    assert_non_null(want);
    for (int round = 0; round < 200; round++) {
        uint64_t snap = tu_rand(&rng) % (uint64_t)(n + 2);
        int lo = (int)(tu_rand(&rng) % (uint64_t)(nkeys + 1));
        int hi = (int)(tu_rand(&rng) % (uint64_t)(nkeys + 2));
        bool has_lo = tu_rand(&rng) % 4, has_hi = tu_rand(&rng) % 4;
        char sb[8], eb[8];
        snprintf(sb, sizeof sb, "%02d", lo);
        snprintf(eb, sizeof eb, "%02d", hi);
        size_t wl = 0;
        want[0] = '\0';
        for (int k = 0; k < nkeys; k++) {
            if ((has_lo && k < lo) || (has_hi && k >= hi))
                continue;
            for (int s = (int)(snap > (uint64_t)n ? (uint64_t)n : snap); s >= 1; s--) {
                uint8_t v = model[(size_t)k * (size_t)(n + 1) + (size_t)s];
                if (!v)
                    continue;
                if (v == 1)
                    wl += (size_t)snprintf(want + wl, 8192 - wl, "%s%02d=%02d@%d",
                                           wl ? " " : "", k, k, s);
                break;
            }
        }
        scan(m, snap, has_lo ? sb : NULL, has_hi ? eb : NULL, out, 8192);
        if (strcmp(out, want))
            fail_msg("snap %llu [%s, %s): got \"%s\" want \"%s\"", (unsigned long long)snap,
                     has_lo ? sb : "-", has_hi ? eb : "-", out, want);
    }
    free(out);
    free(want);
    free(model);
    memtable_unref(m);
}

static const kv_entry arr_ents[] = {
    {(const uint8_t *)"a", 1, 5, KV_PUT, (const uint8_t *)"a5", 2},
    {(const uint8_t *)"a", 1, 2, KV_PUT, (const uint8_t *)"a2", 2},
    {(const uint8_t *)"b", 1, 7, KV_DELETE, NULL, 0},
    {(const uint8_t *)"b", 1, 3, KV_PUT, (const uint8_t *)"b3", 2},
    {(const uint8_t *)"c", 1, 9, KV_PUT, (const uint8_t *)"c9", 2},
    {(const uint8_t *)"c", 1, 4, KV_PUT, (const uint8_t *)"c4", 2},
    {(const uint8_t *)"d", 1, 1, KV_PUT, (const uint8_t *)"", 0},
};
#define NARR (sizeof arr_ents / sizeof *arr_ents)

static void test_error_propagation(void **state)
{
    (void)state;
    /* Move f fails (moves: seek_first -> a5, then next -> a2, b-del, b3,
     * c9, c4, d, end).  The user iterator must stop with the error, never
     * report a clean end, and deliver the keys settled before it. */
    for (size_t fail_after = 0; fail_after <= NARR + 1; fail_after++) {
        int destroyed = 0;
        arr_iter *a = arr_new(arr_ents, NARR, fail_after, &destroyed);
        shale_iter *it = NULL;
        TU_OK(user_iter_new(&a->base, 10, NULL, 0, NULL, 0, NULL, NULL, &it));
        assert_non_null(it);
        size_t keys = 0;
        for (; shale_iter_valid(it); shale_iter_next(it))
            keys++;
        /* Moves: seek_first, then one per entry; the run ends after
         * NARR + 1 moves (the last hits the end). */
        if (fail_after <= NARR) {
            assert_int_equal(shale_iter_status(it), SHALE_IO);
            assert_non_null(strstr(shale_errmsg(), "injected failure"));
            assert_false(shale_iter_valid(it));
            shale_iter_next(it);                 /* stays ended */
            assert_false(shale_iter_valid(it));
            assert_int_equal(shale_iter_status(it), SHALE_IO);
        } else {
            TU_OK(shale_iter_status(it));
            assert_int_equal(keys, 3);           /* a, c, d */
        }
        /* Keys before the failure point were delivered. */
        static const size_t keys_by_fail[] = {0, 1, 1, 1, 1, 2, 2, 3};
        if (fail_after <= NARR)
            assert_int_equal(keys, keys_by_fail[fail_after]);
        shale_iter_free(it);
        assert_int_equal(destroyed, 1);
    }
}

static int released;
static void count_release(void *ctx)
{
    assert_ptr_equal(ctx, &released);
    released++;
}

static void test_release_and_memtable_refs(void **state)
{
    (void)state;
    released = 0;
    memtable *m = fixture();
    kv_iter *in = memtable_iter_new(m);
    assert_non_null(in);
    memtable_unref(m);  /* the internal iterator keeps it alive */
    shale_iter *it = NULL;
    TU_OK(user_iter_new(in, KV_MAX_SEQ, NULL, 0, NULL, 0, count_release, &released, &it));
    size_t kl;
    const char *k = shale_iter_key(it, &kl);
    assert_int_equal(kl, 1);
    assert_memory_equal(k, "a", 1);
    assert_int_equal(released, 0);
    shale_iter_free(it);
    assert_int_equal(released, 1);
    shale_iter_free(NULL);
    assert_false(shale_iter_valid(NULL));
    assert_int_equal(released, 1);
}

/* The key is the iterator's own copy (next() compares with it after the
 * internal iterator has moved); the value is the internal entry's, not
 * copied: it is borrowed until the next call on the iterator, as
 * shale_iter_value() promises, and copying every value was half the cost
 * of a warm scan of 1 KiB values. */
static void test_key_copied_value_borrowed(void **state)
{
    (void)state;
    arr_iter *a = arr_new(arr_ents, NARR, SIZE_MAX, NULL);
    shale_iter *it = NULL;
    TU_OK(user_iter_new(&a->base, 10, K("b"), NULL, 0, NULL, NULL, &it));
    static const char *want_k[] = {"c", "d"}, *want_v[] = {"c9", ""};
    for (int i = 0; i < 2; i++) {
        assert_true(shale_iter_valid(it));
        size_t kl, vl, kl2, vl2;
        const uint8_t *k = shale_iter_key(it, &kl);
        const uint8_t *v = shale_iter_value(it, &vl);
        assert_non_null(v);  /* even an empty value is a valid pointer */
        assert_int_equal(vl, strlen(want_v[i]));
        if (vl) {
            assert_memory_equal(v, want_v[i], vl);
            /* the internal entry's bytes, not a copy */
            assert_true(v >= a->scratch && v < a->scratch + sizeof a->scratch);
        }
        /* The key is not the internal entry's: clobbering that leaves it. */
        assert_false(k >= a->scratch && k < a->scratch + sizeof a->scratch);
        memset(a->scratch, 0xEE, sizeof a->scratch);
        assert_int_equal(kl, strlen(want_k[i]));
        assert_memory_equal(k, want_k[i], kl);
        /* Repeated calls return the same bytes. */
        assert_ptr_equal(shale_iter_key(it, &kl2), k);
        assert_ptr_equal(shale_iter_value(it, &vl2), v);
        assert_int_equal(kl2, kl);
        assert_int_equal(vl2, vl);
        shale_iter_next(it);
    }
    assert_false(shale_iter_valid(it));
    TU_OK(shale_iter_status(it));
    shale_iter_free(it);
}

/* Values of different sizes in a row: a short value after a long one must
 * not show the long one's tail. */
static void test_value_lengths_change(void **state)
{
    (void)state;
    memtable *m = memtable_new();
    assert_non_null(m);
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    put(m, "k1", 1, big);
    put(m, "k2", 2, "");
    put(m, "k3", 3, "short");
    put(m, "k4", 4, big);
    kv_iter *in = memtable_iter_new(m);
    assert_non_null(in);
    shale_iter *it = NULL;
    TU_OK(user_iter_new(in, 10, NULL, 0, NULL, 0, NULL, NULL, &it));
    size_t want[] = {sizeof big - 1, 0, 5, sizeof big - 1};
    for (int i = 0; i < 4; i++) {
        assert_true(shale_iter_valid(it));
        size_t vl;
        const char *v = shale_iter_value(it, &vl);
        assert_int_equal(vl, want[i]);
        if (i == 2)
            assert_memory_equal(v, "short", 5);
        if (i == 3)
            assert_memory_equal(v, big, vl);
        shale_iter_next(it);
    }
    assert_false(shale_iter_valid(it));
    shale_iter_free(it);
    memtable_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_versions_tombstones),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_error_propagation),
        cmocka_unit_test(test_release_and_memtable_refs),
        cmocka_unit_test(test_key_copied_value_borrowed),
        cmocka_unit_test(test_value_lengths_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
