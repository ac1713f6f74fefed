/*
 * test_wal_wakes.c -- a durable put wakes only threads that have work.
 *
 * A writer waiting for durability leads its group: it seals and writes the
 * WAL itself (wal_writer.c).  Each needless wake-up of the WAL or flush
 * thread costs two context switches and a turn on the mutex on the put's
 * path; at 1 thread that was 8 context switches per put against RocksDB's
 * 3 (docs/benchmarks.md).  These tests count the threads' wake-ups (the
 * counters in shale_db, read under mu) and check that what the threads
 * are still needed for -- flushing memtables made flushable by a WAL write,
 * writing what no durable waiter will -- still happens.  And that a
 * finished write signals the durable waiters it wakes after it drops the
 * mutex (db_wakes), with their entries reused from put to put.
 */
#include "support/dbtest.h"
#include "db/db_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PUTS = 400 };

static void read_wakes(shale_db *db, uint64_t *wal, uint64_t *flush)
{
    pthread_mutex_lock(&db->mu);
    *wal = db->wal_thread_wakes;
    *flush = db->flush_thread_wakes;
    pthread_mutex_unlock(&db->mu);
}

/* One thread, 400 durable puts, memtable never full: neither the WAL
 * thread nor the flush thread has anything to do.  Before the change each
 * put woke both (about 400 wake-ups each); what is left is their timed
 * waits (manifest poll every second, nothing buffered for the WAL
 * thread's interval). */
