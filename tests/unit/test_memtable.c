/*
 * test_memtable.c -- the skiplist memtable against a sorted-array model:
 * point reads at many snapshots, full iteration order, seeks, big and empty
 * entries, reference counting, and one writer racing two lock-free readers,
 * within one skiplist segment and across several.
 */
#include "support/testutil.h"
#include "db/memtable.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- model ----------------------------------------------------------------- */

typedef struct mentry {
    char key[16];
    size_t klen;
    uint64_t seq;
    uint8_t kind;
    char val[32];
    size_t vlen;
} mentry;

static kv_entry as_kv(const mentry *m)
{
    kv_entry e = {(const uint8_t *)m->key, m->klen, m->seq, m->kind,
                  m->kind == KV_PUT ? (const uint8_t *)m->val : NULL,
                  m->kind == KV_PUT ? m->vlen : 0};
    return e;
}

static int mentry_cmp(const void *a, const void *b)
{
    kv_entry x = as_kv(a), y = as_kv(b);
    return kv_cmp(&x, &y);
}

static size_t fmt_key(char *out, size_t cap, uint64_t k)
{
    int n = snprintf(out, cap, "k%05llu", (unsigned long long)k);
    return (size_t)n;
}

static void assert_entry_eq(const kv_entry *got, const mentry *want)
{
    assert_int_equal(got->klen, want->klen);
    assert_memory_equal(got->key, want->key, want->klen);
    assert_true(got->seq == want->seq);
    assert_int_equal(got->kind, want->kind);
    if (want->kind == KV_PUT) {
        assert_int_equal(got->vlen, want->vlen);
        if (want->vlen)
            assert_memory_equal(got->val, want->val, want->vlen);
    } else {
        assert_null(got->val);
        assert_int_equal(got->vlen, 0);
    }
}

