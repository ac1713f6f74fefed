/*
 * workpool.c -- workpool_run() (see workpool.h): idle threads wait on one
 * condition variable for a list of handed-over tasks.  A task is pushed
 * only when an idle thread not yet claimed by an earlier push exists
 * (idle > queued), so every pushed task is taken at once; otherwise a new
 * thread starts with the task as its first.
 */
#include "workpool.h"

#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static workpool_task *queue;   /* handed over, not yet taken */
static size_t idle, queued, started;

static void *pool_main(void *arg)
{
    workpool_task *t = arg;
    for (;;) {
        /* Read before the calls: the caller may reuse *t once done ran. */
        void (*fn)(void *) = t->fn, (*done)(void *) = t->done;
        void *a = t->arg;
        fn(a);
        pthread_mutex_lock(&mu);
        bool stay = idle < WORKPOOL_IDLE_MAX;
        if (stay)
            idle++;   /* before done: the caller's next batch finds it idle */
        pthread_mutex_unlock(&mu);
        if (done)
            done(a);
        if (!stay)
            return NULL;
        /* Counted idle but not yet waiting: a task pushed meanwhile is in
         * the queue, which is looked at before any wait. */
        pthread_mutex_lock(&mu);
        while (!queue)
            pthread_cond_wait(&cv, &mu);
        t = queue;
        queue = t->next;
        queued--;
        idle--;
        pthread_mutex_unlock(&mu);
    }
}

bool workpool_run(workpool_task *t)
{
    pthread_mutex_lock(&mu);
    if (idle > queued) {
        t->next = queue;
        queue = t;
        queued++;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        return true;
    }
    pthread_mutex_unlock(&mu);
    pthread_attr_t at;
    pthread_t th;
    if (pthread_attr_init(&at))
        return false;
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    bool ok = !pthread_create(&th, &at, pool_main, t);
    pthread_attr_destroy(&at);
    if (ok) {
        pthread_mutex_lock(&mu);
        started++;
        pthread_mutex_unlock(&mu);
    }
    return ok;
}

size_t workpool_started(void)
{
    pthread_mutex_lock(&mu);
    size_t n = started;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t workpool_idle(void)
{
    pthread_mutex_lock(&mu);
    size_t n = idle;
    pthread_mutex_unlock(&mu);
    return n;
}
