/*
 * test_fs_log_crash.c -- the WAL log mode of the file:// store
 * (objstore_fs_log.c) after crashes and failed syncs: torn and garbage
 * tails, stale frames beyond a rewritten tail, a sticky fdatasync
 * failure, a writer SIGKILLed mid-stream (also while it rotates onto
 * spare segments), and a failed sync of a spare.  A SIGKILL keeps the page
 * cache: power loss is covered by the argument in objstore_fs_log.c and by
 * the torn-tail cases, which build the states a lost page cache can leave.
 * The log's contract and its normal life are in test_fs_log.c.
 */
#include "support/crashtest.h"
#include "support/fslogtest.h"
#include "objstore/objstore_int.h"
#include "objstore/objstore_fs_log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- crash states ---------------------------------------------------- */

/* Writes ids 1..3 ("aaaa", "bbbbbbbb", "cc") as records; returns the
 * segment's path. */
static char *three_records(const char *uri, const char *root)
{
    shale_objstore *s = fl_open(uri, true);
    fl_put_id(s, 1, "aaaa");
    fl_put_id(s, 2, "bbbbbbbb");
    fl_put_id(s, 3, "cc");
    shale_objstore_close(s);
    return fl_seg_path(root, 1);
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
    char *uri, *root = fl_new_root(&uri, true);
    char *seg = three_records(uri, root);
    off_t c_at = 2 * FL_HDR + 4 + 8;
    assert_int_equal(truncate(seg, c_at + FL_HDR + 1), 0);
    shale_objstore *s = fl_open(uri, true);
    fl_expect(s, 1, "aaaa");
    fl_expect(s, 2, "bbbbbbbb");
    fl_expect_missing(s, 3);
    fl_put_id(s, 4, "dddddd");
    shale_objstore_close(s);
    s = fl_open(uri, false);
    fl_expect(s, 4, "dddddd");
    fl_expect_missing(s, 3);
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
    char *uri, *root = fl_new_root(&uri, true);
    char *seg = three_records(uri, root);
    off_t end = 3 * FL_HDR + 4 + 8 + 2;
    uint8_t junk[300];
    uint64_t rs = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)tu_rand(&rs);
    junk[0] = 'S', junk[1] = 'W', junk[2] = 'L', junk[3] = '1';   /* the magic, then junk */
    poke(seg, end, junk, sizeof junk);
    shale_objstore *s = fl_open(uri, true);
    fl_expect(s, 3, "cc");
    fl_put_id(s, 4, "dd");
    fl_put_id(s, 5, "eeeee");
    shale_objstore_close(s);
    s = fl_open(uri, false);
    for (uint64_t id = 1; id <= 5; id++) {
        char k[64];
        fl_wk(id, k, sizeof k);
        TU_OK(shale_objstore_head(s, k, NULL, NULL));
    }
    fl_expect(s, 4, "dd");
    fl_expect(s, 5, "eeeee");
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
    char *uri, *root = fl_new_root(&uri, true);
    char *seg = three_records(uri, root);
    off_t b_payload = FL_HDR + 4 + FL_HDR;
    poke(seg, b_payload + 3, "X", 1);   /* id 2's frame no longer checks */
    shale_objstore *s = fl_open(uri, true);
    fl_expect(s, 1, "aaaa");
    fl_expect_missing(s, 2);
    fl_expect_missing(s, 3);               /* intact, but beyond the torn frame */
    fl_put_id(s, 9, "zzzzzzzz");           /* the same length as id 2's: ends where 3 begins */
    shale_objstore_close(s);
    s = fl_open(uri, true);
    fl_expect(s, 1, "aaaa");
    fl_expect(s, 9, "zzzzzzzz");
    fl_expect_missing(s, 2);
    fl_expect_missing(s, 3);
    char k[64];
    fl_wk(3, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "first", 5));   /* regular: the first */
    fl_wk(10, k, sizeof k);
    TU_OK(shale_objstore_put_if_absent(s, k, "ten", 3));     /* a record over the stale one */
    shale_objstore_close(s);
    s = fl_open(uri, false);
    fl_expect(s, 10, "ten");
    fl_expect(s, 3, "first");
    shale_objstore_close(s);
    free(seg);
    free(root);
    free(uri);
}

/* ---- fdatasync failure ---------------------------------------------- */

