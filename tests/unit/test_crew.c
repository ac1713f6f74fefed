/*
 * test_crew.c -- crew_for() (engine/util/crew.h): its calls run at once
 * (each waits, bounded, for all of them to have begun: run one after
 * another, none would see the others); a second batch as wide starts no
 * thread; a forked child's crew starts empty and still runs its batch at
 * once.  crew_two() runs its two calls at once on kept threads, also when
 * many callers' batches end at the same time (each waits on its own
 * condition).  shale_clone_many's use of it: test_clone.
 */
#include "support/testutil.h"
#include "util/crew.h"

#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WIDTH = 8 };

typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t in, saw_all;
} probe;

static void probe_worker(void *arg)
{
    probe *c = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;   /* a bound, not a synchronisation: a broken crew fails */
    pthread_mutex_lock(&c->mu);
    c->in++;
    pthread_cond_broadcast(&c->cv);
    while (c->in < WIDTH && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    c->saw_all += c->in >= WIDTH;
    pthread_mutex_unlock(&c->mu);
}

static void run_batch(probe *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    crew_for(WIDTH, probe_worker, c);
}

static void test_runs_at_once_and_keeps_threads(void **state)
{
    (void)state;
    probe c;
    run_batch(&c);
    assert_int_equal(c.in, WIDTH);
    assert_int_equal(c.saw_all, WIDTH);
    assert_true(crew_idle() >= WIDTH - 1);
    size_t started = crew_started();
    run_batch(&c);
    assert_int_equal(c.saw_all, WIDTH);
    assert_int_equal(crew_started(), started);   /* woken, not started */
}

/* Two calls that each wait, bounded, for the other to have begun. */
typedef struct pair_probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in, saw_both;
} pair_probe;

static void pair_worker(void *arg)
{
    pair_probe *c = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;   /* a bound, not a synchronisation */
    pthread_mutex_lock(&c->mu);
    c->in++;
    pthread_cond_broadcast(&c->cv);
    while (c->in < 2 && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    c->saw_both += c->in >= 2;
    pthread_mutex_unlock(&c->mu);
}

static void run_pair(pair_probe *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    crew_two(pair_worker, c, pair_worker, c);
}

static void *pair_caller(void *arg)
{
    pair_probe *c = arg;
    for (int i = 0; i < 50; i++) {
        run_pair(c);
        if (c->saw_both != 2)
            break;
    }
    return NULL;
}

static void test_two_at_once(void **state)
{
    (void)state;
    pair_probe c;
    run_pair(&c);
    assert_int_equal(c.in, 2);
    assert_int_equal(c.saw_both, 2);
    size_t started = crew_started();
    run_pair(&c);
    assert_int_equal(c.saw_both, 2);
    assert_int_equal(crew_started(), started);   /* woken, not started */
    /* Many callers at once, each batch ending beside the others'. */
    enum { CALLERS = 8 };
    pthread_t th[CALLERS];
    pair_probe cs[CALLERS];
    for (int i = 0; i < CALLERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pair_caller, &cs[i]), 0);
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cs[i].saw_both, 2);
    }
}

static void test_after_fork(void **state)
{
    (void)state;
#if defined(__SANITIZE_THREAD__)
    skip();   /* TSan does not run threads in a child forked from threads */
#endif
    probe c;
    run_batch(&c);
    assert_true(crew_idle() >= WIDTH - 1);   /* idle threads in the parent */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);   /* without the reset the child would wait forever */
        run_batch(&c);
        _exit(c.saw_all == WIDTH ? 0 : 1);
    }
    tu_expect_exit(pid, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_at_once_and_keeps_threads),
        cmocka_unit_test(test_two_at_once),
        cmocka_unit_test(test_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
