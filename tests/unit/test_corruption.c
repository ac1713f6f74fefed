/*
 * test_corruption.c -- the corruption sweep: for every kind of object the
 * engine reads (compacted SST, WAL SST, manifest), flip a byte, zero eight
 * bytes, or truncate, at many offsets.  Every read either returns the right
 * data or fails with SHALE_CORRUPT (or SHALE_NOT_FOUND for an object cut
 * to nothing) naming the object: never wrong data, never a crash (the
 * ASan+UBSan run checks the latter).
 */
#include "support/dbtest.h"
#include "db/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 120

typedef enum { FLIP, ZERO, TRUNCATE } damage;

/* Reads everything through a reader; returns SHALE_OK if all correct,
 * else the first error (asserting it is a clean corruption report). */
static shale_status read_all(const char *uri, const shale_options *o, const char *object)
{
    shale_reader *r = NULL;
    shale_status rc = shale_reader_open(uri, o, NULL, &r);
    if (rc)
        goto check;
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, i), vl = dt_val(v, sizeof v, i, 1);
        void *got = NULL;
        size_t glen = 0;
        rc = shale_reader_get(r, k, kl, &got, &glen);
        if (rc == SHALE_OK && (glen != vl || memcmp(got, v, vl)))
            fail_msg("key %u: wrong data returned after damaging %s", i, object);
        shale_free(got);
        if (rc == SHALE_NOT_FOUND)
            fail_msg("key %u: silently missing after damaging %s", i, object);
        if (rc)
            break;
    }
    if (!rc) {
        shale_iter *it = NULL;
        rc = shale_reader_scan(r, NULL, 0, NULL, 0, &it);
        unsigned n = 0;
        for (; !rc && shale_iter_valid(it); shale_iter_next(it))
            n++;
        if (!rc)
            rc = shale_iter_status(it);
        if (!rc && n != NKEYS)
            fail_msg("scan returned %u keys after damaging %s", n, object);
        shale_iter_free(it);
    }
    shale_reader_close(r);
check:
    if (rc && rc != SHALE_CORRUPT && rc != SHALE_NOT_FOUND && rc != SHALE_UNSUPPORTED)
        fail_msg("damaging %s gave %s: %s", object, shale_strerror(rc), shale_errmsg());
    if (rc && !strstr(shale_errmsg(), object))
        fail_msg("damaging %s: the message does not name it: %s", object, shale_errmsg());
    return rc;
}

static void sweep(const char *uri, const shale_options *o, shale_objstore *s, const char *key)
{
    void *orig = NULL;
    size_t len = 0;
    TU_OK(shale_objstore_get(s, key, &orig, &len));
    size_t step = len / (tu_quick() ? 12 : 40) + 1;
    unsigned detected = 0, tried = 0;
    for (int d = FLIP; d <= TRUNCATE; d++) {
        for (size_t off = 0; off < len; off += step) {
            uint8_t *bad = malloc(len + 1);
            memcpy(bad, orig, len);
            size_t blen = len;
            if (d == FLIP)
                bad[off] ^= 0x20;
            else if (d == ZERO)
                memset(bad + off, 0, off + 8 <= len ? 8 : len - off);
            else
                blen = off;
            if (blen == len && !memcmp(bad, orig, len)) {
                free(bad);
                continue;  /* zeroing zeros changes nothing */
            }
            TU_OK(shale_objstore_put(s, key, bad, blen));
            free(bad);
            tried++;
            detected += read_all(uri, o, key) != SHALE_OK;
        }
    }
    TU_OK(shale_objstore_put(s, key, orig, len));
    TU_OK(read_all(uri, o, key));   /* restored: everything reads again */
    free(orig);
    /* Every damage to a checksummed object that reads must be noticed;
     * damage in a part a reader never needs may pass, but not most. */
    fprintf(stderr, "%s: %u of %u damages detected\n", key, detected, tried);
    assert_true(detected * 2 > tried);
}

static void test_corruption_sweep(void **state)
{
    (void)state;
    char *uri = tu_mem_uri("sweep");
    shale_options o;
    dt_small_options(&o);
    o.block_cache_bytes = 0;
    o.l0_compaction_trigger = 100;   /* keep exactly the SSTs made below */
    o.l0_max_ssts = 100;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < NKEYS / 2; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));              /* an L0 SST */
    for (unsigned i = NKEYS / 2; i < NKEYS; i++)
        dt_put(db, i, 1);                         /* WAL SSTs still needed */
    TU_OK(shale_close(db));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    manifest *m = NULL;
    TU_OK(manifest_store_load_latest(s, 0, &m));
    assert_true(m->l0_count >= 1);
    char key[96];
    snprintf(key, sizeof key, "compacted/%s.sst", m->l0[0].id);
    sweep(uri, &o, s, key);
    /* a WAL SST with data the reader must replay */
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "wal/", &l));
    const char *wal = NULL;
    for (size_t i = 0; i < l.count && !wal; i++) {
        char want[64];
        snprintf(want, sizeof want, "wal/%020llu.sst",
                 (unsigned long long)(m->replay_after_wal_id + 1));
        if (strcmp(l.items[i].key, want) >= 0 && l.items[i].size > 200)
            wal = l.items[i].key;   /* one replay must read */
    }
    assert_non_null(wal);
    snprintf(key, sizeof key, "%s", wal);
    shale_objlist_free(&l);
    sweep(uri, &o, s, key);
    manifest_key(m->id, key, sizeof key);
    sweep(uri, &o, s, key);
    manifest_free(m);
    shale_objstore_close(s);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corruption_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
