/* test_agent_util.c -- the agent's own helpers (agent/agent_util.h). */
#include "support/testutil.h"
#include "agent_util.h"

#include <stdlib.h>
#include <string.h>

static void buf_grows_detaches_and_refuses_overflow(void **state)
{
    (void)state;
    agent_buf b = AGENT_BUF_INIT;
    char chunk[100];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 50; i++)
        TU_OK(agent_buf_append(&b, chunk, sizeof chunk));
    TU_OK(agent_buf_append_u8(&b, 'z'));
    assert_int_equal(b.len, 5001);
    assert_true(b.cap >= b.len);
    assert_int_equal(b.data[4999], 'a');
    assert_int_equal(b.data[5000], 'z');
    /* An append that cannot fit leaves the buffer as it was. */
    uint8_t *before = b.data;
    TU_RC(SHALE_NO_MEMORY, agent_buf_append(&b, chunk, SIZE_MAX - 10));
    assert_true(strstr(shale_errmsg(), "out of memory at") != NULL);
    assert_int_equal(b.len, 5001);
    assert_ptr_equal(b.data, before);
    agent_buf_reset(&b);
    assert_int_equal(b.len, 0);
    TU_OK(agent_buf_append(&b, "hi", 3));
    size_t n = 0;
    char *s = (char *)agent_buf_detach(&b, &n);
    assert_int_equal(n, 3);
    assert_string_equal(s, "hi");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
    /* An empty buffer detaches to an allocation of its own. */
    s = (char *)agent_buf_detach(&b, NULL);
    assert_non_null(s);
    free(s);
    TU_OK(agent_buf_append(&b, "x", 1));
    agent_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    agent_buf_free(&b);   /* twice is harmless */
}

static void strdup_clocks_random(void **state)
{
    (void)state;
    assert_null(agent_strdup(NULL));
    char *d = agent_strdup("split-1");
    assert_string_equal(d, "split-1");
    free(d);
    /* Wall clock after 2020-01-01, monotonic clock not going back across a
     * sleep of 20 ms. */
    assert_true(agent_now_ms() > 1577836800000LL);
    int64_t a = agent_mono_ms();
    agent_sleep_ms(20);
    assert_true(agent_mono_ms() - a >= 20);
    uint8_t r1[32], r2[32];
    agent_random_bytes(r1, sizeof r1);
    agent_random_bytes(r2, sizeof r2);
    assert_memory_not_equal(r1, r2, sizeof r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_grows_detaches_and_refuses_overflow),
        cmocka_unit_test(strdup_clocks_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
