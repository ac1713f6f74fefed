/*
 * test_fsync_failure.c -- a failed fsync is sticky (the lesson PostgreSQL
 * learnt): the file:// store and the writer on it refuse every later write
 * and acknowledge nothing written after the failure, until reopened.
 *
 * Failures are injected with objstore_fs_fail_fsync() (and, in a child,
 * SHALE_TEST_FS_FSYNC_FAIL): the real fsync runs and its result is replaced
 * by EIO, so the code under test is the path a disk error takes.  fsync is
 * on in every case here (the other tests run with fs_no_fsync).
 *
 * The writer cases run twice: with the WAL log mode (the default on
 * file://: a WAL put is a record in a segment, made durable by fdatasync,
 * the "file" kind of the hook) and without it (fs_wal_log -1: a WAL SST is
 * a file of its own, whose directory entry is the "dir" fsync).
 */
#include "support/crashtest.h"
#include "support/dbtest.h"
#include "objstore/objstore_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void durable_options(shale_options *o)
{
    dt_small_options(o);
    o->store.fs_no_fsync = false;
    o->await_durable = true;
}

/* How a writer case runs: the WAL in a store of its own or in the main
 * one; in the WAL log mode or as files. */
typedef struct wal_mode {
    bool separate, log;
} wal_mode;

static void wal_mode_options(const wal_mode *m, shale_options *o)
{
    o->store.fs_wal_log = m->log ? 0 : -1;
}

/* The fsync a WAL put makes durable with: the log's fdatasync, or the
 * directory entry of the WAL SST's file. */
static const char *wal_sync_kind(const wal_mode *m)
{
    return m->log ? "file" : "dir";
}

static bool exists(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat st;
    return stat(p, &st) == 0;
}

/* Every kind of fsync the store makes: the object's data, its directory
 * entry, a new directory, a deletion.  Each failure fails its call with
 * SHALE_IO naming the fsync, and every later put and delete on the store
 * is refused with SHALE_CLOSED naming the first failure -- even though the
 * hook fails only once, so a retried fsync would succeed. */
static void test_store_refuses_writes_after_fsync_failure(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *prefix, *key;
        bool del;            /* fail the delete of key instead of its put */
        bool visible;        /* the object is in place after the failure */
    } cases[] = {
        {"file", "a/", "a/x", false, false},   /* data: never linked */
        {"dir", "b/x", "b/x", false, true},    /* new dir "b" is fsynced first: nth 2 below */
        {"dir", "c/", "c/x", false, false},    /* the new directory's entry */
        {"dir", "d/", "d/x", true, false},     /* the deletion */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "fsfail%zu", i);
        char *dir = tu_tmpdir(name), *uri = tu_file_uri(dir, "s");
        shale_objstore *s = NULL;
        TU_OK(shale_objstore_open(uri, NULL, &s));
        if (cases[i].del)
            TU_OK(shale_objstore_put(s, cases[i].key, "v", 1));
        long before = objstore_fs_fsync_failures();
        /* b/x: the first dir fsync for the key is the new directory "b"'s
         * entry in the root, the second the object's entry in "b". */
        TU_OK(objstore_fs_fail_fsync(cases[i].kind, cases[i].prefix, i == 1 ? 2 : 1, 1));
        shale_status rc = cases[i].del ? shale_objstore_delete(s, cases[i].key)
                                       : shale_objstore_put_if_absent(s, cases[i].key, "v", 1);
        TU_RC(SHALE_IO, rc);
        assert_non_null(strstr(shale_errmsg(), "fsync"));
        assert_non_null(strstr(shale_errmsg(), "refuses writes"));
        assert_int_equal(objstore_fs_fsync_failures(), before + 1);
        char rel[64];
        snprintf(rel, sizeof rel, "s/%s", cases[i].key);
        if (!cases[i].del)
            assert_int_equal(exists(dir, rel), cases[i].visible);
        /* The hook is spent: only the store's memory of the failure
         * refuses these. */
        TU_RC(SHALE_CLOSED, shale_objstore_put_if_absent(s, cases[i].key, "v", 1));
        assert_non_null(strstr(shale_errmsg(), "an earlier fsync"));
        assert_non_null(strstr(shale_errmsg(), cases[i].key));
        TU_RC(SHALE_CLOSED, shale_objstore_put(s, "other/y", "w", 1));
        TU_RC(SHALE_CLOSED, shale_objstore_delete(s, "other/y"));
        assert_false(exists(dir, "s/other/y"));
        uint64_t size;
        int64_t mt;
        TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, "other/y", &size, &mt));  /* reads go on */
        shale_objstore_close(s);
        /* A new handle starts clean. */
        TU_OK(shale_objstore_open(uri, NULL, &s));
        TU_OK(shale_objstore_put(s, "other/y", "w", 1));
        shale_objstore_close(s);
        TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
        tu_rmtree(dir);
        free(dir);
        free(uri);
    }
    TU_RC(SHALE_INVALID_ARGUMENT, objstore_fs_fail_fsync("disk", "", 1, 1));
    TU_RC(SHALE_INVALID_ARGUMENT, objstore_fs_fail_fsync("any", "", 0, 1));
}

