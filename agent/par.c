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
} par_job;

static void par_worker(void *arg)
{
    par_job *j = arg;
    for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;)
        if ((j->rcs[i] = j->fn(j->ctx, i)))
            snprintf(j->msgs[i], sizeof j->msgs[i], "%s", shale_errmsg());
}

shale_status par_for(size_t n, par_fn fn, void *ctx, size_t *failed)
{
    if (n == 1) {   /* no thread for one item */
        if (failed)
            *failed = 0;
        return fn(ctx, 0);
    }
    par_job j = {n, fn, ctx, 0, calloc(n ? n : 1, sizeof(shale_status)),
                 calloc(n ? n : 1, 512)};
    if (!j.rcs || !j.msgs) {
        free(j.rcs);
        free(j.msgs);
        return AGENT_OOM();
    }
    size_t nth = n < PAR_THREADS ? n : PAR_THREADS;
    workpool_for(nth, par_worker, &j);   /* this thread works too */
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
