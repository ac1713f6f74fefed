/*
 * test_wal_pipeline.c -- the two-phase WAL put on the file:// WAL log
 * (objstore_fs_log.h, fs_log_wal_claim / fs_log_wal_sync) and the WAL
 * writer that overlaps the next group's claim with a group's fdatasync
 * (db/wal_writer.c).
 *
 * The store: a claimed id fences a rival before it is synced; a sync
 * covered by a later one needs no fdatasync of its own; a failed
 * fdatasync fails every sync after it, even one whose own fdatasync
 * would succeed.  The writer: group N's fdatasync fails while group N+1
 * is already claimed (held there by wal_writer_set_sync_hook): neither is
 * acknowledged.  And a writer with many threads doing durable puts,
 * SIGKILLed while it reports each acknowledged key through a pipe: every
 * reported key is there after reopening.
 */
#include "support/dbtest.h"
#include "db/db_int.h"
#include "objstore/objstore_int.h"
#include "objstore/objstore_fs_log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *g_dir;

static void wk(uint64_t id, char *k, size_t n)
{
    snprintf(k, n, "wal/%020llu.sst", (unsigned long long)id);
}

static shale_objstore *open_log_store(const char *uri)
{
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = 1;
    o.fs_no_fsync = false;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, &o, &s));
    return s;
}

static void claim(shale_objstore *s, uint64_t id, fs_log_ticket *t)
{
    char k[64];
    wk(id, k, sizeof k);
    bool handled = false;
    TU_OK(fs_log_wal_claim(s, k, "payload", 7, &handled, t));
    assert_true(handled);
    assert_non_null(t->log);
}

static void test_store_claim_then_sync(void **state)
{
    (void)state;
    char *uri = tu_file_uri(g_dir, "store");
    shale_objstore *s = open_log_store(uri), *rival = open_log_store(uri);
    char k[64];
    fs_log_ticket t2, t3, t4, t5;
    bool handled = true;
    /* The handle's first create-if-absent is a regular file (the fence a
     * binary without the log sees): not claimed by the two-phase put. */
    wk(1, k, sizeof k);
    TU_OK(fs_log_wal_claim(s, k, "x", 1, &handled, &t2));
    assert_false(handled);
    TU_OK(shale_objstore_put_if_absent(s, k, "x", 1));
    /* Claimed but not synced: the id is taken for every rival already. */
    claim(s, 2, &t2);
    wk(2, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(rival, k, "r", 1));
    TU_OK(fs_log_wal_sync(&t2));
    /* A later sync covers an earlier claim: no fdatasync of its own (an
     * armed failure stays unused). */
    claim(s, 4, &t4);
    claim(s, 5, &t5);
    TU_OK(fs_log_wal_sync(&t5));
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync("file", "wal/", 1, 1));
    TU_OK(fs_log_wal_sync(&t4));
    assert_int_equal(objstore_fs_fsync_failures(), before);
    /* Two claims in flight; the first sync's fdatasync fails: the second
     * fails too, though its own fdatasync would succeed (the hook fails
     * once), and the store takes no more claims. */
    claim(s, 6, &t2);
    claim(s, 7, &t3);
    assert_int_not_equal(fs_log_wal_sync(&t2), SHALE_OK);
    assert_non_null(strstr(shale_errmsg(), "fdatasync"));
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    assert_int_not_equal(fs_log_wal_sync(&t3), SHALE_OK);
    wk(8, k, sizeof k);
    TU_RC(SHALE_CLOSED, fs_log_wal_claim(s, k, "y", 1, &handled, &t5));
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    shale_objstore_close(s);
    shale_objstore_close(rival);
    free(uri);
}

/* ---- the writer: N's fdatasync fails while N+1 is claimed ------------- */

typedef struct hold {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    bool a_done, timed_out;
} hold;

static hold g_hold = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};

/* Waits on g_hold.cv until *flag, or 30 s (a broken writer must fail the
 * test, not hang it).  g_hold.mu held. */
static void hold_wait(bool (*ready)(void))
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    while (!ready())
        if (pthread_cond_timedwait(&g_hold.cv, &g_hold.mu, &dl)) {
            g_hold.timed_out = true;
            return;
        }
}

static bool second_claimed(void) { return g_hold.calls >= 2; }
static bool first_claimed(void) { return g_hold.calls >= 1; }
static bool a_returned(void) { return g_hold.a_done; }

/* First call (group N, claimed): waits until N+1 is claimed too, then
 * makes the next WAL fdatasync fail -- N's.  Second call (N+1): waits
 * until N's put returned, so N+1's sync comes after N's failure. */
static void hold_hook(void *ctx, uint64_t id)
{
    (void)ctx;
    (void)id;
    pthread_mutex_lock(&g_hold.mu);
    int me = ++g_hold.calls;
    pthread_cond_broadcast(&g_hold.cv);
    if (me == 1) {
        hold_wait(second_claimed);
        if (objstore_fs_fail_fsync("file", "wal/", 1, 1))
            g_hold.timed_out = true;
    } else if (me == 2) {
        hold_wait(a_returned);
    }
    pthread_mutex_unlock(&g_hold.mu);
}

