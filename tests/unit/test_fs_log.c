/*
 * test_fs_log.c -- the file:// store's WAL log mode (objstore_fs_log.c),
 * on the real filesystem: the wal/<id>.sst objects as records in segment
 * files under <root>/.wal-log/.
 *
 * The object-store contract for WAL keys (the conformance suite's cases,
 * with WAL keys, since test_objstore.c's keys never reach the log), records
 * surviving reopen, create-if-absent among processes and handles, torn
 * and garbage tails, stale frames beyond a rewritten tail, tombstones,
 * rotation and segment unlinking, regular wal/ files beside records, a
 * sticky fdatasync failure, a writer SIGKILLed mid-stream (also while it
 * rotates onto spare segments), and the spares themselves: appends from
 * four threads while the zeroer makes them, and a failed spare sync.  A SIGKILL
 * keeps the page cache: power loss is covered by the argument in
 * objstore_fs_log.c and by the torn-tail cases, which build the states a
 * lost page cache can leave.
 */
#include "support/testutil.h"
#include "objstore/objstore_int.h"
#include "objstore/objstore_fs_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HDR 48

static char *g_dir;
static int g_seq;

/* A new store root; log: in the WAL log mode from the start. */
static char *new_root(char **uri, bool log)
{
    char sub[32];
    snprintf(sub, sizeof sub, "r%d", g_seq++);
    *uri = tu_file_uri(g_dir, sub);
    size_t n = strlen(g_dir) + strlen(sub) + 2;
    char *root = malloc(n);
    snprintf(root, n, "%s/%s", g_dir, sub);
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = log ? 1 : -1;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(*uri, &o, &s));
    shale_objstore_close(s);
    return root;
}

static shale_objstore *open_uri(const char *uri, bool fsync)
{
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_no_fsync = !fsync;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, &o, &s));
    return s;
}

static void wk(uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "wal/%020llu.sst", (unsigned long long)id);
}

static void expect(shale_objstore *s, uint64_t id, const char *want)
{
    char k[64];
    wk(id, k, sizeof k);
    void *got = NULL;
    size_t n = 0;
    TU_OK(shale_objstore_get(s, k, &got, &n));
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
    shale_free(got);
}

static void expect_missing(shale_objstore *s, uint64_t id)
{
    char k[64];
    wk(id, k, sizeof k);
    void *got = NULL;
    size_t n = 0;
    TU_RC(SHALE_NOT_FOUND, shale_objstore_get(s, k, &got, &n));
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, k, NULL, NULL));
}

static bool file_exists(const char *root, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

static char *seg_path(const char *root, uint64_t no)
{
    size_t n = strlen(root) + 64;
    char *p = malloc(n);
    snprintf(p, n, "%s/.wal-log/%020llu.seg", root, (unsigned long long)no);
    return p;
}

static int count_segs(const char *root)
{
    int n = 0;
    for (uint64_t no = 1; no < 1000; no++) {
        char *p = seg_path(root, no);
        struct stat st;
        n += stat(p, &st) == 0;
        free(p);
    }
    return n;
}

/* Files in .wal-log other than segments (a spare left behind would be one). */
static int count_other_files(const char *root)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/.wal-log", root);
    DIR *d = opendir(p);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
             (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".seg"));
    closedir(d);
    return n;
}

static void put_id(shale_objstore *s, uint64_t id, const char *v)
{
    char k[64];
    wk(id, k, sizeof k);
    TU_OK(shale_objstore_put(s, k, v, strlen(v)));
}

/* ---- the contract, with WAL keys ------------------------------------ */