/* Index of the first model entry (sorted) with key >= k, or n. */
static size_t model_lower_bound(const mentry *s, size_t n, const char *k, size_t kl)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kv_key_cmp((const uint8_t *)s[mid].key, s[mid].klen, (const uint8_t *)k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- model test ------------------------------------------------------------ */

static void run_model(size_t n)
{
    uint64_t rng = 12345;
    const uint64_t nkeys = n / 8;  /* ~8 versions per key */
    mentry *ents = calloc(n, sizeof *ents);
    assert_non_null(ents);
    /* Distinct seqs 1..n assigned in a shuffled order, so inserts are not
     * in seq order. */
    uint64_t *seqs = malloc(n * sizeof *seqs);
    assert_non_null(seqs);
    for (size_t i = 0; i < n; i++)
        seqs[i] = i + 1;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = tu_rand(&rng) % (i + 1);
        uint64_t t = seqs[i];
        seqs[i] = seqs[j];
        seqs[j] = t;
    }
    memtable *m = memtable_new();
    assert_non_null(m);
    assert_int_equal(memtable_count(m), 0);
    assert_true(memtable_max_seq(m) == 0);
    size_t payload = 0, bytes_before = memtable_bytes(m);
    for (size_t i = 0; i < n; i++) {
        mentry *e = &ents[i];
        /* Keys 2,4,6...: the odd ones are gaps for seeks. */
        e->klen = fmt_key(e->key, sizeof e->key, 2 * (tu_rand(&rng) % nkeys) + 2);
        e->seq = seqs[i];
        e->kind = tu_rand(&rng) % 4 ? KV_PUT : KV_DELETE;
        if (e->kind == KV_PUT) {
            int w = snprintf(e->val, sizeof e->val, "v%llu-%llu", (unsigned long long)e->seq,
                             (unsigned long long)(tu_rand(&rng) % 1000));
            e->vlen = (size_t)w;
            if (tu_rand(&rng) % 16 == 0)
                e->vlen = 0;  /* empty values are legal puts */
        }
        kv_entry kv = as_kv(e);
        TU_OK(memtable_add(m, &kv));
        payload += e->klen + (e->kind == KV_PUT ? e->vlen : 0);
    }
    free(seqs);
    assert_int_equal(memtable_count(m), n);
    assert_true(memtable_max_seq(m) == n);
    assert_true(memtable_bytes(m) >= bytes_before + payload);
    /* Arena accounting is per entry, not per block: far below 10x. */
    assert_true(memtable_bytes(m) < 10 * (payload + 64 * n));

    qsort(ents, n, sizeof *ents, mentry_cmp);

    /* Full iteration equals the sorted model. */
    kv_iter *it = memtable_iter_new(m);
    assert_non_null(it);
    assert_false(kv_iter_valid(it));  /* unpositioned */
    kv_iter_seek_first(it);
    for (size_t i = 0; i < n; i++) {
        assert_true(kv_iter_valid(it));
        kv_entry got;
        kv_iter_entry(it, &got);
        assert_entry_eq(&got, &ents[i]);
        kv_iter_next(it);
    }
    assert_false(kv_iter_valid(it));
    TU_OK(kv_iter_status(it));

    /* Seeks: present keys, gaps, before the first and after the last. */
    for (uint64_t k = 0; k <= 2 * nkeys + 3; k++) {
        char key[16];
        size_t kl = fmt_key(key, sizeof key, k);
        size_t want = model_lower_bound(ents, n, key, kl);
        kv_iter_seek(it, (const uint8_t *)key, kl);
        if (want == n) {
            assert_false(kv_iter_valid(it));
            continue;
        }
        assert_true(kv_iter_valid(it));
        kv_entry got;
        kv_iter_entry(it, &got);
        assert_entry_eq(&got, &ents[want]);  /* the newest version of that key */
        if (want + 1 < n) {
            kv_iter_next(it);
            assert_true(kv_iter_valid(it));
            kv_iter_entry(it, &got);
            assert_entry_eq(&got, &ents[want + 1]);
        }
    }
    /* A prefix of every key ("k") and the empty key seek to the start; a
     * key past every "k..." seeks to the end. */
    kv_iter_seek(it, (const uint8_t *)"k", 1);
    assert_true(kv_iter_valid(it));
    kv_entry first;
    kv_iter_entry(it, &first);
    assert_entry_eq(&first, &ents[0]);
    kv_iter_seek(it, (const uint8_t *)"", 0);
    assert_true(kv_iter_valid(it));
    kv_iter_entry(it, &first);
    assert_entry_eq(&first, &ents[0]);
    kv_iter_seek(it, (const uint8_t *)"l", 1);
    assert_false(kv_iter_valid(it));
    kv_iter_destroy(it);

    /* Point reads at many snapshots, for every key and every gap. */
    for (uint64_t k = 0; k <= 2 * nkeys + 3; k++) {
        char key[16];
        size_t kl = fmt_key(key, sizeof key, k);
        size_t lo = model_lower_bound(ents, n, key, kl);
        size_t hi = lo;
        while (hi < n && ents[hi].klen == kl && !memcmp(ents[hi].key, key, kl))
            hi++;
        uint64_t probes[8] = {0, 1, n / 3, n / 2, n - 1, n, KV_MAX_SEQ, 0};
        probes[7] = tu_rand(&rng) % (n + 1);
        for (size_t p = 0; p < 8 + (hi - lo) * 2; p++) {
            uint64_t max_seq;
            if (p < 8)
                max_seq = probes[p];
            else if ((p - 8) % 2 == 0)
                max_seq = ents[lo + (p - 8) / 2].seq;      /* exactly a version */
            else
                max_seq = ents[lo + (p - 8) / 2].seq - 1;  /* just below one */
            size_t want = lo;
            while (want < hi && ents[want].seq > max_seq)
                want++;
            kv_entry got;
            bool found = memtable_get(m, (const uint8_t *)key, kl, max_seq, &got);
            if (want == hi) {
                assert_false(found);
            } else {
                assert_true(found);
                assert_entry_eq(&got, &ents[want]);
            }
        }
    }
    memtable_unref(m);
    free(ents);
}

