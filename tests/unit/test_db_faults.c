/*
 * test_db_faults.c -- the writer under faults: fencing, replay across a
 * missing WAL, corruption, concurrent and fenced durable writers, a
 * SIGKILLed writer, writes that took effect despite errors, bad arguments.
 * The happy paths (levels, scans, batches, compaction) are in test_db.c.
 * Most cases run on mem:// and file:// (the state names the backend).
 */
#include "support/crashtest.h"
#include "support/dbtest.h"
#include "table/sst_table.h"
#include "util/misc.h"
#include "db/db_int.h"
#include "db/manifest.h"
#include "objstore/objstore_fault.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend(void **state)
{
    return *state ? (const char *)*state : "mem";
}

static void test_fencing_two_writers(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "fence", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(uri, &o, &a));
    for (unsigned i = 0; i < 50; i++)
        dt_put(a, i, 1);                     /* acknowledged by a */
    TU_OK(shale_open(uri, &o, &b));          /* fences a */
    for (unsigned i = 0; i < 50; i++)
        dt_expect(b, i, 1);                  /* nothing a acknowledged is lost */
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 1000), vl = dt_val(v, sizeof v, 1000, 1);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    assert_non_null(strstr(shale_errmsg(), "fenced"));
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));   /* and stays fenced */
    dt_put(b, 1000, 2);
    shale_close(a);
    TU_OK(shale_close(b));
    shale_db *c = NULL;
    TU_OK(shale_open(uri, &o, &c));
    dt_expect(c, 1000, 2);                   /* a's refused write never appears */
    shale_db_info info;
    TU_OK(shale_db_info_get(c, &info));
    assert_int_equal(info.writer_epoch, 3);
    TU_OK(shale_close(c));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

static void test_replay_stops_at_first_missing_wal(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "gap", &dir);
    shale_options o;
    dt_small_options(&o);
    o.wal_flush_interval_ms = 100000;        /* WAL SSTs only when we flush */
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    uint64_t fence = info.next_wal_sst_id - 1;
    for (unsigned i = 0; i < 3; i++) {       /* WAL ids fence+1 .. fence+3 */
        dt_put(db, i, 1);
        TU_OK(shale_flush_wal(db));
    }
    TU_OK(shale_close(db));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    char key[64];
    snprintf(key, sizeof key, "wal/%020llu.sst", (unsigned long long)(fence + 2));
    TU_OK(shale_objstore_head(s, key, NULL, NULL));
    TU_OK(shale_objstore_delete(s, key));
    shale_objstore_close(s);
    TU_OK(shale_open(uri, &o, &db));
    dt_expect(db, 0, 1);                     /* before the gap: replayed */
    dt_expect(db, 1, 0);                     /* the missing one */
    dt_expect(db, 2, 0);                     /* after the gap: not replayed */
    shale_close(db);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