/* The seed's bug: a WAL put whose directory fsync failed was retried, the
 * retry found the link in place, read it back equal and reported the
 * write durable.  Now the put fails, the writer stays refused (puts, WAL
 * flushes) even though the disk would accept a retry, and after reopening
 * every acknowledged write is there. */
static void test_writer_acknowledges_nothing_after_wal_fsync_failure(void **state)
{
    char *dir = tu_tmpdir("walfsync");
    char *uri = tu_file_uri(dir, "db"), *wal = tu_file_uri(dir, "wal");
    const wal_mode *m = *state;
    shale_options o;
    durable_options(&o);
    wal_mode_options(m, &o);
    if (m->separate)
        o.wal_store_uri = wal;
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    /* The writer turned the log mode on for its WAL store, or did not. */
    assert_int_equal(exists(dir, m->separate ? "wal/.wal-log" : "db/.wal-log"), m->log);
    for (unsigned i = 0; i < 20; i++)
        dt_put(db, i, 1);
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync(wal_sync_kind(m), "wal/", 1, 1));
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 20), vl = dt_val(v, sizeof v, 20, 1);
    shale_status rc = shale_put(db, k, kl, v, vl);
    assert_int_not_equal(rc, SHALE_OK);
    assert_non_null(strstr(shale_errmsg(), "fsync"));
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    for (unsigned i = 21; i < 30; i++) {
        kl = dt_key(k, sizeof k, i);
        vl = dt_val(v, sizeof v, i, 1);
        assert_int_not_equal(shale_put(db, k, kl, v, vl), SHALE_OK);
        assert_non_null(strstr(shale_errmsg(), "fsync"));
    }
    assert_int_not_equal(shale_flush_wal(db), SHALE_OK);
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);  /* no fsync was retried */
    (void)shale_close(db);   /* reports the error; the handle is freed either way */
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 20; i++)
        dt_expect(db, i, 1);
    dt_put(db, 40, 1);       /* the reopened writer works */
    TU_OK(shale_close(db));
    TU_OK(shale_open(uri, &o, &db));
    dt_expect(db, 40, 1);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
    free(wal);
}

/* An fsync failure under a memtable flush (the L0 SST's data): the flush
 * fails, the writer refuses every later write, and reopening finds every
 * acknowledged put (replayed from the WAL, whose fsyncs succeeded). */