static void test_model(void **state)
{
    (void)state;
    run_model(tu_quick() ? 4000 : 20000);
}

/* More entries than one segment holds (memtable.c: SEG_ENTRIES, 32768):
 * iteration merges the segments, and gets must find the newest version at
 * or below max_seq across them -- the seqs are shuffled, so a key's newest
 * version is often in an older segment than an older version of it. */
static void test_model_many_segments(void **state)
{
    (void)state;
    run_model(tu_quick() ? 70000 : 140000);
}

/* ---- edge cases ------------------------------------------------------------- */

static void test_big_and_empty_entries(void **state)
{
    (void)state;
    memtable *m = memtable_new();
    assert_non_null(m);
    size_t big = 1u << 20;  /* bigger than an arena block */
    uint8_t *v = malloc(big);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = (uint8_t)(i * 31 + 7);
    size_t b0 = memtable_bytes(m);
    kv_entry e1 = {(const uint8_t *)"big", 3, 5, KV_PUT, v, big};
    TU_OK(memtable_add(m, &e1));
    assert_true(memtable_bytes(m) >= b0 + big);
    /* Small entries after the big one still land in a shared block and the
     * big block did not swallow them. */
    for (int i = 0; i < 100; i++) {
        char k[16];
        size_t kl = fmt_key(k, sizeof k, (uint64_t)i);
        kv_entry e = {(const uint8_t *)k, kl, (uint64_t)(10 + i), KV_PUT, (const uint8_t *)"x", 1};
        TU_OK(memtable_add(m, &e));
    }
    kv_entry e2 = {(const uint8_t *)"", 0, 1, KV_PUT, NULL, 0};  /* empty key, empty value */
    TU_OK(memtable_add(m, &e2));
    kv_entry e3 = {(const uint8_t *)"big", 3, 9, KV_DELETE, NULL, 0};
    TU_OK(memtable_add(m, &e3));

    kv_entry got;
    assert_true(memtable_get(m, (const uint8_t *)"big", 3, 8, &got));
    assert_true(got.seq == 5);
    assert_int_equal(got.kind, KV_PUT);
    assert_int_equal(got.vlen, big);
    assert_memory_equal(got.val, v, big);
    assert_true(memtable_get(m, (const uint8_t *)"big", 3, KV_MAX_SEQ, &got));
    assert_int_equal(got.kind, KV_DELETE);
    assert_true(got.seq == 9);
    assert_false(memtable_get(m, (const uint8_t *)"big", 3, 4, &got));
    assert_false(memtable_get(m, (const uint8_t *)"bi", 2, KV_MAX_SEQ, &got));
    assert_true(memtable_get(m, (const uint8_t *)"", 0, KV_MAX_SEQ, &got));
    assert_int_equal(got.klen, 0);
    assert_int_equal(got.vlen, 0);
    assert_int_equal(memtable_count(m), 103);
    assert_true(memtable_max_seq(m) == 109);

    kv_iter *it = memtable_iter_new(m);
    assert_non_null(it);
    kv_iter_seek_first(it);
    assert_true(kv_iter_valid(it));
    kv_iter_entry(it, &got);
    assert_int_equal(got.klen, 0);      /* the empty key sorts first */
    kv_iter_next(it);
    kv_iter_entry(it, &got);
    assert_memory_equal(got.key, "big", 3);
    assert_true(got.seq == 9);          /* newest first */
    kv_iter_next(it);
    kv_iter_entry(it, &got);
    assert_true(got.seq == 5);
    assert_memory_equal(got.val, v, big);
    kv_iter_destroy(it);
    memtable_unref(m);
    free(v);
    memtable_unref(NULL);  /* accepted */
}