typedef struct putter {
    shale_db *db;
    unsigned i;
    shale_status rc;
} putter;

static void *put_thread(void *arg)
{
    putter *p = arg;
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, p->i), vl = dt_val(v, sizeof v, p->i, 1);
    p->rc = shale_put(p->db, k, kl, v, vl);
    if (p->i == 100) {
        pthread_mutex_lock(&g_hold.mu);
        g_hold.a_done = true;
        pthread_cond_broadcast(&g_hold.cv);
        pthread_mutex_unlock(&g_hold.mu);
    }
    return NULL;
}

static void durable_options(shale_options *o)
{
    dt_small_options(o);
    o->store.fs_no_fsync = false;
    o->store.fs_wal_log = 0;   /* the default: the log mode */
    o->await_durable = true;
}

static void test_writer_acks_neither_group(void **state)
{
    (void)state;
    char *uri = tu_file_uri(g_dir, "db1");
    shale_options o;
    durable_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 10; i++)
        dt_put(db, i, 1);
    long before = objstore_fs_fsync_failures();
    wal_writer_set_sync_hook(hold_hook, NULL);
    putter a = {db, 100, SHALE_OK}, b = {db, 101, SHALE_OK};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, put_thread, &a), 0);
    pthread_mutex_lock(&g_hold.mu);
    hold_wait(first_claimed);          /* group N (key 100) is claimed and held */
    pthread_mutex_unlock(&g_hold.mu);
    assert_int_equal(pthread_create(&tb, NULL, put_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    wal_writer_set_sync_hook(NULL, NULL);
    assert_false(g_hold.timed_out);
    assert_int_equal(g_hold.calls, 2);  /* N+1 was claimed before N's sync */
    assert_int_not_equal(a.rc, SHALE_OK);
    assert_int_not_equal(b.rc, SHALE_OK);
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    assert_int_not_equal(shale_flush_wal(db), SHALE_OK);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 102), vl = dt_val(v, sizeof v, 102, 1);
    assert_int_not_equal(shale_put(db, k, kl, v, vl), SHALE_OK);
    (void)shale_close(db);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 10; i++)
        dt_expect(db, i, 1);
    dt_put(db, 103, 1);
    TU_OK(shale_close(db));
    free(uri);
}

/* ---- many durable writers, SIGKILLed ------------------------------------ */

#define KILL_THREADS 8
#define KILL_ACKS 3000
#define PER_THREAD 1000000u

typedef struct killer {
    shale_db *db;
    unsigned t;
    int fd;
} killer;

static void *kill_writer(void *arg)
{
    killer *w = arg;
    for (unsigned n = 0;; n++) {
        unsigned i = w->t * PER_THREAD + n;
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, i), vl = dt_val(v, sizeof v, i, 1);
        if (shale_put(w->db, k, kl, v, vl))
            _exit(3);
        if (write(w->fd, &i, sizeof i) != sizeof i)   /* atomic: < PIPE_BUF */
            _exit(4);
    }
    return NULL;
}

static void test_sigkill_many_durable_writers(void **state)
{
    (void)state;
    char *uri = tu_file_uri(g_dir, "db2");
    shale_options o;
    durable_options(&o);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        shale_db *db = NULL;
        if (shale_open(uri, &o, &db))
            _exit(2);
        killer w[KILL_THREADS];
        pthread_t th[KILL_THREADS];
        for (unsigned t = 0; t < KILL_THREADS; t++) {
            w[t] = (killer){db, t, fds[1]};
            if (pthread_create(&th[t], NULL, kill_writer, &w[t]))
                _exit(5);
        }
        pthread_join(th[0], NULL);
        _exit(6);
    }
    close(fds[1]);
    unsigned *acked = malloc(sizeof *acked * (KILL_ACKS + 4096));
    size_t n = 0, cap = KILL_ACKS + 4096;
    unsigned i;
    while (n < KILL_ACKS && read(fds[0], &i, sizeof i) == sizeof i)
        acked[n++] = i;
    kill(pid, SIGKILL);           /* mid-stream: claims and syncs in flight */
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    while (read(fds[0], &i, sizeof i) == sizeof i) {   /* acknowledged before the kill */
        if (n == cap)
            acked = realloc(acked, sizeof *acked * (cap *= 2));
        acked[n++] = i;
    }
    close(fds[0]);
    assert_true(n >= KILL_ACKS);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (size_t j = 0; j < n; j++)
        dt_expect(db, acked[j], 1);
    dt_put(db, 7, 2);             /* the reopened writer works */
    TU_OK(shale_close(db));
    free(acked);
    free(uri);
}

int main(void)
{
    g_dir = tu_tmpdir("walpipe");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_claim_then_sync),
        cmocka_unit_test(test_writer_acks_neither_group),
        cmocka_unit_test(test_sigkill_many_durable_writers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(g_dir);
    free(g_dir);
    return rc;
}
