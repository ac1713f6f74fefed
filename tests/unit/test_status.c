/* test_status.c -- status codes, messages, and the mem store basics. */
#include "support/testutil.h"
#include "util/status_int.h"
#include "util/buf.h"
#include "util/coding.h"
#include "util/misc.h"

#include <stdlib.h>
#include <string.h>

static void test_strerror_every_code(void **state)
{
    (void)state;
    for (int i = 0; i < SHALE_STATUS_COUNT; i++) {
        const char *s = shale_strerror((shale_status)i);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown status");
    }
    assert_string_equal(shale_strerror((shale_status)999), "unknown status");
}

static void test_errmsg_kept_per_thread(void **state)
{
    (void)state;
    assert_int_equal(shale_err(SHALE_CORRUPT, "obj %s at %d", "x.sst", 42), SHALE_CORRUPT);
    assert_string_equal(shale_errmsg(), "obj x.sst at 42");
    shale_err_prefix(SHALE_CORRUPT, "reading");
    assert_string_equal(shale_errmsg(), "reading: obj x.sst at 42");
    /* Rewording the last error through shale_err itself (the message is an
     * argument and the destination at once) keeps it intact. */
    shale_err(SHALE_INVALID_ARGUMENT, "field '%s': %s", "children[0].store", shale_errmsg());
    assert_string_equal(shale_errmsg(), "field 'children[0].store': reading: obj x.sst at 42");
}

static void test_varint_roundtrip_and_truncation(void **state)
{
    (void)state;
    uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        uint8_t b[10];
        size_t n = put_varint(b, vals[i]);
        uint64_t v = 0;
        assert_int_equal(get_varint(b, n, &v), n);
        assert_true(v == vals[i]);
        if (n > 1)
            assert_int_equal(get_varint(b, n - 1, &v), 0); /* truncated */
    }
}

static void test_buf_grows(void **state)
{
    (void)state;
    shale_buf b = SHALE_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_append_u32le(&b, (uint32_t)i), SHALE_OK);
    assert_int_equal(b.len, 40000);
    assert_int_equal(get_u32le(b.data + 4 * 9999), 9999);
    buf_free(&b);
}

/* Past 1 MiB a buffer moves from malloc to a mapping and grows by mremap
 * (util/buf.c): the bytes survive both moves, and buf_detach still hands
 * over memory that free() takes (ASan flags it otherwise). */
static void test_buf_large_is_mapped_and_detaches(void **state)
{
    (void)state;
    shale_buf b = SHALE_BUF_INIT;
    uint8_t chunk[1000];
    for (size_t i = 0; i < 3000; i++) {          /* 3 MB: malloc, map, remap */
        memset(chunk, (int)(i % 251), sizeof chunk);
        TU_OK(buf_append(&b, chunk, sizeof chunk));
    }
    assert_int_equal(b.len, 3000000);
    for (size_t i = 0; i < 3000; i += 7)
        assert_int_equal(b.data[i * 1000 + 999], (uint8_t)(i % 251));
    buf_reset(&b);                               /* keeps the mapping */
    TU_OK(buf_append(&b, "xyz", 3));
    assert_memory_equal(b.data, "xyz", 3);
    for (size_t i = 0; i < 1500; i++)
        TU_OK(buf_append(&b, chunk, sizeof chunk));
    size_t len = 0;
    uint8_t *p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 1500003);
    assert_memory_equal(p, "xyz", 3);
    assert_int_equal(p[len - 1], chunk[0]);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    free(p);
    TU_OK(buf_reserve(&b, 5u << 20));            /* mapped from the start */
    assert_true(b.cap >= 5u << 20);
    buf_free(&b);
    assert_null(b.data);
}

static void test_ulid_time_and_order(void **state)
{
    (void)state;
    char a[27], b[27];
    ulid_new(a);
    int64_t t = ulid_time_ms(a);
    assert_true(t > 0 && llabs(t - now_ms()) < 5000);
    sleep_ms(2);
    ulid_new(b);
    assert_true(strcmp(a, b) < 0);
    assert_int_equal(ulid_time_ms("not-a-ulid"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_every_code),
        cmocka_unit_test(test_errmsg_kept_per_thread),
        cmocka_unit_test(test_varint_roundtrip_and_truncation),
        cmocka_unit_test(test_buf_grows),
        cmocka_unit_test(test_buf_large_is_mapped_and_detaches),
        cmocka_unit_test(test_ulid_time_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