static void test_contract(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    shale_objstore *s = open_uri(uri, true);
    char k[64];
    wk(1, k, sizeof k);
    /* The first create-if-absent of a handle is a regular file (the fence
     * of an older writer sees it); the next ones are records. */
    TU_OK(shale_objstore_put_if_absent(s, k, "first", 5));
    assert_true(file_exists(root, k));
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "again", 5));
    wk(2, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "hello", 5));
    assert_false(file_exists(root, k));
    assert_true(file_exists(root, ".wal-log/00000000000000000001.seg"));
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "again", 5));
    expect(s, 2, "hello");
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
    expect(s, 2, "bye");
    /* A reader handle keeps reading the record it opened. */
    shale_objreader *rd = NULL;
    TU_OK(shale_objreader_open(s, k, 0, &rd));
    assert_int_equal(shale_objreader_size(rd), 3);
    TU_OK(shale_objstore_delete(s, k));
    expect_missing(s, 2);
    TU_OK(shale_objreader_read(rd, 1, 10, &p, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(p, "ye", 2);
    shale_free(p);
    shale_objreader_close(rd);
    TU_RC(SHALE_NOT_FOUND, shale_objreader_open(s, k, 0, &rd));
    TU_OK(shale_objstore_delete(s, k));  /* missing: ok */
    /* Deleted, the id can be created again. */
    TU_OK(shale_objstore_put_if_absent(s, k, "", 0));
    expect(s, 2, "");
    /* Both forms of id 1 go with one delete. */
    wk(1, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    expect_missing(s, 1);
    assert_false(file_exists(root, k));
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
    assert_true(file_exists(root, "wal/00000000000000000000.sst"));
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* Records survive closing and reopening, and a second handle sees what the
 * first wrote without reopening (the reader tails the writer's WAL). */
static void test_reopen_and_tailing(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    shale_objstore *w = open_uri(uri, true), *r = open_uri(uri, false);
    char big[5000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (uint64_t id = 1; id <= 50; id++)
        put_id(w, id, id % 7 ? "small" : big);
    for (uint64_t id = 1; id <= 50; id++)
        expect(r, id, id % 7 ? "small" : big);
    expect_missing(r, 51);
    put_id(w, 51, "late");
    expect(r, 51, "late");   /* a miss rescans the tail */
    shale_objstore_close(w);
    shale_objstore_close(r);
    r = open_uri(uri, false);
    for (uint64_t id = 1; id <= 51; id++)
        expect(r, id, id == 51 ? "late" : id % 7 ? "small" : big);
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

static void test_race_processes(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    int fds[2], go[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(go), 0);
    pid_t kids[RACERS];
    for (int c = 0; c < RACERS; c++) {
        if ((kids[c] = fork()) == 0) {
            close(fds[0]);
            close(go[1]);
            shale_objstore *s = NULL;
            shale_objstore_options o;
            shale_objstore_options_init(&o);
            if (shale_objstore_open(uri, &o, &s))
                _exit(2);
            char b;
            if (read(go[0], &b, 1) != 0)   /* all start together: the parent closes go */
                _exit(5);
            for (uint64_t id = 1; id <= RACE_IDS; id++) {
                char k[64], v[16];
                wk(id, k, sizeof k);
                snprintf(v, sizeof v, "racer%d", c);
                shale_status rc = shale_objstore_put_if_absent(s, k, v, strlen(v));
                if (rc != SHALE_OK && rc != SHALE_PRECONDITION_FAILED)
                    _exit(3);
                int rec[2] = {(int)id, rc == SHALE_OK};
                if (write(fds[1], rec, sizeof rec) != sizeof rec)
                    _exit(4);
            }
            shale_objstore_close(s);
            _exit(0);
        }
    }
    close(fds[1]);
    close(go[0]);
    close(go[1]);
    int winner[RACE_IDS + 1], seen[RACE_IDS + 1] = {0};
    for (int i = 0; i <= RACE_IDS; i++)
        winner[i] = -1;
    int rec[2], wins = 0;
    while (read(fds[0], rec, sizeof rec) == sizeof rec) {
        seen[rec[0]]++;
        if (rec[1]) {
            wins++;
            assert_int_equal(winner[rec[0]], -1);   /* two winners of one id */
            winner[rec[0]] = 1;
        }
    }
    close(fds[0]);
    for (int c = 0; c < RACERS; c++) {
        int st;
        waitpid(kids[c], &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(wins, RACE_IDS);
    shale_objstore *s = open_uri(uri, false);
    for (int id = 1; id <= RACE_IDS; id++) {
        assert_int_equal(seen[id], RACERS);
        char k[64];
        wk((uint64_t)id, k, sizeof k);
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
        wk(id, k, sizeof k);
        a->wins += shale_objstore_put_if_absent(a->s, k, "t", 1) == SHALE_OK;
    }
    return NULL;
}

/* Two handles of one process (separate open file descriptions: flock
 * excludes them) and threads sharing a handle (its mutex). */
static void test_race_handles(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    shale_objstore *a = open_uri(uri, true), *b = open_uri(uri, true);
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
    char *uri, *root = new_root(&uri, false);
    shale_objstore *old = open_uri(uri, true);
    char k[64];
    wk(1, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(old, k, "old", 3));   /* a regular file */
    assert_true(file_exists(root, k));
    assert_false(file_exists(root, ".wal-log"));
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = 1;
    shale_objstore *neu = NULL;
    TU_OK(shale_objstore_open(uri, &o, &neu));
    assert_true(file_exists(root, ".wal-log"));
    TU_OK(shale_objstore_put_if_absent(neu, "wal/00000000000000000100.sst", "x", 1));
    /* The record path checks regular files: id 1 is taken. */
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(neu, k, "new", 3));
    wk(2, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(neu, k, "new", 3));
    assert_false(file_exists(root, k));       /* a record */
    /* The old handle follows the mode now: its create of id 2 fails. */
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(old, k, "old", 3));
    assert_false(file_exists(root, k));
    expect(old, 2, "new");
    expect(old, 1, "old");
    shale_objstore_close(old);
    shale_objstore_close(neu);
    free(root);
    free(uri);
}

/* ---- crash states ---------------------------------------------------- */

/* Writes ids 1..3 ("aaaa", "bbbbbbbb", "cc") as records; returns the
 * segment's path. */
static char *three_records(const char *uri, const char *root)
{
    shale_objstore *s = open_uri(uri, true);
    put_id(s, 1, "aaaa");
    put_id(s, 2, "bbbbbbbb");
    put_id(s, 3, "cc");
    shale_objstore_close(s);
    return seg_path(root, 1);
}

static void poke(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

/* A tail cut mid-frame: the records before it stay, the torn one is gone,
 * and the next append lands where it began. */
static void test_torn_tail(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    char *seg = three_records(uri, root);
    off_t c_at = 2 * HDR + 4 + 8;
    assert_int_equal(truncate(seg, c_at + HDR + 1), 0);
    shale_objstore *s = open_uri(uri, true);
    expect(s, 1, "aaaa");
    expect(s, 2, "bbbbbbbb");
    expect_missing(s, 3);
    put_id(s, 4, "dddddd");
    shale_objstore_close(s);
    s = open_uri(uri, false);
    expect(s, 4, "dddddd");
    expect_missing(s, 3);
    shale_objstore_close(s);
    free(seg);
    free(root);
    free(uri);
}

/* Garbage after the tail (a torn write of random bytes) is never read as a
 * record, and appends go on past it. */
static void test_garbage_tail(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    char *seg = three_records(uri, root);
    off_t end = 3 * HDR + 4 + 8 + 2;
    uint8_t junk[300];
    uint64_t rs = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)tu_rand(&rs);
    junk[0] = 'S', junk[1] = 'W', junk[2] = 'L', junk[3] = '1';   /* the magic, then junk */
    poke(seg, end, junk, sizeof junk);
    shale_objstore *s = open_uri(uri, true);
    expect(s, 3, "cc");
    put_id(s, 4, "dd");
    put_id(s, 5, "eeeee");
    shale_objstore_close(s);
    s = open_uri(uri, false);
    for (uint64_t id = 1; id <= 5; id++) {
        char k[64];
        wk(id, k, sizeof k);
        TU_OK(shale_objstore_head(s, k, NULL, NULL));
    }
    expect(s, 4, "dd");
    expect(s, 5, "eeeee");
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "", &l));
    assert_int_equal(l.count, 5);
    shale_objlist_free(&l);
    shale_objstore_close(s);
    free(seg);
    free(root);
    free(uri);
}

/* A torn frame followed by a frame that is valid on its own (written
 * after it before a crash, never acknowledged): the scan stops at the torn
 * one; the next append rewrites from there, and the stale frame beyond it
 * -- chained to the torn frame, not to the new one -- is never read back,
 * even when the new frame ends exactly where the stale one starts. */
static void test_stale_frame_beyond_rewritten_tail(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    char *seg = three_records(uri, root);
    off_t b_payload = HDR + 4 + HDR;
    poke(seg, b_payload + 3, "X", 1);   /* id 2's frame no longer checks */
    shale_objstore *s = open_uri(uri, true);
    expect(s, 1, "aaaa");
    expect_missing(s, 2);
    expect_missing(s, 3);               /* intact, but beyond the torn frame */
    put_id(s, 9, "zzzzzzzz");           /* the same length as id 2's: ends where 3 begins */
    shale_objstore_close(s);
    s = open_uri(uri, true);
    expect(s, 1, "aaaa");
    expect(s, 9, "zzzzzzzz");
    expect_missing(s, 2);
    expect_missing(s, 3);
    char k[64];
    wk(3, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "first", 5));   /* regular: the first */
    wk(10, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "ten", 3));     /* a record over the stale one */
    shale_objstore_close(s);
    s = open_uri(uri, false);
    expect(s, 10, "ten");
    expect(s, 3, "first");
    shale_objstore_close(s);
    free(seg);
    free(root);
    free(uri);
}

/* ---- tombstones, rotation, segment unlinking -------------------------- */

static void test_rotation_and_unlink(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(4096);
    char *uri, *root = new_root(&uri, true);
    shale_objstore *s = open_uri(uri, false);
    char v[1001];
    memset(v, 'v', 1000);
    v[1000] = '\0';
    for (uint64_t id = 1; id <= 20; id++)
        put_id(s, id, v);
    int segs = count_segs(root);
    assert_true(segs >= 6);              /* 3 records of 1048 bytes per 4 KiB */
    /* Deleting the newest first frees nothing: the oldest still hold live
     * records (only the oldest segment goes, in order). */
    char k[64];
    for (uint64_t id = 20; id > 10; id--) {
        wk(id, k, sizeof k);
        TU_OK(shale_objstore_delete(s, k));
    }
    assert_int_equal(count_segs(root), segs);
    /* Deleting from the oldest unlinks segments as they empty. */
    for (uint64_t id = 1; id <= 6; id++) {
        wk(id, k, sizeof k);
        TU_OK(shale_objstore_delete(s, k));
    }
    assert_false(file_exists(root, ".wal-log/00000000000000000001.seg"));
    assert_true(count_segs(root) < segs);
    for (uint64_t id = 7; id <= 10; id++)
        expect(s, id, v);
    shale_objstore_close(s);
    /* After reopening: the same records, no tombstone lost. */
    s = open_uri(uri, false);
    for (uint64_t id = 1; id <= 20; id++) {
        if (id >= 7 && id <= 10)
            expect(s, id, v);
        else
            expect_missing(s, id);
    }
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "wal/", &l));
    assert_int_equal(l.count, 4);
    shale_objlist_free(&l);
    for (uint64_t id = 7; id <= 10; id++) {
        wk(id, k, sizeof k);
        TU_OK(shale_objstore_delete(s, k));
    }
    assert_int_equal(count_segs(root), 1);   /* the current one stays */
    put_id(s, 30, "after");
    shale_objstore_close(s);
    s = open_uri(uri, false);
    expect(s, 30, "after");
    for (uint64_t id = 1; id <= 20; id++)
        expect_missing(s, id);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

/* ---- the older layout beside records --------------------------------- */

static void test_mixed_regular_and_records(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, false);
    shale_objstore *s = open_uri(uri, false);
    for (uint64_t id = 1; id <= 5; id++)
        put_id(s, id, "file");                 /* regular files: the mode is off */
    TU_OK(shale_objstore_put(s, "manifest/x", "m", 1));
    TU_OK(shale_objstore_put(s, "wal/zz", "z", 1));
    shale_objstore_close(s);
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = 1;
    o.fs_no_fsync = true;
    TU_OK(shale_objstore_open(uri, &o, &s));
    for (uint64_t id = 6; id <= 9; id++)
        put_id(s, id, "record");
    put_id(s, 3, "over");                       /* a record over a regular file: read first */
    char k[64];
    wk(5, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "x", 1));
    expect(s, 1, "file");
    expect(s, 3, "over");
    expect(s, 7, "record");
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
    wk(7, k, sizeof k);
    TU_OK(shale_objstore_put(s, k, big, bigl));
    assert_true(file_exists(root, k));
    void *bp = NULL;
    size_t bn = 0;
    TU_OK(shale_objstore_get(s, k, &bp, &bn));
    assert_int_equal(bn, bigl);
    assert_memory_equal(bp, big, bigl);
    shale_free(bp);
    free(big);
    wk(8, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "x", 1));
    /* Deleting a key held both ways removes both. */
    wk(3, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    expect_missing(s, 3);
    assert_false(file_exists(root, k));
    wk(1, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    expect_missing(s, 1);
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* ---- fdatasync failure ---------------------------------------------- */

static void test_fdatasync_failure_is_sticky(void **state)
{
    (void)state;
    char *uri, *root = new_root(&uri, true);
    shale_objstore *s = open_uri(uri, true);
    put_id(s, 1, "one");
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync("file", "wal/", 1, 1));
    char k[64];
    wk(2, k, sizeof k);
    TU_RC(SHALE_IO, shale_objstore_put(s, k, "two", 3));
    assert_non_null(strstr(shale_errmsg(), "fdatasync"));
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    wk(3, k, sizeof k);
    TU_RC(SHALE_CLOSED, shale_objstore_put_if_absent(s, k, "three", 5));
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, k, "three", 5));
    TU_RC(SHALE_CLOSED, shale_objstore_delete(s, "wal/00000000000000000001.sst"));
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, "other", "x", 1));
    expect(s, 1, "one");                                   /* reads go on */
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);  /* nothing retried */
    shale_objstore_close(s);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    s = open_uri(uri, true);                               /* a new handle starts clean */
    put_id(s, 3, "three");
    expect(s, 3, "three");
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* ---- a writer killed mid-stream -------------------------------------- */