static void test_lone_durable_writer_wakes_nobody(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("walwakes");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    dt_small_options(&o);
    o.memtable_bytes = 64u << 20;
    o.max_unflushed_bytes = 256u << 20;
    o.wal_flush_bytes = 4u << 20;
    o.manifest_poll_ms = 0;   /* the flush thread's timed wait: 1 s */
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    uint64_t wal0, flush0, wal1, flush1;
    read_wakes(db, &wal0, &flush0);
    for (unsigned i = 0; i < PUTS; i++)
        dt_put(db, i, 1);
    read_wakes(db, &wal1, &flush1);
    printf("# %u durable puts: WAL thread woke %llu times, flush thread %llu\n", PUTS,
           (unsigned long long)(wal1 - wal0), (unsigned long long)(flush1 - flush0));
    assert_true(wal1 - wal0 < PUTS / 10);
    assert_true(flush1 - flush0 < PUTS / 10);
    for (unsigned i = 0; i < PUTS; i += 37)
        dt_expect(db, i, 1);
    TU_OK(shale_close(db));
    TU_OK(shale_open(uri, &o, &db));   /* every acknowledged put is in the WAL */
    for (unsigned i = 0; i < PUTS; i++)
        dt_expect(db, i, 1);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* Durable puts from 4 threads with tiny memtables: memtables freeze all
 * the time and a WAL write is what makes each flushable, so the flush
 * thread must still be woken -- by the next freeze, or by the WAL write
 * that made the oldest frozen memtable flushable -- and not left to its
 * 1 s timed wait.  Checks that memtables were flushed to L0 while the
 * writers ran (with neither wake-up: 0 L0 SSTs, the test fails -- checked;
 * the WAL write's wake-up alone is covered by the next freeze's here) and
 * that nothing acknowledged is lost. */
typedef struct {
    shale_db *db;
    unsigned base, n;
    pthread_barrier_t *start;   /* NULL: start at once */
} wr_arg;

static void *writer(void *p)
{
    wr_arg *a = p;
    if (a->start)
        pthread_barrier_wait(a->start);
    for (unsigned i = 0; i < a->n; i++)
        dt_put(a->db, a->base + i, 1);
    return NULL;
}

static void test_durable_writers_still_wake_the_flusher(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("walwakes2");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    dt_small_options(&o);   /* 16 KiB memtables */
    o.max_unflushed_bytes = 256u << 20;   /* writers never wait for the flusher */
    o.manifest_poll_ms = 0;
    o.compactor = false;
    o.l0_max_ssts = 1000;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    enum { T = 4, N = 1500 };
    pthread_t th[T];
    wr_arg args[T];
    for (unsigned t = 0; t < T; t++) {
        args[t] = (wr_arg){db, t * N, N, NULL};
        assert_int_equal(pthread_create(&th[t], NULL, writer, &args[t]), 0);
    }
    for (unsigned t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_lock(&db->mu);
    unsigned l0 = db->man->l0_count;
    pthread_mutex_unlock(&db->mu);
    printf("# %u durable puts, 16 KiB memtables: %u L0 SSTs\n", T * N, l0);
    assert_true(l0 >= 4);
    TU_OK(shale_close(db));
    dt_reopen_expect(uri, &o, T * N, 1);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* Durable writers from 16 threads, then from 96 (more than DB_WAKE_MAX
 * can be woken by one write).  A finished write signals the waiters it
 * wakes once it has dropped the mutex: under it, at 32 threads on 2 cores,
 * the woken and the next leader blocked on the mutex the signaller held,
 * ~100 us after every write (docs/benchmarks.md).  The waiters' entries
 * are the db's, reused: one per concurrent waiter, not one per put, so a
 * signal that arrives after its waiter left lands on a live entry.  Every
 * writer returns and every acknowledged put survives a reopen; with 96
 * threads a group may ack more than DB_WAKE_MAX, the rest signalled under
 * the mutex. */
static void test_durable_waiters_signalled_after_unlock(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("walwakes3");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    dt_small_options(&o);
    o.memtable_bytes = 64u << 20;
    o.max_unflushed_bytes = 256u << 20;
    o.wal_flush_bytes = 4u << 20;   /* groups as big as the waiters */
    o.manifest_poll_ms = 0;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    enum { T1 = 16, N1 = 150, T2 = 96, N2 = 20 };
    pthread_t th[T2];
    wr_arg args[T2];
    for (unsigned t = 0; t < T1; t++) {
        args[t] = (wr_arg){db, t * N1, N1, NULL};
        assert_int_equal(pthread_create(&th[t], NULL, writer, &args[t]), 0);
    }
    for (unsigned t = 0; t < T1; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_lock(&db->mu);
    uint64_t deferred = db->dur_wakes_deferred, locked = db->dur_wakes_locked;
    uint64_t allocs = db->dur_waiter_allocs;
    pthread_mutex_unlock(&db->mu);
    printf("# %u durable puts from %u threads: %llu waiters woken after the unlock, %llu under "
           "it, %llu waiter entries\n", T1 * N1, T1, (unsigned long long)deferred,
           (unsigned long long)locked, (unsigned long long)allocs);
    assert_true(deferred > 0);
    assert_int_equal(locked, 0);
    assert_true(allocs >= 1 && allocs <= T1);
    pthread_barrier_t start;   /* all 96 waiting at once: groups past DB_WAKE_MAX */
    assert_int_equal(pthread_barrier_init(&start, NULL, T2), 0);
    for (unsigned t = 0; t < T2; t++) {
        args[t] = (wr_arg){db, T1 * N1 + t * N2, N2, &start};
        assert_int_equal(pthread_create(&th[t], NULL, writer, &args[t]), 0);
    }
    for (unsigned t = 0; t < T2; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    pthread_mutex_lock(&db->mu);
    printf("# then %u from %u threads: %llu under the mutex (past DB_WAKE_MAX), %llu entries\n",
           T2 * N2, T2, (unsigned long long)(db->dur_wakes_locked - locked),
           (unsigned long long)db->dur_waiter_allocs);
    assert_true(db->dur_waiter_allocs <= T2);
    pthread_mutex_unlock(&db->mu);
    TU_OK(shale_close(db));
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < T1 * N1 + T2 * N2; i++)
        dt_expect(db, i, 1);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lone_durable_writer_wakes_nobody),
        cmocka_unit_test(test_durable_writers_still_wake_the_flusher),
        cmocka_unit_test(test_durable_waiters_signalled_after_unlock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
