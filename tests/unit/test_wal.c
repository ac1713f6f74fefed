/*
 * test_wal.c -- the WAL format (db/wal.h) on its own: a WAL buffer appended
 * in seq order is encoded in internal order (key ascending, seq
 * descending), tombstones included, and wal_read_range reads the ids in
 * order, stops at the first missing one and refuses a missing id the
 * manifest says must exist.
 */
#include "support/testutil.h"
#include "db/wal.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    kv_entry e[64];
    char bytes[64][32];
    size_t n;
    uint64_t ids[8];
    size_t nids;
} seen;

static shale_status on_entry(void *ctx, const kv_entry *e)
{
    seen *s = ctx;
    assert_true(s->n < 64 && e->klen + e->vlen < 32);
    memcpy(s->bytes[s->n], e->key, e->klen);
    if (e->vlen)
        memcpy(s->bytes[s->n] + e->klen, e->val, e->vlen);
    s->e[s->n] = *e;
    s->e[s->n].key = (uint8_t *)s->bytes[s->n];
    s->e[s->n].val = e->vlen ? (uint8_t *)s->bytes[s->n] + e->klen : NULL;
    s->n++;
    return SHALE_OK;
}

static shale_status on_sst(void *ctx, uint64_t id)
{
    seen *s = ctx;
    s->ids[s->nids++] = id;
    return SHALE_OK;
}

static void add(wal_buf *b, const char *k, uint64_t seq, const char *v)
{
    kv_entry e = {(const uint8_t *)k, strlen(k), seq, v ? KV_PUT : KV_DELETE,
                  (const uint8_t *)v, v ? strlen(v) : 0};
    TU_OK(wal_buf_add(b, &e));
}

static void put_wal(shale_objstore *s, uint64_t id, const wal_buf *b)
{
    shale_buf img = SHALE_BUF_INIT;
    TU_OK(wal_encode(512, 1, b, &img));
    char key[PATH_KEY_MAX];
    wal_key(id, key, sizeof key);
    TU_OK(shale_objstore_put_if_absent(s, key, img.data, img.len));
    buf_free(&img);
}

static void test_encode_sorts_and_read_range_stops(void **state)
{
    (void)state;
    char *uri = tu_mem_uri("walfmt");
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    char key[PATH_KEY_MAX];
    wal_key(7, key, sizeof key);
    assert_string_equal(key, "wal/00000000000000000007.sst");

    wal_buf *b = wal_buf_new(), *empty = wal_buf_new();
    assert_non_null(b);
    assert_non_null(empty);
    add(b, "m", 10, "v10");   /* appended in seq order, keys in any order */
    add(b, "c", 11, "v11");
    add(b, "m", 12, NULL);    /* a tombstone over m@10 */
    add(b, "a", 13, "v13");
    assert_int_equal(wal_buf_count(b), 4);
    assert_true(wal_buf_bytes(b) >= 4 + 9);
    put_wal(s, 1, empty);     /* a fence: no entries */
    put_wal(s, 2, b);
    /* id 3 missing, 4 present: replay stops at 3. */
    put_wal(s, 4, b);

    manifest *m = manifest_new();
    assert_non_null(m);
    m->replay_after_wal_id = 0;
    m->next_wal_sst_id = 3;
    seen got = {0};
    wal_replay_cb cb = {on_entry, on_sst, &got};
    uint64_t first_free = 0;
    TU_OK(wal_read_range(s, "test", m, 0, &cb, &first_free));
    assert_int_equal(first_free, 3);
    assert_int_equal(got.nids, 2);
    assert_int_equal(got.ids[0], 1);
    assert_int_equal(got.ids[1], 2);
    static const struct { const char *k; uint64_t seq; const char *v; } want[] = {
        {"a", 13, "v13"}, {"c", 11, "v11"}, {"m", 12, NULL}, {"m", 10, "v10"},
    };
    assert_int_equal(got.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(got.e[i].klen, strlen(want[i].k));
        assert_memory_equal(got.e[i].key, want[i].k, got.e[i].klen);
        assert_int_equal(got.e[i].seq, want[i].seq);
        assert_int_equal(got.e[i].kind, want[i].v ? KV_PUT : KV_DELETE);
        if (want[i].v)
            assert_memory_equal(got.e[i].val, want[i].v, strlen(want[i].v));
        else
            assert_int_equal(got.e[i].vlen, 0);
    }
    /* The manifest says ids below 5 exist: the gap at 3 is lost data. */
    m->next_wal_sst_id = 5;
    memset(&got, 0, sizeof got);
    TU_RC(SHALE_NOT_FOUND, wal_read_range(s, "test", m, 0, &cb, &first_free));
    assert_non_null(strstr(shale_errmsg(), "wal/00000000000000000003.sst"));
    manifest_free(m);
    wal_buf_free(b);
    wal_buf_free(empty);
    wal_buf_free(NULL);
    shale_objstore_close(s);
    free(uri);
}

