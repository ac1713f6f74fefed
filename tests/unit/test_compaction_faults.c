/*
 * test_compaction_faults.c -- a failing compaction does not stop the
 * writer.  Every read of an SST fails (what a compaction does first; a
 * writer's puts read nothing), on file:// behind the fault wrapper:
 *
 *   - writes go on being acknowledged while compactions fail;
 *   - shale_compact() returns the compaction's error, and shale_db_info()
 *     counts the failures and keeps the last one;
 *   - once L0 is full and memory with it, a write is refused with a message
 *     naming the failing compaction instead of waiting forever, and so is a
 *     memtable flush; the refused write is not applied;
 *   - when the store recovers, compaction succeeds, the error clears,
 *     writes are taken again, and after a reopen every acknowledged key
 *     reads back and the refused one is absent.
 */
#include "support/dbtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_failing_compaction_does_not_stop_writes(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("compactfault");
    char *file = tu_file_uri(dir, "db");
    char *uri = tu_fault_uri(file);
    shale_fault *ctl = shale_fault_for_uri(uri, NULL);
    assert_non_null(ctl);
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &o, &db));

    shale_fault_rule rule = {SHALE_FAULT_OP(SHALE_OP_GET_RANGE), "compacted/", 0, 0, SHALE_IO,
                             false, 0, 0};
    TU_OK(shale_fault_add(ctl, &rule, NULL));
    unsigned n = 0;
    for (int f = 0; f < 3; f++) {               /* three L0 SSTs: compaction is due */
        for (unsigned end = n + 100; n < end; n++)
            dt_put(db, n, 1);
        TU_OK(shale_flush_memtable(db));
    }
    TU_RC(SHALE_IO, shale_compact(db, false));
    if (!strstr(shale_errmsg(), "compaction failed"))
        fail_msg("shale_compact: '%s' does not say the compaction failed", shale_errmsg());
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    assert_true(info.compactions_failed >= 1);
    assert_int_equal(info.compaction_error, SHALE_IO);
    for (; n < 600; n++)                        /* the writer is not in an error state */
        dt_put(db, n, 1);

    /* Until L0 and memory are full: then a write is refused, not stalled. */
    char k[32], v[128];
    shale_status rc = SHALE_OK;
    for (; n < 100000 && !rc; n++) {
        size_t kl = dt_key(k, sizeof k, n), vl = dt_val(v, sizeof v, n, 1);
        rc = shale_put(db, k, kl, v, vl);
    }
    unsigned refused = n - 1;
    assert_int_equal(rc, SHALE_IO);
    if (!strstr(shale_errmsg(), "compaction is failing") || !strstr(shale_errmsg(), "l0_max_ssts"))
        fail_msg("refused write: '%s' does not name the failing compaction", shale_errmsg());
    TU_RC(SHALE_IO, shale_flush_memtable(db));
    if (!strstr(shale_errmsg(), "compaction is failing"))
        fail_msg("shale_flush_memtable: '%s'", shale_errmsg());

    /* The store recovers: an explicit compaction does not wait out the
     * backoff, the error clears, writes are taken again. */
    shale_fault_clear(ctl);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_db_info_get(db, &info));
    assert_int_equal(info.compaction_error, SHALE_OK);
    assert_int_equal(info.l0_count, 0);
    unsigned more = refused + 1;
    for (unsigned i = more; i < more + 100; i++)
        dt_put(db, i, 2);
    TU_OK(shale_close(db));

    TU_OK(shale_open(file, &o, &db));           /* no wrapper: what is stored */
    for (unsigned i = 0; i < refused; i++)
        dt_expect(db, i, 1);
    dt_expect(db, refused, 0);                  /* the refused write is not there */
    for (unsigned i = more; i < more + 100; i++)
        dt_expect(db, i, 2);
    TU_OK(shale_close(db));
    tu_rmtree(dir);
    free(dir);
    free(file);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failing_compaction_does_not_stop_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
