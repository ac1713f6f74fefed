/*
 * test_fs_log_rotate.c -- the WAL log's dead rotation (objstore_fs_log.c
 * drop_dead): once a delete leaves no record live and the current segment
 * holds more than a sixteenth of the rotation bound, a new empty segment
 * becomes the current one and the old one is unlinked, so the next open
 * reads an empty segment instead of the dead frames.
 *
 * The rotation itself, its threshold, a process SIGKILLed at each step of
 * it (the hook objstore_fs_log_set_rotate_hook), the state a power loss
 * can leave (the new segment durable, the old one's unlink and tombstones
 * lost: the delete was not acknowledged, so its records come back, and
 * create-if-absent of their ids is refused), and a failed directory fsync
 * in the rotation (sticky; the deleted records stay deleted); and a
 * handle whose current segment was unlinked behind it by two rotations.
 */
#include "support/crashtest.h"
#include "support/fslogtest.h"
#include "objstore/objstore_int.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOUND (64u << 10)   /* rotation bound: dead rotation past 4 KiB */
#define NREC 40u            /* 40 x 1048 bytes: one segment */

static void value(uint64_t id, char *v)   /* 1000 bytes */
{
    memset(v, 'a' + (int)(id % 26), 1000);
    snprintf(v, 24, "v%llu:", (unsigned long long)id);
}

static void put_all(shale_objstore *s, uint64_t first, uint64_t n)
{
    for (uint64_t id = first; id < first + n; id++) {
        char k[64], v[1000];
        fl_wk(id, k, sizeof k);
        value(id, v);
        TU_OK(shale_objstore_put(s, k, v, sizeof v));
    }
}

/* delete_many of ids [first, first + n). */
static shale_status del_all(shale_objstore *s, uint64_t first, uint64_t n)
{
    char (*k)[64] = malloc(n * sizeof *k);
    const char **kp = malloc(n * sizeof *kp);
    for (uint64_t i = 0; i < n; i++) {
        fl_wk(first + i, k[i], sizeof k[i]);
        kp[i] = k[i];
    }
    shale_status rc = shale_objstore_delete_many(s, kp, n);
    free(kp);
    free(k);
    return rc;
}

static void expect(shale_objstore *s, uint64_t id)
{
    char k[64], v[1000];
    fl_wk(id, k, sizeof k);
    value(id, v);
    void *got = NULL;
    size_t n = 0;
    TU_OK(shale_objstore_get(s, k, &got, &n));
    assert_int_equal(n, sizeof v);
    assert_memory_equal(got, v, n);
    shale_free(got);
}

static void expect_missing(shale_objstore *s, uint64_t id)
{
    char k[64];
    fl_wk(id, k, sizeof k);
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, k, NULL, NULL));
}

static bool seg_exists(const char *root, uint64_t no)
{
    char *p = fl_seg_path(root, no);
    struct stat st;
    bool r = stat(p, &st) == 0;
    free(p);
    return r;
}

/* The kind of segment no's last frame (frames walked by magic and length
 * only; 0: none). */
static uint32_t last_kind(const char *root, uint64_t no)
{
    char *p = fl_seg_path(root, no);
    FILE *f = fopen(p, "rb");
    free(p);
    assert_non_null(f);
    uint32_t kind = 0;
    unsigned char h[48];
    long off = 0;
    while (fseek(f, off, SEEK_SET) == 0 && fread(h, 1, sizeof h, f) == sizeof h) {
        uint32_t magic = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                         (uint32_t)h[3] << 24;
        if (magic != 0x314c5753u)
            break;
        kind = (uint32_t)h[4];
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--)
            len = len << 8 | h[16 + i];
        off += 48 + (long)len;
    }
    fclose(f);
    return kind;
}

/* Whether segment no holds a frame (its first 4 bytes are not zero). */
static bool seg_has_frame(const char *root, uint64_t no)
{
    char *p = fl_seg_path(root, no);
    int fd = open(p, O_RDONLY);
    free(p);
    assert_true(fd >= 0);
    unsigned char m[4] = {0};
    ssize_t r = pread(fd, m, 4, 0);
    close(fd);
    return r == 4 && (m[0] | m[1] | m[2] | m[3]);
}

static void *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(*n ? *n : 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void write_whole(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fflush(f), 0);
    fclose(f);
}

/* Once nothing is live, a delete rotates away from a segment past the
 * threshold and unlinks it; not while a record is live, nor below it. */
