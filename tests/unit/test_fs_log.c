/*
 * test_fs_log.c -- the file:// store's WAL log mode (objstore_fs_log.c),
 * on the real filesystem: the wal/<id>.sst objects as records in segment
 * files under <root>/.wal-log/.
 *
 * The object-store contract for WAL keys (the conformance suite's cases,
 * with WAL keys, since test_objstore.c's keys never reach the log), records
 * surviving reopen, create-if-absent among processes and handles, the mode
 * switched on under an open handle, tombstones, rotation and segment
 * unlinking, regular wal/ files beside records, and spare segments taking
 * appends from four threads while the zeroer makes them.
 *
 * Crash states (torn and garbage tails, stale frames, a writer SIGKILLed
 * mid-stream) and sticky fdatasync failures are in test_fs_log_crash.c;
 * the dead rotation in test_fs_log_rotate.c.
 */
#include "support/crashtest.h"
#include "support/fslogtest.h"
#include "objstore/objstore_int.h"
#include "objstore/objstore_fs_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the contract, with WAL keys ------------------------------------ */

static void test_contract(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    char k[64];
    fl_wk(1, k, sizeof k);
    /* The first create-if-absent of a handle is a regular file (the fence
     * of an older writer sees it); the next ones are records. */
    TU_OK(shale_objstore_put_if_absent(s, k, "first", 5));
    assert_true(fl_file_exists(root, k));
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "again", 5));
    fl_wk(2, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "hello", 5));
    assert_false(fl_file_exists(root, k));
    assert_true(fl_file_exists(root, ".wal-log/00000000000000000001.seg"));
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "again", 5));
    fl_expect(s, 2, "hello");
    uint64_t size = 0;
    int64_t mt = 0;
    TU_OK(shale_objstore_head(s, k, &size, &mt));
    assert_int_equal(size, 5);
    assert_true(mt > 0);
    /* Ranges, as get_range's contract says. */
    void *p = NULL;
    size_t n = 0;
    TU_OK(shale_objstore_get_range(s, k, 1, 3, &p, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(p, "ell", 3);
    shale_free(p);
    TU_OK(shale_objstore_get_range(s, k, 3, 100, &p, &n));
    assert_int_equal(n, 2);
    shale_free(p);
    TU_OK(shale_objstore_get_range(s, k, 5, 1, &p, &n));
    assert_int_equal(n, 0);
    shale_free(p);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_get_range(s, k, 6, 1, &p, &n));
    /* Overwrite: the last put wins. */
    TU_OK(shale_objstore_put(s, k, "bye", 3));
    fl_expect(s, 2, "bye");
    /* A reader handle keeps reading the record it opened. */
    shale_objreader *rd = NULL;
    TU_OK(shale_objreader_open(s, k, 0, &rd));
    assert_int_equal(shale_objreader_size(rd), 3);
    TU_OK(shale_objstore_delete(s, k));
    fl_expect_missing(s, 2);
    TU_OK(shale_objreader_read(rd, 1, 10, &p, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(p, "ye", 2);
    shale_free(p);
    shale_objreader_close(rd);
    TU_RC(SHALE_NOT_FOUND, shale_objreader_open(s, k, 0, &rd));
    TU_OK(shale_objstore_delete(s, k));  /* missing: ok */
    /* Deleted, the id can be created again. */
    TU_OK(shale_objstore_put_if_absent(s, k, "", 0));
    fl_expect(s, 2, "");
    /* Both forms of id 1 go with one delete. */
    fl_wk(1, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    fl_expect_missing(s, 1);
    assert_false(fl_file_exists(root, k));
    /* The log's own files are not objects. */
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_put(s, ".wal-log/x", "x", 1));
    TU_RC(SHALE_INVALID_ARGUMENT,
          shale_objstore_delete(s, ".wal-log/00000000000000000001.seg"));
    TU_RC(SHALE_INVALID_ARGUMENT, shale_objstore_get(s, ".wal-log/00000000000000000001.seg",
                                                     &p, &n));
    TU_OK(shale_objstore_put(s, ".wal-logx", "x", 1));   /* only the directory */
    /* Not the log's key form: regular files even in log mode. */
    TU_OK(shale_objstore_put(s, "wal/00000000000000000003.sst.tmp", "x", 1));
    TU_OK(shale_objstore_put(s, "wal/00000000000000000000.sst", "x", 1));
    assert_true(fl_file_exists(root, "wal/00000000000000000000.sst"));
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* Records survive closing and reopening, and a second handle sees what the
 * first wrote without reopening (the reader tails the writer's WAL). */
static void test_reopen_and_tailing(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *w = fl_open(uri, true), *r = fl_open(uri, false);
    char big[5000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (uint64_t id = 1; id <= 50; id++)
        fl_put_id(w, id, id % 7 ? "small" : big);
    for (uint64_t id = 1; id <= 50; id++)
        fl_expect(r, id, id % 7 ? "small" : big);
    fl_expect_missing(r, 51);
    fl_put_id(w, 51, "late");
    fl_expect(r, 51, "late");   /* a miss rescans the tail */
    shale_objstore_close(w);
    shale_objstore_close(r);
    r = fl_open(uri, false);
    for (uint64_t id = 1; id <= 51; id++)
        fl_expect(r, id, id == 51 ? "late" : id % 7 ? "small" : big);
    shale_objlist l;
    TU_OK(shale_objstore_list_all(r, "wal/", &l));
    assert_int_equal(l.count, 51);
    shale_objlist_free(&l);
    shale_objstore_close(r);
    free(root);
    free(uri);
}

/* ---- create-if-absent among processes and handles -------------------- */

#define RACE_IDS 60
#define RACERS 4

/* One racer (a ct_body): once the parent closes the go pipe, a
 * create-if-absent of every id, each reported as {id, won}. */
typedef struct racer {
    const char *uri;
    int go_read, go_write;
    int no;
} racer;

static void race_ids(void *arg, int ack)
{
    const racer *r = arg;
    close(r->go_write);
    shale_objstore *s = NULL;
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    if (shale_objstore_open(r->uri, &o, &s))
        ct_die(2, "open");
    char b;
    if (read(r->go_read, &b, 1) != 0)   /* all start together: the parent closes go */
        ct_die(5, "the go pipe");
    for (uint64_t id = 1; id <= RACE_IDS; id++) {
        char k[64], v[16];
        fl_wk(id, k, sizeof k);
        snprintf(v, sizeof v, "racer%d", r->no);
        shale_status rc = shale_objstore_put_if_absent(s, k, v, strlen(v));
        if (rc != SHALE_OK && rc != SHALE_PRECONDITION_FAILED)
            ct_die(3, "put_if_absent");
        int rec[2] = {(int)id, rc == SHALE_OK};
        ct_ack(ack, rec, sizeof rec);
    }
    shale_objstore_close(s);
}

static void test_race_processes(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, true);
    int go[2];
    assert_int_equal(pipe(go), 0);
    ct_child kids[RACERS];
    racer rs[RACERS];
    for (int c = 0; c < RACERS; c++) {
        rs[c] = (racer){uri, go[0], go[1], c};
        ct_start(&kids[c], race_ids, &rs[c]);
    }
    close(go[0]);
    close(go[1]);
    int winner[RACE_IDS + 1], seen[RACE_IDS + 1] = {0};
    for (int i = 0; i <= RACE_IDS; i++)
        winner[i] = -1;
    int rec[2], wins = 0;
    for (int c = 0; c < RACERS; c++) {
        while (ct_recv(&kids[c], rec, sizeof rec)) {
            seen[rec[0]]++;
            if (rec[1]) {
                wins++;
                assert_int_equal(winner[rec[0]], -1);   /* two winners of one id */
                winner[rec[0]] = 1;
            }
        }
        ct_expect_exit(&kids[c], 0);
    }
    assert_int_equal(wins, RACE_IDS);
    shale_objstore *s = fl_open(uri, false);
    for (int id = 1; id <= RACE_IDS; id++) {
        assert_int_equal(seen[id], RACERS);
        char k[64];
        fl_wk((uint64_t)id, k, sizeof k);
        void *p;
        size_t n;
        TU_OK(shale_objstore_get(s, k, &p, &n));
        assert_true(n == 6 && !memcmp(p, "racer", 5));
        shale_free(p);
    }
    shale_objstore_close(s);
    free(root);
    free(uri);
}

typedef struct race_arg {
    shale_objstore *s;
    int wins;
} race_arg;

static void *race_thread(void *p)
{
    race_arg *a = p;
    for (uint64_t id = 1; id <= RACE_IDS; id++) {
        char k[64];
        fl_wk(id, k, sizeof k);
        a->wins += shale_objstore_put_if_absent(a->s, k, "t", 1) == SHALE_OK;
    }
    return NULL;
}

/* Two handles of one process (separate open file descriptions: flock
 * excludes them) and threads sharing a handle (its mutex). */
static void test_race_handles(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *a = fl_open(uri, true), *b = fl_open(uri, true);
    pthread_t th[4];
    race_arg ra[4] = {{a, 0}, {a, 0}, {b, 0}, {b, 0}};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, race_thread, &ra[i]);
    int wins = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        wins += ra[i].wins;
    }
    assert_int_equal(wins, RACE_IDS);
    shale_objstore_close(a);
    shale_objstore_close(b);
    free(root);
    free(uri);
}

/* A handle opened before the mode was turned on writes its create as a
 * regular file, and loses to a record that holds the id (its file is
 * removed); a record cannot be created over a regular file. */
static void test_mode_switch_fences(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, false);
    shale_objstore *old = fl_open(uri, true);
    char k[64];
    fl_wk(1, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(old, k, "old", 3));   /* a regular file */
    assert_true(fl_file_exists(root, k));
    assert_false(fl_file_exists(root, ".wal-log"));
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = 1;
    shale_objstore *neu = NULL;
    TU_OK(shale_objstore_open(uri, &o, &neu));
    assert_true(fl_file_exists(root, ".wal-log"));
    TU_OK(shale_objstore_put_if_absent(neu, "wal/00000000000000000100.sst", "x", 1));
    /* The record path checks regular files: id 1 is taken. */
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(neu, k, "new", 3));
    fl_wk(2, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(neu, k, "new", 3));
    assert_false(fl_file_exists(root, k));       /* a record */
    /* The old handle follows the mode now: its create of id 2 fails. */
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(old, k, "old", 3));
    assert_false(fl_file_exists(root, k));
    fl_expect(old, 2, "new");
    fl_expect(old, 1, "old");
    shale_objstore_close(old);
    shale_objstore_close(neu);
    free(root);
    free(uri);
}