static void test_flush_fsync_failure_stops_writer(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("flushfsync");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    durable_options(&o);
    shale_db *db = dt_open_fill(uri, &o, 30, 1);
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync("file", "compacted/", 1, 1));
    assert_int_not_equal(shale_flush_memtable(db), SHALE_OK);
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 30), vl = dt_val(v, sizeof v, 30, 1);
    assert_int_not_equal(shale_put(db, k, kl, v, vl), SHALE_OK);
    assert_non_null(strstr(shale_errmsg(), "fsync"));
    (void)shale_close(db);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 30; i++)
        dt_expect(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* The crash case's child: 200 durable puts, each reported as its number
 * (acknowledged) or -1 - its number (failed), then DONE; then it waits to
 * be killed, never closing the writer cleanly. */
#define DONE (1 << 30)

typedef struct crash_writer {
    const char *uri;
    const shale_options *o;
    const wal_mode *m;
} crash_writer;

static void put_until_killed(void *arg, int ack)
{
    const crash_writer *w = arg;
    /* The open writes the fence WAL (its file's fsync and directory fsync
     * are 1 of each kind); fail the 8th. */
    setenv("SHALE_TEST_FS_FSYNC_FAIL", w->m->log ? "file:wal/:8" : "dir:wal/:8", 1);
    shale_db *db = NULL;
    if (shale_open(w->uri, w->o, &db))
        ct_die(3, "open");
    for (unsigned i = 0; i < 200; i++) {
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, i), vl = dt_val(v, sizeof v, i, 1);
        int rec = shale_put(db, k, kl, v, vl) == SHALE_OK ? (int)i : -1 - (int)i;
        ct_ack(ack, &rec, sizeof rec);
    }
    int done = DONE;
    ct_ack(ack, &done, sizeof done);
    for (;;)
        pause();
}

/* Crash style, with the rule armed in a child through the environment: the
 * child writes durable puts, reporting each acknowledgement and the first
 * failure on a pipe, and keeps trying after the failure; the parent checks
 * nothing is acknowledged after the failure, SIGKILLs the child, reopens
 * and finds every acknowledged put. */
static void test_crash_after_fsync_failure(void **state)
{
    const wal_mode *m = *state;
    char *dir = tu_tmpdir("fsynccrash");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    durable_options(&o);
    wal_mode_options(m, &o);
    crash_writer w = {uri, &o, m};
    ct_child c;
    ct_start(&c, put_until_killed, &w);
    int rec, first_fail = -1, acked = 0;
    unsigned char ok[200] = {0};
    while (ct_recv(&c, &rec, sizeof rec) && rec != DONE) {
        if (rec >= 0) {
            if (first_fail >= 0)
                fail_msg("put %d acknowledged after put %d failed", rec, first_fail);
            ok[rec] = 1;
            acked++;
        } else if (first_fail < 0) {
            first_fail = -1 - rec;
        }
    }
    assert_true(first_fail > 0);           /* some succeeded, then the failure */
    assert_int_equal(acked, first_fail);
    ct_kill(&c);
    ct_close(&c);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));
    for (unsigned i = 0; i < 200; i++)
        if (ok[i])
            dt_expect(db, i, 1);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

int main(void)
{
    static wal_mode log = {false, true}, log_sep = {true, true}, files = {false, false},
                    files_sep = {true, false};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_refuses_writes_after_fsync_failure),
        cmocka_unit_test_prestate(test_writer_acknowledges_nothing_after_wal_fsync_failure, &log),
        cmocka_unit_test_prestate(test_writer_acknowledges_nothing_after_wal_fsync_failure,
                                  &log_sep),
        cmocka_unit_test_prestate(test_writer_acknowledges_nothing_after_wal_fsync_failure,
                                  &files),
        cmocka_unit_test_prestate(test_writer_acknowledges_nothing_after_wal_fsync_failure,
                                  &files_sep),
        cmocka_unit_test(test_flush_fsync_failure_stops_writer),
        cmocka_unit_test_prestate(test_crash_after_fsync_failure, &log),
        cmocka_unit_test_prestate(test_crash_after_fsync_failure, &files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
