/*
 * test_par.c -- par_for() (agent/par.h): every item runs once, even after
 * a failure; the error returned is the lowest failing index's, with its
 * own message (messages are per thread); items run at once (a barrier that
 * only opens when PAR_THREADS items wait on it together would never open
 * if they ran one after another).
 */
#include "support/testutil.h"
#include "par.h"
#include "workpool.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct ctx {
    _Atomic int runs[100];
    pthread_barrier_t barrier;
    bool use_barrier;
} ctx;

static shale_status item(void *arg, size_t i)
{
    ctx *c = arg;
    atomic_fetch_add(&c->runs[i], 1);
    if (c->use_barrier && i < PAR_THREADS)
        pthread_barrier_wait(&c->barrier);
    if (i == 17 || i == 63)
        return shale_err(i == 17 ? SHALE_CONFLICT : SHALE_IO, "item %zu failed", i);
    return SHALE_OK;
}

static void test_lowest_failure_reported_all_run(void **state)
{
    (void)state;
    static ctx c;
    memset(&c, 0, sizeof c);
    size_t failed = 0;
    assert_int_equal(par_for(100, item, &c, &failed), SHALE_CONFLICT);
    assert_int_equal(failed, 17);
    assert_string_equal(shale_errmsg(), "item 17 failed");
    for (int i = 0; i < 100; i++)
        assert_int_equal(atomic_load(&c.runs[i]), 1);
}

static void test_items_run_at_once(void **state)
{
    (void)state;
    static ctx c;
    memset(&c, 0, sizeof c);
    c.use_barrier = true;
    assert_int_equal(pthread_barrier_init(&c.barrier, NULL, PAR_THREADS), 0);
    size_t failed = 0;
    assert_int_equal(par_for(PAR_THREADS, item, &c, &failed), SHALE_CONFLICT);
    assert_int_equal(failed, 17);
    pthread_barrier_destroy(&c.barrier);
}

static shale_status ok_item(void *arg, size_t i)
{
    (void)arg;
    (void)i;
    return SHALE_OK;
}

static void test_one_and_none(void **state)
{
    (void)state;
    assert_int_equal(par_for(1, ok_item, NULL, NULL), SHALE_OK);
    assert_int_equal(par_for(0, ok_item, NULL, NULL), SHALE_OK);
}

/* The helpers are pool threads (workpool.h): a second call of the same
 * size, its items again all at once, starts no thread; a thread per call
 * (what par_for did before) starts PAR_THREADS - 1 each time. */
static void test_helpers_reused(void **state)
{
    (void)state;
    static ctx c;
    for (int round = 0; round < 3; round++) {
        memset(&c, 0, sizeof c);
        c.use_barrier = true;
        assert_int_equal(pthread_barrier_init(&c.barrier, NULL, PAR_THREADS), 0);
        size_t before = workpool_started();
        assert_int_equal(par_for(PAR_THREADS, item, &c, NULL), SHALE_CONFLICT);
        pthread_barrier_destroy(&c.barrier);
        for (int i = 0; i < PAR_THREADS; i++)
            assert_int_equal(atomic_load(&c.runs[i]), 1);
        if (round > 0)
            assert_int_equal(workpool_started(), before);
        assert_true(workpool_idle() >= PAR_THREADS - 1);
    }
}

/* A forked child (the pool's threads are not in it) still runs its items
 * at once: its pool starts empty.  Without that, the child's first task
 * would wait for an idle thread of the parent's forever (the alarm ends
 * it). */
static void test_pool_after_fork(void **state)
{
    (void)state;
#if defined(__SANITIZE_THREAD__)
    skip();   /* TSan does not run threads in a child forked from threads */
#endif
    static ctx c;
    memset(&c, 0, sizeof c);
    assert_int_equal(par_for(8, ok_item, NULL, NULL), SHALE_OK);   /* idle threads now */
    assert_true(workpool_idle() >= 7);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        c.use_barrier = true;
        if (pthread_barrier_init(&c.barrier, NULL, PAR_THREADS))
            _exit(2);
        shale_status rc = par_for(PAR_THREADS, item, &c, NULL);
        _exit(rc == SHALE_CONFLICT && atomic_load(&c.runs[0]) == 1 ? 0 : 1);
    }
    tu_expect_exit(pid, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowest_failure_reported_all_run),
        cmocka_unit_test(test_items_run_at_once),
        cmocka_unit_test(test_one_and_none),
        cmocka_unit_test(test_helpers_reused),
        cmocka_unit_test(test_pool_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