static void test_missing_needed_wal_is_not_found(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "needwal", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    dt_put(db, 1, 1);
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    TU_OK(shale_close(db));
    /* The next open records next_wal_sst_id past the first write's WAL, so
     * that WAL is needed: deleting it must fail the open, naming it. */
    TU_OK(shale_open(uri, &o, &db));
    TU_OK(shale_close(db));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    char key[64];
    snprintf(key, sizeof key, "wal/%020llu.sst", (unsigned long long)(info.replay_after_wal_id + 1));
    TU_OK(shale_objstore_delete(s, key));
    shale_objstore_close(s);
    TU_RC(SHALE_NOT_FOUND, shale_open(uri, &o, &db));
    assert_non_null(strstr(shale_errmsg(), key));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* The key of the first SST of the newest sorted run (malloc'd). */
static char *first_run_sst(const char *uri)
{
    shale_objstore *s = NULL;
    manifest *m = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    TU_OK(manifest_store_load_latest(s, 0, &m));
    assert_true(m->run_count > 0 && m->runs[0].count > 0);
    char *k = malloc(64);
    snprintf(k, 64, "compacted/%s.sst", m->runs[0].ssts[0].id);
    manifest_free(m);
    shale_objstore_close(s);
    return k;
}

static void test_corrupt_sst_and_manifest(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "corrupt", &dir);
    shale_options o;
    dt_small_options(&o);
    o.block_cache_bytes = 0;
    shale_db *db = dt_open_fill(uri, &o, 200, 1);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    char *key = first_run_sst(uri);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    void *data = NULL;
    size_t len = 0;
    TU_OK(shale_objstore_get(s, key, &data, &len));
    /* A flipped byte in the first data block: every read either returns
     * the right value or SHALE_CORRUPT naming the object. */
    ((uint8_t *)data)[len / 4] ^= 0x5a;
    TU_OK(shale_objstore_put(s, key, data, len));
    TU_OK(shale_open(uri, &o, &db));
    unsigned corrupt = 0;
    for (unsigned i = 0; i < 200; i++) {
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, i), vl = dt_val(v, sizeof v, i, 1);
        void *got = NULL;
        size_t glen = 0;
        shale_status rc = shale_get(db, NULL, k, kl, &got, &glen);
        if (rc == SHALE_CORRUPT) {
            assert_non_null(strstr(shale_errmsg(), key));
            corrupt++;
            continue;
        }
        TU_OK(rc);
        assert_int_equal(glen, vl);
        assert_memory_equal(got, v, vl);
        shale_free(got);
    }
    assert_true(corrupt > 0);
    TU_RC(SHALE_CORRUPT, shale_verify(uri, &o, NULL));
    shale_close(db);
    /* Truncated: opening the SST fails as corrupt, naming it. */
    TU_OK(shale_objstore_put(s, key, data, len / 2));
    TU_OK(shale_open(uri, &o, &db));
    char k0[32];
    size_t k0l = dt_key(k0, sizeof k0, 0);
    void *got = NULL;
    size_t glen;
    shale_status rc = shale_get(db, NULL, k0, k0l, &got, &glen);
    if (rc != SHALE_CORRUPT && rc != SHALE_OK)
        fail_msg("truncated SST: get returned %s: %s", shale_strerror(rc), shale_errmsg());
    if (rc == SHALE_OK)
        shale_free(got);
    shale_iter *it = NULL;
    rc = shale_scan(db, NULL, NULL, 0, NULL, 0, &it);
    if (rc == SHALE_OK) {
        while (shale_iter_valid(it))
            shale_iter_next(it);
        rc = shale_iter_status(it);
        shale_iter_free(it);
    }
    assert_int_equal(rc, SHALE_CORRUPT);
    assert_non_null(strstr(shale_errmsg(), key));
    shale_close(db);
    free(data);
    /* A manifest that is not JSON. */
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "manifest/", &l));
    char mkey[64];
    snprintf(mkey, sizeof mkey, "manifest/%020llu.manifest", (unsigned long long)(l.count + 50));
    shale_objlist_free(&l);
    TU_OK(shale_objstore_put(s, mkey, "not json {", 10));
    TU_RC(SHALE_CORRUPT, shale_open(uri, &o, &db));
    assert_non_null(strstr(shale_errmsg(), "manifest/"));
    shale_objstore_close(s);
    free(key);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

typedef struct writer_arg {
    shale_db *db;
    unsigned base, n;
} writer_arg;