static void test_refcount_iterator_keeps_memtable(void **state)
{
    (void)state;
    memtable *m = memtable_new();
    assert_non_null(m);
    for (uint64_t i = 0; i < 1000; i++) {
        char k[16];
        size_t kl = fmt_key(k, sizeof k, i);
        kv_entry e = {(const uint8_t *)k, kl, i + 1, KV_PUT, (const uint8_t *)k, kl};
        TU_OK(memtable_add(m, &e));
    }
    memtable_ref(m);            /* a second holder */
    kv_iter *it = memtable_iter_new(m);
    assert_non_null(it);
    memtable_unref(m);
    memtable_unref(m);          /* the creator and the second holder are gone */
    /* The iterator still reads every entry (ASan would flag a freed arena). */
    kv_iter_seek_first(it);
    uint64_t seen = 0;
    for (; kv_iter_valid(it); kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        char k[16];
        size_t kl = fmt_key(k, sizeof k, seen);
        assert_int_equal(e.klen, kl);
        assert_memory_equal(e.key, k, kl);
        assert_memory_equal(e.val, k, kl);
        seen++;
    }
    assert_true(seen == 1000);
    kv_iter_destroy(it);        /* drops the last reference: frees */
    kv_iter_destroy(NULL);
}

/* ---- one writer, two readers ---------------------------------------------- */

typedef struct race {
    memtable *m;
    size_t n;
    _Atomic size_t published;   /* entries [0, published) are in */
    _Atomic bool done;
    _Atomic int failures;
    _Atomic size_t reader_passes;
} race;

/* Entry i: key derived from i (about 4 versions per key), seq i+1, a value
 * naming both so a reader can check the bytes it got. */
static size_t race_key(char *out, size_t cap, size_t i, size_t n)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    return fmt_key(out, cap, (h >> 20) % (n / 4 + 1));
}

static size_t race_val(char *out, size_t cap, size_t i)
{
    return (size_t)snprintf(out, cap, "val-%zu", i);
}

static void *race_writer(void *arg)
{
    race *r = arg;
    for (size_t i = 0; i < r->n; i++) {
        char k[16], v[32];
        size_t kl = race_key(k, sizeof k, i, r->n), vl = race_val(v, sizeof v, i);
        kv_entry e = {(const uint8_t *)k, kl, i + 1, i % 7 == 3 ? KV_DELETE : KV_PUT,
                      (const uint8_t *)v, i % 7 == 3 ? 0 : vl};
        if (memtable_add(r->m, &e) != SHALE_OK) {
            atomic_fetch_add(&r->failures, 1);
            break;
        }
        atomic_store_explicit(&r->published, i + 1, memory_order_release);
    }
    atomic_store(&r->done, true);
    return NULL;
}

/* One full scan: strictly increasing in internal order, and at least every
 * entry published before the scan began.  Returns false on a violation. */
static bool race_scan(race *r)
{
    size_t before = atomic_load_explicit(&r->published, memory_order_acquire);
    kv_iter *it = memtable_iter_new(r->m);
    if (!it)
        return false;
    size_t seen = 0;
    char pk[16];
    kv_entry prev = {0};
    bool ok = true;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        if (seen && kv_cmp(&prev, &e) >= 0) {
            ok = false;
            break;
        }
        if (e.klen > sizeof pk || e.seq == 0 || e.seq > r->n) {
            ok = false;
            break;
        }
        memcpy(pk, e.key, e.klen);
        prev = e;
        prev.key = (const uint8_t *)pk;
        seen++;
    }
    kv_iter_destroy(it);
    return ok && seen >= before;
}

/* Point reads of published entries: get(key_i, seq_i) must return entry i
 * exactly, with its bytes. */