/* ---- tombstones, rotation, segment unlinking -------------------------- */

static void test_rotation_and_unlink(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(4096);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, false);
    char v[1001];
    memset(v, 'v', 1000);
    v[1000] = '\0';
    for (uint64_t id = 1; id <= 20; id++)
        fl_put_id(s, id, v);
    int segs = fl_count_segs(root);
    assert_true(segs >= 6);              /* 3 records of 1048 bytes per 4 KiB */
    /* Deleting the newest first frees nothing: the oldest still hold live
     * records (only the oldest segment goes, in order). */
    char k[64];
    for (uint64_t id = 20; id > 10; id--) {
        fl_wk(id, k, sizeof k);
        TU_OK(shale_objstore_delete(s, k));
    }
    assert_int_equal(fl_count_segs(root), segs);
    /* Deleting from the oldest unlinks segments as they empty. */
    for (uint64_t id = 1; id <= 6; id++) {
        fl_wk(id, k, sizeof k);
        TU_OK(shale_objstore_delete(s, k));
    }
    assert_false(fl_file_exists(root, ".wal-log/00000000000000000001.seg"));
    assert_true(fl_count_segs(root) < segs);
    for (uint64_t id = 7; id <= 10; id++)
        fl_expect(s, id, v);
    shale_objstore_close(s);
    /* After reopening: the same records, no tombstone lost. */
    s = fl_open(uri, false);
    for (uint64_t id = 1; id <= 20; id++) {
        if (id >= 7 && id <= 10)
            fl_expect(s, id, v);
        else
            fl_expect_missing(s, id);
    }
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "wal/", &l));
    assert_int_equal(l.count, 4);
    shale_objlist_free(&l);
    for (uint64_t id = 7; id <= 10; id++) {
        fl_wk(id, k, sizeof k);
        TU_OK(shale_objstore_delete(s, k));
    }
    assert_int_equal(fl_count_segs(root), 1);   /* the current one stays */
    fl_put_id(s, 30, "after");
    shale_objstore_close(s);
    s = fl_open(uri, false);
    fl_expect(s, 30, "after");
    for (uint64_t id = 1; id <= 20; id++)
        fl_expect_missing(s, id);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