/* bound: the rotation bound (0: the default), small to have the child
 * rotate through spares while it is killed; the log after the kill holds
 * segments only (no spare is left behind) and every acknowledged record. */
static void sigkill_writer(uint64_t bound)
{
    objstore_fs_log_set_segment_bytes(bound);
    char *uri, *root = new_root(&uri, true);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        shale_objstore *s = NULL;
        shale_objstore_options o;
        shale_objstore_options_init(&o);
        if (shale_objstore_open(uri, &o, &s))
            _exit(2);
        for (uint64_t id = 1;; id++) {
            char k[64], v[64];
            wk(id, k, sizeof k);
            int vl = snprintf(v, sizeof v, "value-%llu", (unsigned long long)id);
            if (shale_objstore_put_if_absent(s, k, v, (size_t)vl))
                _exit(3);
            if (write(fds[1], &id, sizeof id) != sizeof id)
                _exit(4);
        }
    }
    close(fds[1]);
    uint64_t id = 0, last = 0;
    while (last < 300 && read(fds[0], &id, sizeof id) == sizeof id)
        last = id;
    kill(pid, SIGKILL);          /* mid-stream: it is appending */
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    while (read(fds[0], &id, sizeof id) == sizeof id)
        last = id;               /* acknowledged before the kill landed */
    close(fds[0]);
    assert_true(last >= 300);
    shale_objstore *s = open_uri(uri, true);
    for (uint64_t i = 1; i <= last; i++) {
        char v[64];
        snprintf(v, sizeof v, "value-%llu", (unsigned long long)i);
        expect(s, i, v);
    }
    put_id(s, last + 1000, "after");    /* the log takes appends after the kill */
    shale_objstore_close(s);
    s = open_uri(uri, false);
    expect(s, last + 1000, "after");
    shale_objstore_close(s);
    assert_int_equal(count_other_files(root), 0);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