static void test_dead_rotation(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(BOUND);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    put_all(s, 1, NREC);
    assert_true(seg_exists(root, 1));
    assert_false(seg_exists(root, 2));
    TU_OK(del_all(s, 1, NREC - 1));          /* one record still live */
    assert_true(seg_exists(root, 1));
    assert_false(seg_exists(root, 2));
    char k[64];
    fl_wk(NREC, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));      /* the last one: dead rotation */
    assert_false(seg_exists(root, 1));
    assert_true(seg_exists(root, 2));
    assert_false(seg_has_frame(root, 2));    /* the next open reads no frame */
    for (uint64_t id = 1; id <= NREC; id++)
        expect_missing(s, id);
    put_all(s, 100, 2);                      /* appends go to the new segment */
    assert_true(seg_has_frame(root, 2));
    shale_objstore_close(s);
    s = fl_open(uri, true);
    for (uint64_t id = 1; id <= NREC; id++)
        expect_missing(s, id);
    expect(s, 100);
    expect(s, 101);
    /* Below the threshold (2 x 1048 bytes < 4 KiB): no rotation. */
    TU_OK(del_all(s, 100, 2));
    assert_true(seg_exists(root, 2));
    assert_false(seg_exists(root, 3));
    expect_missing(s, 100);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

static void kill_self(int step)
{
    const char *want = getenv("TEST_ROTATE_KILL_STEP");
    if (want && atoi(want) == step)
        raise(SIGKILL);
}

/* kill_at's child (a ct_body): writes NREC records, then deletes them all
 * with kill_self armed at the step. */
typedef struct kill_job {
    const char *uri;
    int step;
} kill_job;

static void rotate_until_killed(void *arg, int ack)
{
    (void)ack;
    const kill_job *j = arg;
    char sv[8];
    snprintf(sv, sizeof sv, "%d", j->step);
    setenv("TEST_ROTATE_KILL_STEP", sv, 1);
    shale_objstore *s = NULL;
    if (shale_objstore_open(j->uri, NULL, &s))
        ct_die(2, "open");
    for (uint64_t id = 1; id <= NREC; id++) {
        char k[64], v[1000];
        fl_wk(id, k, sizeof k);
        value(id, v);
        if (shale_objstore_put(s, k, v, sizeof v))
            ct_die(3, "put");
    }
    objstore_fs_log_set_rotate_hook(kill_self);
    (void)del_all(s, 1, NREC);
    ct_die(0, "the rotate hook did not fire: no rotation");
}

/* A process SIGKILLed at step (1: tombstones written, no new segment; 3:
 * the old segment sealed, no new one; 2: the new segment durable, the old
 * one not unlinked).  After it the log
 * opens with every deleted record missing, takes appends, refuses a
 * create-if-absent of an id it holds, and a later delete finishes the
 * unlinking. */
static void kill_at(int step)
{
    objstore_fs_log_set_segment_bytes(BOUND);
    char *uri, *root = fl_new_root(&uri, true);
    kill_job j = {uri, step};
    ct_child c;
    ct_start(&c, rotate_until_killed, &j);
    ct_close(&c);
    ct_expect_killed(&c);
    assert_true(seg_exists(root, 1));
    assert_int_equal(seg_exists(root, 2), step == 2);
    assert_int_equal(last_kind(root, 1), step == 1 ? 2u : 3u);   /* a tombstone, or the seal */
    shale_objstore *s = fl_open(uri, true);
    for (uint64_t id = 1; id <= NREC; id++)
        expect_missing(s, id);   /* the tombstones were written (SIGKILL keeps them) */
    char k[64];
    fl_wk(200, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));   /* a regular file: the claim */
    put_all(s, 201, 1);
    fl_wk(201, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "again", 5));
    fl_wk(200, k, sizeof k);
    TU_OK(shale_objstore_delete(s, k));
    TU_OK(del_all(s, 201, 1));   /* nothing live: the old segment goes */
    assert_false(seg_exists(root, 1));
    put_all(s, 202, 1);
    shale_objstore_close(s);
    s = fl_open(uri, true);
    for (uint64_t id = 1; id <= NREC; id++)
        expect_missing(s, id);
    expect_missing(s, 201);
    expect(s, 202);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

static void test_kill_before_new_segment(void **state)
{
    (void)state;
    kill_at(1);
}

/* Killed between the seal of the old segment and the new one: the next
 * handle finds a sealed newest segment, appends to a new one, and the old
 * one still goes once nothing in it is live. */
