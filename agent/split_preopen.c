/*
 * split_preopen.c -- Fence's writer open started beside journal version 1
 * (split_preopen.h says why it is sound).
 */
#include "split_preopen.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct preopen {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int verdict;               /* 0 waiting, 1 fence, -1 cancelled */
    bool finished;             /* preopen_finish() took the result */
    const char *uri;
    shale_options opts;
    uint64_t hint;
    bool latest;               /* hint was the latest a moment ago */
    shale_db *db;              /* the open's result */
    shale_status rc;
    char msg[1024];
};

/* The barrier: the open waits here, its reads done and nothing written
 * but the probe's objects, for the worker's Fence (or a cancel). */
static shale_status wait_verdict(void *ctx)
{
    preopen *p = ctx;
    pthread_mutex_lock(&p->mu);
    while (!p->verdict)
        pthread_cond_wait(&p->cv, &p->mu);
    int v = p->verdict;
    pthread_mutex_unlock(&p->mu);
    if (v < 0)
        return shale_error_set(SHALE_CLOSED, "%s: the split's open was cancelled before "
                                                "Fence (nothing fenced)", p->uri);
    return SHALE_OK;
}

static void *open_main(void *arg)
{
    preopen *p = arg;
    p->rc = p->latest ? shale_open_at_latest_fenced_after(p->uri, &p->opts, p->hint,
                                                          wait_verdict, p, &p->db)
                      : shale_open_at_fenced_after(p->uri, &p->opts, p->hint, wait_verdict, p,
                                                   &p->db);
    if (p->rc)
        snprintf(p->msg, sizeof p->msg, "%s", shale_errmsg());
    return NULL;
}

preopen *preopen_start(const char *uri, const shale_options *opts, uint64_t hint, bool latest)
{
    preopen *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->uri = uri;
    p->opts = *opts;
    p->hint = hint;
    p->latest = latest && hint;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->th, NULL, open_main, p)) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

static void set_verdict(preopen *p, int v)
{
    pthread_mutex_lock(&p->mu);
    if (!p->verdict)
        p->verdict = v;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

shale_status preopen_finish(preopen *p, shale_db **db)
{
    *db = NULL;
    if (p->finished)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "%s: the split's open was taken",
                               p->uri);
    set_verdict(p, 1);
    pthread_join(p->th, NULL);
    p->finished = true;
    if (p->rc)
        return shale_error_set(p->rc, "%s", p->msg);
    *db = p->db;
    p->db = NULL;
    return SHALE_OK;
}

void preopen_free(preopen *p)
{
    if (!p)
        return;
    if (!p->finished) {
        set_verdict(p, -1);
        pthread_join(p->th, NULL);
        /* The barrier refused, so nothing was opened -- unless the open
         * failed or the verdict was fence already: close what there is. */
        shale_close(p->db);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
