/*
 * crew.c -- the engine's kept threads (crew.h).
 *
 * Each thread has a slot with its own condition variable: crew_for hands a
 * slot its worker and wakes exactly that thread (no thundering herd of
 * idle threads on a shared condition), then runs the worker itself and
 * waits for the batch's count to reach zero.  A thread puts itself back on
 * the idle list before it counts its batch done, so the caller's next
 * batch finds it idle.  All state is under one mutex.
 */
#include "util/crew.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct crew_batch {
    size_t left;              /* crew calls not yet returned, under mu */
    /* The caller's own: with many batches at once (every Verify window
     * prefetches its levels through a batch of its own) one shared
     * condition broadcast at each batch's end woke every waiting caller. */
    pthread_cond_t cv;
} crew_batch;

typedef struct slot {
    pthread_cond_t cv;
    void (*fn)(void *);       /* under mu; NULL while idle */
    void *arg;
    crew_batch *batch;
    struct slot *next;        /* the idle list */
} slot;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slot *idle_list;
static size_t idle_n, started_n;

/* A forked child has none of the parent's threads: its crew starts empty
 * (else a batch would hand work to a slot whose thread is not there and
 * wait for it forever).  The parent's slots are left, not freed: their
 * condition variables may be in any state. */
static void crew_after_fork(void)
{
    pthread_mutex_init(&mu, NULL);
    idle_list = NULL;
    idle_n = 0;
}

static void crew_init(void)
{
    pthread_atfork(NULL, NULL, crew_after_fork);
}

static void *crew_main(void *arg)
{
    slot *s = arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!s->fn)
            pthread_cond_wait(&s->cv, &mu);
        void (*fn)(void *) = s->fn;
        void *a = s->arg;
        pthread_mutex_unlock(&mu);
        fn(a);
        pthread_mutex_lock(&mu);
        crew_batch *b = s->batch;
        s->fn = NULL;
        s->batch = NULL;
        bool stay = idle_n < CREW_IDLE_MAX;
        if (stay) {
            s->next = idle_list;
            idle_list = s;
            idle_n++;
        }
        /* The batch lives on the caller's stack: it is not touched after
         * the signal, and the caller cannot see the count (nor destroy
         * the condition) before unlock. */
        if (!--b->left)
            pthread_cond_signal(&b->cv);
        if (!stay)
            break;
    }
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return NULL;
}

/* An idle slot, or a new thread's (NULL when none could be had).  Called
 * under mu; the slot comes back busy with fn set. */
static slot *take(void (*fn)(void *), void *arg, crew_batch *b)
{
    slot *s = idle_list;
    if (s) {
        idle_list = s->next;
        idle_n--;
    } else {
        if (!(s = calloc(1, sizeof *s)))
            return NULL;
        if (pthread_cond_init(&s->cv, NULL)) {
            free(s);
            return NULL;
        }
        pthread_t th;
        pthread_attr_t at;
        bool ok = !pthread_attr_init(&at);
        ok = ok && !pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        /* Set before the thread runs: it reads them under mu, held here. */
        s->fn = fn;
        s->arg = arg;
        s->batch = b;
        ok = ok && !pthread_create(&th, &at, crew_main, s);
        pthread_attr_destroy(&at);
        if (!ok) {
            pthread_cond_destroy(&s->cv);
            free(s);
            return NULL;
        }
        started_n++;
        return s;
    }
    s->fn = fn;
    s->arg = arg;
    s->batch = b;
    pthread_cond_signal(&s->cv);
    return s;
}

void crew_for(size_t nthreads, void (*worker)(void *arg), void *arg)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crew_init);
    if (nthreads > CREW_BATCH_MAX)
        nthreads = CREW_BATCH_MAX;
    crew_batch b = {0};
    if (nthreads > 1 && pthread_cond_init(&b.cv, NULL))
        nthreads = 1;   /* no condition to wait on: the caller alone */
    pthread_mutex_lock(&mu);
    for (size_t i = 1; i < nthreads; i++) {
        if (!take(worker, arg, &b))
            break;
        b.left++;
    }
    pthread_mutex_unlock(&mu);
    worker(arg);
    pthread_mutex_lock(&mu);
    while (b.left)
        pthread_cond_wait(&b.cv, &mu);
    pthread_mutex_unlock(&mu);
    if (nthreads > 1)
        pthread_cond_destroy(&b.cv);
}

typedef struct crew_pair {
    void (*fn[2])(void *);
    void *arg[2];
    _Atomic int next;
} crew_pair;

/* Each thread of the batch takes the next of the two; the caller's, when
 * it is alone, takes both. */
static void pair_worker(void *arg)
{
    crew_pair *p = arg;
    for (int i; (i = atomic_fetch_add(&p->next, 1)) < 2;)
        p->fn[i](p->arg[i]);
}

void crew_two(void (*a)(void *), void *aa, void (*b)(void *), void *ba)
{
    crew_pair p = {{a, b}, {aa, ba}, 0};
    crew_for(2, pair_worker, &p);
}

size_t crew_started(void)
{
    pthread_mutex_lock(&mu);
    size_t n = started_n;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t crew_idle(void)
{
    pthread_mutex_lock(&mu);
    size_t n = idle_n;
    pthread_mutex_unlock(&mu);
    return n;
}