static bool race_gets(race *r, uint64_t *rng)
{
    for (int j = 0; j < 2000; j++) {
        size_t pub = atomic_load_explicit(&r->published, memory_order_acquire);
        if (!pub)
            return true;
        size_t i = tu_rand(rng) % pub;
        char k[16], v[32];
        size_t kl = race_key(k, sizeof k, i, r->n), vl = race_val(v, sizeof v, i);
        kv_entry e;
        if (!memtable_get(r->m, (const uint8_t *)k, kl, i + 1, &e))
            return false;
        if (e.seq != i + 1 || e.klen != kl || memcmp(e.key, k, kl))
            return false;
        if (i % 7 == 3) {
            if (e.kind != KV_DELETE || e.vlen)
                return false;
        } else if (e.kind != KV_PUT || e.vlen != vl || memcmp(e.val, v, vl)) {
            return false;
        }
    }
    return true;
}

static void *race_reader(void *arg)
{
    race *r = arg;
    uint64_t rng = (uint64_t)(uintptr_t)&rng;
    for (;;) {
        bool last = atomic_load(&r->done);
        if (!race_scan(r) || !race_gets(r, &rng)) {
            atomic_fetch_add(&r->failures, 1);
            return NULL;
        }
        atomic_fetch_add(&r->reader_passes, 1);
        if (last)
            return NULL;
    }
}

static void test_concurrent_writer_and_readers(void **state)
{
    (void)state;
    race r = {.n = tu_quick() ? 50000 : 200000};
    r.m = memtable_new();
    assert_non_null(r.m);
    atomic_init(&r.published, 0);
    atomic_init(&r.done, false);
    atomic_init(&r.failures, 0);
    atomic_init(&r.reader_passes, 0);
    pthread_t w, rd[2];
    assert_int_equal(pthread_create(&rd[0], NULL, race_reader, &r), 0);
    assert_int_equal(pthread_create(&rd[1], NULL, race_reader, &r), 0);
    assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);
    pthread_join(w, NULL);
    pthread_join(rd[0], NULL);
    pthread_join(rd[1], NULL);
    assert_int_equal(atomic_load(&r.failures), 0);
    /* Each reader made at least its final pass after the writer finished. */
    assert_true(atomic_load(&r.reader_passes) >= 2);
    assert_true(memtable_count(r.m) == r.n);
    assert_true(memtable_max_seq(r.m) == r.n);
    assert_true(race_scan(&r));
    memtable_unref(r.m);
}

/* kv_key_cmp compares eight bytes at a time: against memcmp's order (and
 * shorter-prefix-first) for keys of every length 0..40 that share prefixes
 * of every length and differ in one byte, high bit set or not. */
static int ref_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

static void test_key_compare_matches_bytewise_order(void **state)
{
    (void)state;
    uint64_t s = 7;
    uint8_t a[40], b[40];
    unsigned checked = 0;
    for (size_t al = 0; al <= 40; al++)
        for (size_t bl = 0; bl <= 40; bl++)
            for (int round = 0; round < 8; round++) {
                for (size_t i = 0; i < 40; i++)
                    a[i] = b[i] = (uint8_t)tu_rand(&s);
                size_t common = al < bl ? al : bl;
                if (common && round % 2) {         /* differ in one byte */
                    size_t at = (size_t)(tu_rand(&s) % common);
                    b[at] = (uint8_t)(a[at] ^ (round & 4 ? 0x80 : 0x01));
                }
                int want = ref_cmp(a, al, b, bl), got = kv_key_cmp(a, al, b, bl);
                if (want != got)
                    fail_msg("lengths %zu/%zu round %d: %d, memcmp order says %d", al, bl,
                             round, got, want);
                checked++;
            }
    assert_true(checked > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_model_many_segments),
        cmocka_unit_test(test_key_compare_matches_bytewise_order),
        cmocka_unit_test(test_big_and_empty_entries),
        cmocka_unit_test(test_refcount_iterator_keeps_memtable),
        cmocka_unit_test(test_concurrent_writer_and_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