static void *writer_thread(void *p)
{
    writer_arg *a = p;
    for (unsigned i = 0; i < a->n; i++) {
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, a->base + i), vl = dt_val(v, sizeof v, a->base + i, 1);
        if (shale_put(a->db, k, kl, v, vl))
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_durable_writers(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "threads", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    enum { T = 4 };
    unsigned per = tu_quick() ? 100 : 400;
    pthread_t th[T];
    writer_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t] = (writer_arg){db, (unsigned)t * per, per};
        assert_int_equal(pthread_create(&th[t], NULL, writer_thread, &args[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        void *r;
        pthread_join(th[t], &r);
        assert_null(r);
    }
    TU_OK(shale_close(db));
    dt_reopen_expect(uri, &o, T * per, 1);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* Durable writers keep putting until a put fails; each counts what was
 * acknowledged. */
typedef struct fenced_arg {
    shale_db *db;
    unsigned base, acked;
    shale_status last;
} fenced_arg;

static void *until_refused(void *p)
{
    fenced_arg *a = p;
    for (unsigned i = 0;; i++) {
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, a->base + i), vl = dt_val(v, sizeof v, a->base + i, 1);
        if ((a->last = shale_put(a->db, k, kl, v, vl)))
            return NULL;
        a->acked = i + 1;
    }
}

/* 16 writers waiting for durability in groups (each woken on its own:
 * the acknowledged ones and the next leader) are all woken when a newer
 * writer fences theirs mid-stream: every one returns SHALE_FENCED (none
 * hangs), and everything they were told was durable is in the new
 * writer's view. */
static void test_fenced_durable_waiters_all_return(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "fencewait", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(uri, &o, &a));
    enum { T = 16 };
    pthread_t th[T];
    fenced_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t] = (fenced_arg){a, (unsigned)t * 100000, 0, SHALE_OK};
        assert_int_equal(pthread_create(&th[t], NULL, until_refused, &args[t]), 0);
    }
    /* Open the rival once the writers are going (a few groups in). */
    for (;;) {
        shale_db_info info;
        TU_OK(shale_db_info_get(a, &info));
        if (info.last_seq >= 64)
            break;
        sched_yield();
    }
    TU_OK(shale_open(uri, &o, &b));          /* fences a */
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].last, SHALE_FENCED);
        for (unsigned i = 0; i < args[t].acked; i++)
            dt_expect(b, args[t].base + i, 1);
    }
    shale_close(a);
    TU_OK(shale_close(b));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* The crash test's child: 3-key batches from batch number first on, each
 * acknowledged (its number on the pipe) once shale_write returned. */
typedef struct batch_writer {
    const char *uri;
    const shale_options *o;
    unsigned first;
} batch_writer;

static void write_batches(void *arg, int ack)
{
    const batch_writer *w = arg;
    shale_db *db = NULL;
    if (shale_open(w->uri, w->o, &db))
        ct_die(3, "open");
    for (unsigned b = w->first;; b++) {
        shale_batch *bt = shale_batch_new();
        for (unsigned j = 0; j < 3; j++) {
            char k[32], v[96];
            size_t kl = dt_key(k, sizeof k, b * 3 + j), vl = dt_val(v, sizeof v, b * 3 + j, 1);
            shale_batch_put(bt, k, kl, v, vl);
        }
        if (shale_write(db, bt))
            ct_die(4, "write");
        shale_batch_free(bt);
        ct_ack(ack, &b, sizeof b);
    }
}

/* A child writes 3-key batches with await_durable and reports each
 * acknowledged batch on a pipe; the parent SIGKILLs it at a random point,
 * reopens, and checks every acknowledged batch is whole and no batch is
 * partial. */