static void test_kill_after_seal(void **state)
{
    (void)state;
    kill_at(3);
}

static void test_kill_before_old_unlinked(void **state)
{
    (void)state;
    kill_at(2);
}

/* A power loss after the new segment was made durable and before the old
 * one's unlink and tombstones were: built by writing the old segment back
 * as it was before the delete.  The delete was not acknowledged, so its
 * records are back -- readable, and create-if-absent of their ids is
 * refused -- and a second delete removes them for good, across segments
 * (tombstones in the new segment, puts in the old one). */
static void test_power_loss_in_rotation(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(BOUND);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    put_all(s, 1, NREC);
    shale_objstore_close(s);
    char *p1 = fl_seg_path(root, 1);
    size_t n1 = 0;
    void *old = read_whole(p1, &n1);
    s = fl_open(uri, true);
    TU_OK(del_all(s, 1, NREC));
    shale_objstore_close(s);
    assert_false(seg_exists(root, 1));
    assert_true(seg_exists(root, 2));
    write_whole(p1, old, n1);
    s = fl_open(uri, true);
    for (uint64_t id = 1; id <= NREC; id++)
        expect(s, id);
    char k[64];
    fl_wk(300, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "fence", 5));   /* the claim */
    fl_wk(7, k, sizeof k);
    TU_RC(SHALE_PRECONDITION_FAILED, shale_objstore_put_if_absent(s, k, "x", 1));
    put_all(s, NREC + 1, 1);                 /* into segment 2 */
    TU_OK(del_all(s, 1, NREC));
    assert_false(seg_exists(root, 1));      /* all its puts dead */
    expect(s, NREC + 1);
    shale_objstore_close(s);
    s = fl_open(uri, true);
    for (uint64_t id = 1; id <= NREC; id++)
        expect_missing(s, id);
    expect(s, NREC + 1);
    shale_objstore_close(s);
    free(old);
    free(p1);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

/* The rotation's directory fsync fails: the delete is not acknowledged,
 * the store refuses writes from then on (sticky), and a new handle finds
 * the records deleted (the tombstones were written before) and appends. */
static void test_rotation_dir_fsync_failure(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(BOUND);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    put_all(s, 1, NREC);
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync("dir", "wal/", 1, 1));
    TU_RC(SHALE_IO, del_all(s, 1, NREC));
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    char k[64];
    fl_wk(NREC + 1, k, sizeof k);
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, k, "x", 1));
    shale_objstore_close(s);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    s = fl_open(uri, true);
    for (uint64_t id = 1; id <= NREC; id++)
        expect_missing(s, id);
    put_all(s, NREC + 1, 1);
    shale_objstore_close(s);
    s = fl_open(uri, true);
    expect(s, NREC + 1);
    shale_objstore_close(s);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

/* A handle left behind: A last looked at segment 1; B rotated twice (1 ->
 * 2 -> 3), so segments 1 and 2 are gone.  A's next append must not go to
 * its unlinked segment 1 (an acknowledged record lost): it finds segment
 * 3 (the index built again) and a new handle reads the record. */
static void test_handle_left_behind(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(BOUND);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *a = fl_open(uri, true), *b = fl_open(uri, true);
    put_all(a, 1, 1);
    put_all(b, 2, NREC - 1);
    TU_OK(del_all(b, 1, NREC));
    put_all(b, 41, NREC);
    TU_OK(del_all(b, 41, NREC));
    assert_false(seg_exists(root, 1));
    assert_false(seg_exists(root, 2));
    assert_true(seg_exists(root, 3));
    put_all(a, 100, 1);
    expect_missing(a, 1);
    expect(a, 100);
    shale_objstore *c = fl_open(uri, true);
    expect(c, 100);
    expect_missing(c, 1);
    expect(b, 100);
    shale_objstore_close(c);
    shale_objstore_close(b);
    shale_objstore_close(a);
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

int main(void)
{
    fl_init("fslog_rotate");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_rotation),
        cmocka_unit_test(test_kill_before_new_segment),
        cmocka_unit_test(test_kill_after_seal),
        cmocka_unit_test(test_kill_before_old_unlinked),
        cmocka_unit_test(test_power_loss_in_rotation),
        cmocka_unit_test(test_rotation_dir_fsync_failure),
        cmocka_unit_test(test_handle_left_behind),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fl_done();
    return rc;
}