/* A big buffer goes through the radix sort (small ones through qsort):
 * keys of 0..40 bytes from a small alphabet, so that many share their
 * first 16 bytes or more, some are written several times and some are
 * tombstones.  Replay must see exactly the reference order (kv_cmp);
 * level 0 stores the blocks raw (the writer's choice for a local WAL
 * store) and a zstd level compresses them (its choice for S3). */
typedef struct bigseen {
    kv_entry *e;
    uint8_t (*bytes)[96];
    size_t n, cap;
} bigseen;

static shale_status on_big(void *ctx, const kv_entry *e)
{
    bigseen *s = ctx;
    assert_true(s->n < s->cap && e->klen + e->vlen <= 96);
    if (e->klen)   /* an empty key may come back as NULL */
        memcpy(s->bytes[s->n], e->key, e->klen);
    if (e->vlen)
        memcpy(s->bytes[s->n] + e->klen, e->val, e->vlen);
    s->e[s->n] = *e;
    s->e[s->n].key = s->bytes[s->n];
    s->e[s->n].val = e->vlen ? s->bytes[s->n] + e->klen : NULL;
    s->n++;
    return SHALE_OK;
}

static int ref_cmp(const void *a, const void *b)
{
    return kv_cmp(a, b);
}

static void test_big_buffer_sorted_like_kv_cmp(void **state)
{
    (void)state;
    enum { N = 6000 };
    static uint8_t keys[N][40], vals[N][48];
    static kv_entry ref[N];
    wal_buf *b = wal_buf_new();
    assert_non_null(b);
    uint64_t r = 12345;
    size_t vbytes = 0;
    for (size_t i = 0; i < N; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t klen = (r >> 33) % 41;
        if (i % 7 == 3 && i > 10) {      /* an earlier key again */
            size_t j = (r >> 20) % i;
            memcpy(keys[i], ref[j].key, ref[j].klen);
            klen = ref[j].klen;
        } else {
            for (size_t k = 0; k < klen; k++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                /* mostly 'a': long shared prefixes; bytes 0 and 255 too */
                uint64_t x = (r >> 40) % 16;
                keys[i][k] = x < 12 ? 'a' : x == 12 ? 0 : x == 13 ? 255 : (uint8_t)('a' + x);
            }
        }
        memset(vals[i], 'x', sizeof vals[i]);
        bool del = i % 11 == 5;
        ref[i] = (kv_entry){keys[i], klen, 100 + i, del ? KV_DELETE : KV_PUT,
                            del ? NULL : vals[i], del ? 0 : sizeof vals[i]};
        vbytes += ref[i].vlen;
        TU_OK(wal_buf_add(b, &ref[i]));
    }
    qsort(ref, N, sizeof *ref, ref_cmp);

    char *uri = tu_mem_uri("walbig");
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    shale_buf img = SHALE_BUF_INIT;
    TU_OK(wal_encode(4096, 3, b, &img));
    size_t zlen = img.len;
    buf_free(&img);
    TU_OK(wal_encode(4096, 0, b, &img));
    assert_true(img.len > vbytes);       /* raw: 'x' * 48 would compress */
    assert_true(zlen < img.len / 2);     /* and does at level 3 */
    char key[PATH_KEY_MAX];
    wal_key(1, key, sizeof key);
    TU_OK(shale_objstore_put_if_absent(s, key, img.data, img.len));
    buf_free(&img);

    manifest *m = manifest_new();
    assert_non_null(m);
    m->next_wal_sst_id = 2;
    bigseen got = {calloc(N, sizeof *got.e), calloc(N, sizeof *got.bytes), 0, N};
    assert_non_null(got.e);
    assert_non_null(got.bytes);
    wal_replay_cb cb = {on_big, NULL, &got};
    uint64_t first_free = 0;
    TU_OK(wal_read_range(s, "test", m, 0, &cb, &first_free));
    assert_int_equal(first_free, 2);
    assert_int_equal(got.n, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(got.e[i].seq, ref[i].seq);
        assert_int_equal(got.e[i].klen, ref[i].klen);
        if (ref[i].klen)
            assert_memory_equal(got.e[i].key, ref[i].key, ref[i].klen);
        assert_int_equal(got.e[i].kind, ref[i].kind);
        assert_int_equal(got.e[i].vlen, ref[i].vlen);
    }
    free(got.e);
    free(got.bytes);
    manifest_free(m);
    wal_buf_free(b);
    shale_objstore_close(s);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_sorts_and_read_range_stops),
        cmocka_unit_test(test_big_buffer_sorted_like_kv_cmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
