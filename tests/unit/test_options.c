/*
 * test_options.c -- shale_options can grow without breaking callers
 * (docs/library.md "Compatibility"): the struct carries its size, set by
 * shale_options_init(); the library takes only the bytes a caller's header
 * declares, defaults the rest, and refuses a newer header's struct only if
 * it sets a field the library does not know.
 */
#include "support/testutil.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Room for a struct from a header newer than ours. */
typedef union {
    shale_options o;
    unsigned char bytes[sizeof(shale_options) + 64];
} big_options;

/* init writes no byte past the size it is given: an older header's struct
 * is shorter than ours. */
static void test_init_stays_in_the_callers_struct(void **state)
{
    (void)state;
    big_options b;
    memset(&b, 0xAA, sizeof b);
    size_t older = offsetof(shale_options, block_size);
    shale_options_init_size(&b.o, older);
    assert_int_equal(b.o.struct_size, older);
    assert_true(b.o.create_if_missing);
    for (size_t i = older; i < sizeof b; i++)
        assert_int_equal(b.bytes[i], 0xAA);
    /* The macro passes the caller's sizeof. */
    shale_options o;
    shale_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
}

/* Options from an older header: the bytes beyond its size are not read
 * (here garbage that check_options would refuse), defaults stand in. */
static void test_older_header_gets_defaults(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("opts_older");
    char *uri = tu_file_uri(dir, "db");
    big_options b;
    memset(&b, 0xFF, sizeof b);
    size_t older = offsetof(shale_options, block_size);
    shale_options_init_size(&b.o, older);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &b.o, &db));
    TU_OK(shale_put(db, "k", 1, "v", 1));
    TU_OK(shale_close(db));
    /* Control: the same garbage inside the struct's declared size is read
     * (and refused), so the test above did not pass by accident. */
    b.o.struct_size = sizeof b.o;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open(uri, &b.o, &db));
    free(uri);
    tu_rmtree(dir);
    free(dir);
}

/* Options from a newer header: accepted while the fields this library
 * does not know are zero, refused (naming the byte) once one is set. */
static void test_newer_header(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("opts_newer");
    char *uri = tu_file_uri(dir, "db");
    big_options b;
    memset(&b, 0, sizeof b);
    shale_options_init_size(&b.o, sizeof b);
    assert_int_equal(b.o.struct_size, sizeof b);
    shale_db *db = NULL;
    TU_OK(shale_open(uri, &b.o, &db));
    TU_OK(shale_close(db));
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(uri, &b.o, NULL, &r));
    shale_reader_close(r);
    b.bytes[sizeof(shale_options) + 7] = 1;
    TU_RC(SHALE_UNSUPPORTED, shale_open(uri, &b.o, &db));
    assert_non_null(strstr(shale_errmsg(), "does not know"));
    TU_RC(SHALE_UNSUPPORTED, shale_reader_open(uri, &b.o, NULL, &r));
    free(uri);
    tu_rmtree(dir);
    free(dir);
}

/* Options never initialised: a clear refusal, not a guess. */
static void test_uninitialised_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("opts_zero");
    char *uri = tu_file_uri(dir, "db");
    shale_options o;
    memset(&o, 0, sizeof o);
    shale_db *db = NULL;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open(uri, &o, &db));
    assert_non_null(strstr(shale_errmsg(), "shale_options_init"));
    shale_gc_result g;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_gc(uri, &o, NULL, &g));
    /* NULL options are the defaults. */
    TU_OK(shale_open(uri, NULL, &db));
    TU_OK(shale_close(db));
    free(uri);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_stays_in_the_callers_struct),
        cmocka_unit_test(test_older_header_gets_defaults),
        cmocka_unit_test(test_newer_header),
        cmocka_unit_test(test_uninitialised_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