static void test_fdatasync_failure_is_sticky(void **state)
{
    (void)state;
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    fl_put_id(s, 1, "one");
    long before = objstore_fs_fsync_failures();
    TU_OK(objstore_fs_fail_fsync("file", "wal/", 1, 1));
    char k[64];
    fl_wk(2, k, sizeof k);
    TU_RC(SHALE_IO, shale_objstore_put(s, k, "two", 3));
    assert_non_null(strstr(shale_errmsg(), "fdatasync"));
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    fl_wk(3, k, sizeof k);
    TU_RC(SHALE_CLOSED, shale_objstore_put_if_absent(s, k, "three", 5));
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, k, "three", 5));
    TU_RC(SHALE_CLOSED, shale_objstore_delete(s, "wal/00000000000000000001.sst"));
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, "other", "x", 1));
    fl_expect(s, 1, "one");                                   /* reads go on */
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);  /* nothing retried */
    shale_objstore_close(s);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    s = fl_open(uri, true);                               /* a new handle starts clean */
    fl_put_id(s, 3, "three");
    fl_expect(s, 3, "three");
    shale_objstore_close(s);
    free(root);
    free(uri);
}

/* ---- a writer killed mid-stream -------------------------------------- */

/* The killed writer: records for ids 1, 2, ... on uri, each id on the pipe
 * once its put returned. */
static void append_records(void *arg, int ack)
{
    shale_objstore *s = NULL;
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    if (shale_objstore_open(arg, &o, &s))
        ct_die(2, "open");
    for (uint64_t id = 1;; id++) {
        char k[64], v[64];
        fl_wk(id, k, sizeof k);
        int vl = snprintf(v, sizeof v, "value-%llu", (unsigned long long)id);
        if (shale_objstore_put_if_absent(s, k, v, (size_t)vl))
            ct_die(3, "put_if_absent");
        ct_ack(ack, &id, sizeof id);
    }
}

/* bound: the rotation bound (0: the default), small to have the child
 * rotate through spares while it is killed; the log after the kill holds
 * segments only (no spare is left behind) and every acknowledged record. */
static void sigkill_writer(uint64_t bound)
{
    objstore_fs_log_set_segment_bytes(bound);
    char *uri, *root = fl_new_root(&uri, true);
    ct_child c;
    ct_start(&c, append_records, uri);
    uint64_t id = 0, last = 0;
    while (last < 300 && ct_recv(&c, &id, sizeof id))
        last = id;
    ct_kill(&c);                 /* mid-stream: it is appending */
    while (ct_recv(&c, &id, sizeof id))
        last = id;               /* acknowledged before the kill landed */
    assert_true(last >= 300);
    shale_objstore *s = fl_open(uri, true);
    for (uint64_t i = 1; i <= last; i++) {
        char v[64];
        snprintf(v, sizeof v, "value-%llu", (unsigned long long)i);
        fl_expect(s, i, v);
    }
    fl_put_id(s, last + 1000, "after");    /* the log takes appends after the kill */
    shale_objstore_close(s);
    s = fl_open(uri, false);
    fl_expect(s, last + 1000, "after");
    shale_objstore_close(s);
    assert_int_equal(fl_count_other_files(root), 0);
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

/* A failed fdatasync of a spare is sticky like any other: the store
 * refuses writes from then on, although no record was in the spare. */
static void test_spare_fdatasync_failure_is_sticky(void **state)
{
    (void)state;
    objstore_fs_log_set_segment_bytes(32u << 10);
    char *uri, *root = fl_new_root(&uri, true);
    shale_objstore *s = fl_open(uri, true);
    char k[64];
    fl_wk(1, k, sizeof k);
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
        fl_wk(id, k, sizeof k);
        rc = shale_objstore_put_if_absent(s, k, v, 1000);
    }
    TU_RC(SHALE_CLOSED, rc);
    assert_int_equal(objstore_fs_fsync_failures(), before + 1);
    fl_wk(id + 1, k, sizeof k);
    TU_RC(SHALE_CLOSED, shale_objstore_put(s, k, "x", 1));
    fl_expect(s, 2, v);                                        /* reads go on */
    shale_objstore_close(s);
    TU_OK(objstore_fs_fail_fsync(NULL, NULL, 1, 0));
    objstore_fs_log_set_segment_bytes(0);
    free(root);
    free(uri);
}

int main(void)
{
    fl_init("fslogcrash");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_garbage_tail),
        cmocka_unit_test(test_stale_frame_beyond_rewritten_tail),
        cmocka_unit_test(test_fdatasync_failure_is_sticky),
        cmocka_unit_test(test_sigkill_writer),
        cmocka_unit_test(test_sigkill_writer_rotating_spares),
        cmocka_unit_test(test_spare_fdatasync_failure_is_sticky),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fl_done();
    return rc;
}