static void test_sigkill_writer(void **state)
{
    (void)state;
    sigkill_writer(0);
}

static void test_sigkill_writer_rotating_spares(void **state)
{
    (void)state;
    sigkill_writer(16u << 10);
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
        wk(id, k, sizeof k);
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
    char *uri, *root = new_root(&uri, true);
    shale_objstore *s = open_uri(uri, true);
    char k[64];
    wk(1, k, sizeof k);
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
            expect(s, id, v);
        }
        shale_objstore_close(s);
        s = open_uri(uri, true);
    }
    assert_true(count_segs(root) > 4);
    assert_int_equal(count_other_files(root), 0);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

/* A failed fdatasync of a spare is sticky like any other: the store
 * refuses writes from then on, although no record was in the spare. */
static void test_spare_fdatasync_failure_is_sticky(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(32u << 10);
    char *uri, *root = new_root(&uri, true);
    shale_objstore *s = open_uri(uri, true);
    char k[64];
    wk(1, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync("file", ".wal-log/spare", 1, 1));
    char v[1001];
    memset(v, 'v', 1000);
    v[1000] = '\0';
    /* Appends go on until the zeroer, asked for a spare once the first
     * segment is half used, reports its failed sync; then every write is
     * refused.  (Bounded: a spare of 32 KiB takes a few ms.) */
    shale_status rc = SHALE_OK;
    uint64_t id = 2;
    for (; id < 20000 && rc == SHALE_OK; id++) {
        wk(id, k, sizeof k);
        rc = shale_objstore_put_if_absent(s, k, v, 1000);
    }
    TU_RC(SHALE_CLOSED, rc);
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    wk(id + 1, k, sizeof k);
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, k, "x", 1));
    expect(s, 2, v);                                        /* reads go on */
    shale_objstore_close(s);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

int main(void)
{
    g_dir = tu_tmpdir("fslog");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract),
        cmocka_unit_test(test_reopen_and_tailing),
        cmocka_unit_test(test_race_processes),
        cmocka_unit_test(test_race_handles),
        cmocka_unit_test(test_mode_switch_fences),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_garbage_tail),
        cmocka_unit_test(test_stale_frame_beyond_rewritten_tail),
        cmocka_unit_test(test_rotation_and_unlink),
        cmocka_unit_test(test_mixed_regular_and_records),
        cmocka_unit_test(test_fdatasync_failure_is_sticky),
        cmocka_unit_test(test_sigkill_writer),
        cmocka_unit_test(test_sigkill_writer_rotating_spares),
        cmocka_unit_test(test_spares_under_appends),
        cmocka_unit_test(test_spare_fdatasync_failure_is_sticky),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(g_dir);
    free(g_dir);
    return rc;
}
