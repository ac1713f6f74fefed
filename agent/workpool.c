/*
 * workpool.c -- workpool_run() (see workpool.h): idle threads wait on one
 * condition variable for a list of handed-over tasks.  A task is pushed
 * only when an idle thread not yet claimed by an earlier push exists
 * (idle > queued), so every pushed task is taken at once; otherwise a new
 * thread starts with the task as its first.
 */
#include "workpool.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static workpool_task *queue;   /* handed over, not yet taken */
static size_t idle, queued, started;

/* A forked child has none of the parent's threads: its pool starts empty
 * (else a task would be queued for an idle thread that is not there). */
static void pool_after_fork(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&cv, NULL);
    queue = NULL;
    idle = queued = 0;
}

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork);
}

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
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, pool_init);
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

typedef struct batch {
    void (*worker)(void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t running;   /* handed-over calls not yet done */
} batch;

static void batch_run(void *arg)
{
    batch *b = arg;
    b->worker(b->arg);
}

/* After the thread counts as idle in the pool (workpool_task.done). */
static void batch_done(void *arg)
{
    batch *b = arg;
    pthread_mutex_lock(&b->mu);
    if (!--b->running)
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void workpool_for(size_t nthreads, void (*worker)(void *arg), void *arg)
{
    if (nthreads > WORKPOOL_BATCH_MAX)
        nthreads = WORKPOOL_BATCH_MAX;
    batch b = {worker, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    workpool_task tasks[WORKPOOL_BATCH_MAX];
    for (size_t t = 0; t + 1 < nthreads; t++) {
        tasks[t] = (workpool_task){batch_run, batch_done, &b, NULL};
        pthread_mutex_lock(&b.mu);   /* counted before the call can end */
        b.running++;
        pthread_mutex_unlock(&b.mu);
        if (!workpool_run(&tasks[t])) {
            pthread_mutex_lock(&b.mu);
            b.running--;
            pthread_mutex_unlock(&b.mu);
            break;
        }
    }
    worker(arg);   /* the caller's share */
    pthread_mutex_lock(&b.mu);
    while (b.running)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
}