static void test_crash_loses_nothing_acknowledged(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("crash");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    dt_small_options(&o);
    unsigned rounds = tu_quick() ? 25 : 200;
    uint64_t rng = 42;
    unsigned next = 0;            /* batch numbers keep growing across rounds */
    unsigned char *acked = calloc(1u << 20, 1);
    assert_non_null(acked);
    for (unsigned r = 0; r < rounds; r++) {
        batch_writer w = {uri, &o, next};
        ct_child c;
        ct_start(&c, write_batches, &w);
        unsigned want = 1 + (unsigned)(tu_rand(&rng) % 40), got = 0, b;
        while (got < want && ct_recv(&c, &b, sizeof b)) {
            acked[b] = 1;
            got++;
            next = b + 1;
        }
        ct_kill(&c);
        while (ct_recv(&c, &b, sizeof b)) {   /* acks before death */
            acked[b] = 1;
            next = b + 1;
        }
        next += 64;               /* unacknowledged numbers are never reused */
    }
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned b = 0; b < next; b++) {
        unsigned present = 0;
        for (unsigned j = 0; j < 3; j++) {
            char k[32];
            size_t kl = dt_key(k, sizeof k, b * 3 + j);
            void *v = NULL;
            size_t vl;
            shale_status rc = shale_get(db, NULL, k, kl, &v, &vl);
            if (rc == SHALE_OK) {
                present++;
                shale_free(v);
            } else {
                TU_RC(SHALE_NOT_FOUND, rc);
            }
        }
        if (acked[b] && present != 3)
            fail_msg("batch %u was acknowledged but %u of 3 keys are present", b, present);
        if (present != 0 && present != 3)
            fail_msg("batch %u is partial: %u of 3 keys", b, present);
    }
    TU_OK(shale_close(db));
    free(acked);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A WAL write that took effect but reported a timeout, and a manifest write
 * likewise: the retry finds its own bytes and carries on; nothing is lost
 * and the writer is not mistaken for fenced. */
static void test_writes_that_took_effect_despite_errors(void **state)
{
    (void)state;
    shale_fault *f = NULL;
    char *u = tu_fault_mem_uri("aftereffect", &f);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(u, &o, &db));
    TU_OK(objstore_fault_parse(f, "put_if_absent:wal/:nth=2:timeout:after;"
                                  "put_if_absent:manifest/:nth=1:timeout:after"));
    for (unsigned i = 0; i < 50; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    assert_true(shale_fault_injected(f) >= 2);
    for (unsigned i = 0; i < 50; i++)
        dt_expect(db, i, 1);
    TU_OK(shale_close(db));
    dt_reopen_expect(u, &o, 50, 1);
    free(u);
}

static void test_bad_options_and_args(void **state)
{
    (void)state;
    shale_options o;
    shale_options_init(&o);
    o.memtable_bytes = 10;
    shale_db *db = NULL;
    char *uri = tu_mem_uri("badopts");
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open(uri, &o, &db));
    assert_null(db);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open("nowhere", NULL, &db));
    shale_options_init(&o);
    o.create_if_missing = false;
    TU_RC(SHALE_NOT_FOUND, shale_open(uri, &o, &db));
    free(uri);
}

int main(void)
{
    static char mem[] = "mem", file[] = "file", fault[] = "fault";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_fencing_two_writers, mem),
        cmocka_unit_test_prestate(test_fencing_two_writers, file),
        cmocka_unit_test_prestate(test_fencing_two_writers, fault),
        cmocka_unit_test_prestate(test_replay_stops_at_first_missing_wal, mem),
        cmocka_unit_test_prestate(test_replay_stops_at_first_missing_wal, file),
        cmocka_unit_test_prestate(test_missing_needed_wal_is_not_found, mem),
        cmocka_unit_test_prestate(test_missing_needed_wal_is_not_found, file),
        cmocka_unit_test_prestate(test_corrupt_sst_and_manifest, mem),
        cmocka_unit_test_prestate(test_corrupt_sst_and_manifest, file),
        cmocka_unit_test_prestate(test_concurrent_durable_writers, mem),
        cmocka_unit_test_prestate(test_concurrent_durable_writers, file),
        cmocka_unit_test_prestate(test_concurrent_durable_writers, fault),
        cmocka_unit_test_prestate(test_fenced_durable_waiters_all_return, mem),
        cmocka_unit_test_prestate(test_fenced_durable_waiters_all_return, file),
        cmocka_unit_test(test_crash_loses_nothing_acknowledged),
        cmocka_unit_test(test_writes_that_took_effect_despite_errors),
        cmocka_unit_test(test_bad_options_and_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
