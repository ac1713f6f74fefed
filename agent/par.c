/*
 * par.c -- par_for() (see par.h): threads taking items by an atomic
 * counter; each item's status and message kept apart, because
 * shale_errmsg() is per thread.  The helpers are the process's pool
 * threads (workpool.h), started by the first split's phases and woken by
 * the later ones, not started and joined per phase.
 */
#include "par.h"
#include "agent_util.h"
#include "workpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct par_job {
    size_t n;
    par_fn fn;
    void *ctx;
    _Atomic size_t next;
    shale_status *rcs;
    char (*msgs)[512];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t running;              /* helpers not yet done */
} par_job;

static void *par_worker(void *arg)
{
    par_job *j = arg;
    for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;)
        if ((j->rcs[i] = j->fn(j->ctx, i)))
            snprintf(j->msgs[i], sizeof j->msgs[i], "%s", shale_errmsg());
    return NULL;
}

static void par_helper(void *arg)
{
    par_worker(arg);
}

/* After the helper counts as idle in the pool: par_for() returns with its
 * helpers ready for the next call. */
static void par_helper_done(void *arg)
{
    par_job *j = arg;
    pthread_mutex_lock(&j->mu);
    if (!--j->running)
        pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

shale_status par_for(size_t n, par_fn fn, void *ctx, size_t *failed)
{
    if (n == 1) {   /* no thread for one item */
        if (failed)
            *failed = 0;
        return fn(ctx, 0);
    }
    par_job j = {n, fn, ctx, 0, calloc(n ? n : 1, sizeof(shale_status)),
                 calloc(n ? n : 1, 512), PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                 0};
    if (!j.rcs || !j.msgs) {
        free(j.rcs);
        free(j.msgs);
        return AGENT_OOM();
    }
    size_t nth = n < PAR_THREADS ? n : PAR_THREADS;
    workpool_task tasks[PAR_THREADS];
    for (size_t t = 0; t + 1 < nth; t++) {
        tasks[t] = (workpool_task){par_helper, par_helper_done, &j, NULL};
        pthread_mutex_lock(&j.mu);   /* counted before the helper can end */
        j.running++;
        pthread_mutex_unlock(&j.mu);
        if (!workpool_run(&tasks[t])) {
            pthread_mutex_lock(&j.mu);
            j.running--;
            pthread_mutex_unlock(&j.mu);
            break;   /* fewer helpers: the items still all run, here */
        }
    }
    par_worker(&j);   /* this thread works too */
    pthread_mutex_lock(&j.mu);
    while (j.running)
        pthread_cond_wait(&j.cv, &j.mu);
    pthread_mutex_unlock(&j.mu);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < n && !rc; i++)
        if (j.rcs[i]) {
            rc = shale_error_set(j.rcs[i], "%s", j.msgs[i]);
            if (failed)
                *failed = i;
        }
    free(j.rcs);
    free(j.msgs);
    return rc;
}