/* ---- the older layout beside records --------------------------------- */

static void test_mixed_regular_and_records(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, false);
    shale_objstore *s = fl_open(uri, false);
    for (uint64_t id = 1; id <= 5; id++)
        fl_put_id(s, id, "file");                 /* regular files: the mode is off */
    TU_OK(shale_objstore_put(s, "manifest/x", "m", 1));
    TU_OK(shale_objstore_put(s, "wal/zz", "z", 1));
    shale_objstore_close(s);
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = 1;
    o.fs_no_fsync = true;
    TU_OK(shale_objstore_open(uri, &o, &s));
    for (uint64_t id = 6; id <= 9; id++)
        fl_put_id(s, id, "record");
    fl_put_id(s, 3, "over");                       /* a record over a regular file: read first */
    char k[64];
    fl_wk(5, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "x", 1));
    fl_expect(s, 1, "file");
    fl_expect(s, 3, "over");
    fl_expect(s, 7, "record");
    /* Pages of two across both forms, in key order, each key once. */
    const char *want[] = {"wal/00000000000000000001.sst", "wal/00000000000000000002.sst",
                          "wal/00000000000000000003.sst", "wal/00000000000000000004.sst",
                          "wal/00000000000000000005.sst", "wal/00000000000000000006.sst",
                          "wal/00000000000000000007.sst", "wal/00000000000000000008.sst",
                          "wal/00000000000000000009.sst", "wal/zz"};
    size_t got = 0;
    char *cursor = NULL;
    do {
        shale_objlist l;
        memset(&l, 0, sizeof l);
        TU_OK(shale_objstore_list(s, "wal/", cursor, 2, &l));
        assert_true(l.count <= 2);
        for (size_t i = 0; i < l.count; i++) {
            assert_true(got < 10);
            assert_string_equal(l.items[i].key, want[got]);
            got++;
        }
        free(cursor);
        cursor = l.next_cursor ? strdup(l.next_cursor) : NULL;
        shale_objlist_free(&l);
    } while (cursor);
    assert_int_equal(got, 10);
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "", &l));
    assert_int_equal(l.count, 11);              /* and manifest/x; no .wal-log */
    assert_string_equal(l.items[0].key, "manifest/x");
    shale_objlist_free(&l);
    TU_OK(shale_objstore_list_all(s, "wal/00000000000000000008", &l));
    assert_int_equal(l.count, 1);
    shale_objlist_free(&l);
    /* Too large for a record: a regular file, and the record it replaces
     * no longer shadows it. */
    size_t bigl = FS_LOG_MAX_RECORD + 1;
    char *big = malloc(bigl);
    memset(big, 'B', bigl);
    fl_wk(7, k, sizeof k);
    TU_OK(shale_objstore_put(s, k, big, bigl));
    assert_true(fl_file_exists(root, k));
    void *bp = NULL;
    size_t bn = 0;
    TU_OK(shale_objstore_get(s, k, &bp, &bn));
    assert_int_equal(bn, bigl);
    assert_memory_equal(bp, big, bigl);
    shale_free(bp);
    free(big);
    fl_wk(8, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "x", 1));
    /* Deleting a key held both ways removes both. */
    fl_wk(3, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    fl_expect_missing(s, 3);
    assert_false(fl_file_exists(root, k));
    fl_wk(1, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    fl_expect_missing(s, 1);
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* ---- spare segments (objstore_fs_log_zero.c) ------------------------- */

typedef struct spare_arg {
    shale_objstore *s;
    uint64_t first, n;
} spare_arg;

static void *spare_writer(void *p)
{
    spare_arg *a = p;
    char v[901];
    for (uint64_t id = a->first; id < a->first + a->n; id++) {
        char k[64];
        fl_wk(id, k, sizeof k);
        int n = snprintf(v, sizeof v, "%llu:", (unsigned long long)id);
        memset(v + n, 'a' + (int)(id % 26), (size_t)(id % 800));
        if (shale_objstore_put_if_absent(a->s, k, v, (size_t)n + (size_t)(id % 800)))
            return (void *)1;
    }
    return NULL;
}

/* The writer's appends and its zeroer run at once: four threads append
 * through one claimed handle while segments rotate every 32 KiB onto
 * spares the zeroer is making.  Every record reads back, from this handle
 * and from a new one, and the spares were used (the counter). */
static void test_spares_under_appends(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(32u << 10);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    char k[64];
    fl_wk(1, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));   /* the claim */
    uint64_t before = objstore_fs_log_spares_linked();
    pthread_t th[4];
    spare_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (spare_arg){s, 2 + (uint64_t)i * 150, 150};
        assert_int_equal(pthread_create(&th[i], NULL, spare_writer, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    assert_true(objstore_fs_log_spares_linked() > before);
    for (int round = 0; round < 2; round++) {
        for (uint64_t id = 2; id < 2 + 600; id++) {
            char v[901];
            int n = snprintf(v, sizeof v, "%llu:", (unsigned long long)id);
            memset(v + n, 'a' + (int)(id % 26), (size_t)(id % 800));
            v[n + (int)(id % 800)] = '\0';
            fl_expect(s, id, v);
        }
        shale_objstore_close(s);
        s = fl_open(uri, true);
    }
    assert_true(fl_count_segs(root) > 4);
    assert_int_equal(fl_count_other_files(root), 0);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

/* A 2 MiB spare is written back in one burst, not in 256 KiB pieces: each
 * write-back lands in the next record's fdatasync (its cache flush), and
 * eight of them slowed eight puts in a row (docs/benchmarks.md).  The
 * first segment is 1 MiB (zeroed at the claim); past half of it the writer
 * asks for a 2 MiB spare, linked once the segment's zeroes run out. */
static void test_spare_written_back_in_one_burst(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(0);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    char k[64], v[1000];
    fl_wk(1, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));   /* the claim */
    uint64_t linked = objstore_fs_log_spares_linked();
    uint64_t wb = objstore_fs_log_spare_writebacks();
    memset(v, 'z', sizeof v);
    uint64_t id = 2;
    /* 1 MiB of ~1 KiB frames fills the first segment: the next one is the
     * spare (the zeroer had the second half's appends to make it). */
    while (objstore_fs_log_spares_linked() == linked && id < 4000) {
        fl_wk(id++, k, sizeof k);
        TU_OK(shale_objstore_put_if_absent(s, k, v, sizeof v));
    }
    assert_int_equal(objstore_fs_log_spares_linked(), linked + 1);
    assert_int_equal(objstore_fs_log_spare_writebacks(), wb + 1);
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* A writer that claims a log whose segment is already past half (a split's
 * takeover) asks for no spare until it has appended half the room left:
 * the takeover's fence and tombstone made a 2 MiB write-back beside the
 * split's fsyncs, five of them slowed ~7x (objstore_fs_log_zero.c).  A
 * writer with traffic asks once it has appended that much (at least
 * 256 KiB: one that claims a segment with little room left waits too). */
static void test_claim_past_half_defers_the_spare(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(0);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    char k[64], v[1000];
    memset(v, 'y', sizeof v);
    fl_wk(1, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));
    uint64_t id = 2;
    /* 600 KiB of the first segment's 1 MiB: past half. */
    for (; id < 2 + 600; id++) {
        fl_wk(id, k, sizeof k);
        TU_OK(shale_objstore_put_if_absent(s, k, v, sizeof v));
    }
    shale_objstore_close(s);

    s = fl_open(uri, true);
    uint64_t asked = objstore_fs_log_spares_asked();
    fl_wk(id++, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));   /* the claim */
    fl_wk(id++, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, v, 100));
    assert_int_equal(objstore_fs_log_spares_asked(), asked);   /* without the defer: +1 */
    /* Half of the ~420 KiB left is ~210 KiB, under the 256 KiB least:
     * the ask comes after ~250 frames of ~1 KiB. */
    uint64_t from = id;
    for (int i = 0; i < 400 && objstore_fs_log_spares_asked() == asked; i++) {
        fl_wk(id++, k, sizeof k);
        TU_OK(shale_objstore_put_if_absent(s, k, v, sizeof v));
    }
    assert_int_equal(objstore_fs_log_spares_asked(), asked + 1);
    assert_true(id - from > 200);
    shale_objstore_close(s);
    free(root);
    free(uri);

    /* A segment with little room left (20 frames of a 32 KiB rotation
     * bound): the claim waits too, for 256 KiB of appends (the room runs
     * out first: the segments grow in place and rotate meanwhile), then
     * the writer asks; every record reads back. */
    objstore_fs_log_set_segment_bytes(32u << 10);
    root = fl_new_root(&uri, true);
    s = fl_open(uri, true);
    for (id = 1; id <= 20; id++) {
        fl_wk(id, k, sizeof k);
        TU_OK(shale_objstore_put_if_absent(s, k, v, sizeof v));
    }
    shale_objstore_close(s);
    s = fl_open(uri, true);
    asked = objstore_fs_log_spares_asked();
    fl_wk(id++, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));
    assert_int_equal(objstore_fs_log_spares_asked(), asked);
    uint64_t first = id;
    for (int i = 0; i < 400 && objstore_fs_log_spares_asked() == asked; i++) {
        fl_wk(id++, k, sizeof k);
        TU_OK(shale_objstore_put_if_absent(s, k, v, sizeof v));
    }
    assert_int_equal(objstore_fs_log_spares_asked(), asked + 1);
    assert_true(id - first > 200);   /* not before ~256 KiB of 1 KiB frames */
    for (uint64_t i = first; i < id; i++) {
        char want[sizeof v + 1];
        memcpy(want, v, sizeof v);
        want[sizeof v] = '\0';
        fl_expect(s, i, want);
    }
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

int main(void)
{
    fl_init("fslog");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract),
        cmocka_unit_test(test_reopen_and_tailing),
        cmocka_unit_test(test_race_processes),
        cmocka_unit_test(test_race_handles),
        cmocka_unit_test(test_mode_switch_fences),
        cmocka_unit_test(test_rotation_and_unlink),
        cmocka_unit_test(test_mixed_regular_and_records),
        cmocka_unit_test(test_spares_under_appends),
        cmocka_unit_test(test_spare_written_back_in_one_burst),
        cmocka_unit_test(test_claim_past_half_defers_the_spare),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fl_done();
    return rc;
}
