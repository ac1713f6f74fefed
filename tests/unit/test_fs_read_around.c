/*
 * test_fs_read_around.c -- file:// read-around (objstore_fs.c): each
 * 128 KiB window is advised (posix_fadvise WILLNEED) once per reader
 * handle.  Counted, not timed: the advice on every block miss was 9 % of a
 * cold readrandom's CPU (docs/benchmarks.md), and a regression would only
 * show as a slower benchmark.
 */
#include "support/testutil.h"
#include "objstore/objstore_int.h"
#include "shale_objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 128 << 10, SZ = 8 * W + 1000 };

static void read_ok(shale_objreader *rd, const char *obj, uint64_t off, uint64_t len)
{
    void *got = NULL;
    size_t glen = 0;
    TU_OK(shale_objreader_read(rd, off, len, &got, &glen));
    assert_int_equal(glen, len);
    assert_memory_equal(got, obj + off, len);   /* the right bytes, too */
    shale_free(got);
}

static void test_each_window_advised_once(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("fsra"), *uri = tu_file_uri(dir, "s");
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    char *obj = malloc(SZ);
    assert_non_null(obj);
    for (size_t i = 0; i < SZ; i++)
        obj[i] = (char)(i * 7 + i / 4096);
    TU_OK(shale_objstore_put(s, "big", obj, SZ));
    TU_OK(shale_objstore_put(s, "small", obj, 5000));
    shale_objreader *rd = NULL;
    TU_OK(shale_objreader_open(s, "big", 0, &rd));
    long a0 = objstore_fs_read_around_advices();
    static const uint64_t offs[] = {0, 4096, W - 10, 3 * W + 5, 3 * W + 60000, 0, 8 * W + 100};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof offs / sizeof *offs; i++)
            read_ok(rd, obj, offs[i], offs[i] + 4096 > SZ ? SZ - offs[i] : 4096);
    /* Windows 0 (the read at W-10 straddles into 1 and is advised by its
     * start), 3 and 8 (the tail): three advices over 21 reads. */
    assert_int_equal(objstore_fs_read_around_advices() - a0, 3);
    read_ok(rd, obj, 5 * W, W);                      /* a large read: none */
    assert_int_equal(objstore_fs_read_around_advices() - a0, 3);
    read_ok(rd, obj, 5 * W + 100, 100);              /* its window: one */
    assert_int_equal(objstore_fs_read_around_advices() - a0, 4);
    shale_objreader *rd2 = NULL;                     /* a handle of its own */
    TU_OK(shale_objreader_open(s, "big", 0, &rd2));
    read_ok(rd2, obj, 4096, 100);
    read_ok(rd2, obj, 4000, 100);
    assert_int_equal(objstore_fs_read_around_advices() - a0, 5);
    shale_objreader_close(rd2);
    shale_objreader *sm = NULL;                      /* within one window: none */
    TU_OK(shale_objreader_open(s, "small", 0, &sm));
    read_ok(sm, obj, 100, 100);
    assert_int_equal(objstore_fs_read_around_advices() - a0, 5);
    shale_objreader_close(sm);
    shale_objreader_close(rd);
    shale_objstore_close(s);
    free(obj);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_window_advised_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
