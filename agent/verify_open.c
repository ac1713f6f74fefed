/* verify_open.c -- see verify_open.h. */
#include "verify_open.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct open_item {
    shale_reader *r;
    const shale_manifest_sst *h;
} open_item;

typedef struct open_list {
    open_item *it;
    size_t n, cap;
} open_list;

static shale_status add_opens(open_list *l, shale_reader *r, const shale_manifest_view *m)
{
    for (size_t lv = 0; lv <= m->run_count; lv++) {
        const shale_manifest_sst *h = lv == 0 ? m->l0 : m->runs[lv - 1].ssts;
        size_t cnt = lv == 0 ? m->l0_count : m->runs[lv - 1].count;
        for (size_t k = 0; k < cnt; k++) {
            if (l->n == l->cap) {
                size_t nc = l->cap ? l->cap * 2 : 64;
                open_item *g = realloc(l->it, nc * sizeof *g);
                if (!g)
                    return AGENT_OOM();
                l->it = g;
                l->cap = nc;
            }
            l->it[l->n++] = (open_item){r, &h[k]};
        }
    }
    return SHALE_OK;
}

static shale_status open_one(void *ctx, size_t i)
{
    const open_item *x = &((open_list *)ctx)->it[i];
    shale_status rc = shale_reader_open_sst(x->r, x->h);
    return rc ? shale_error_prefix(rc, "verify: opening SST %s", x->h->id) : SHALE_OK;
}

/* Up to OPEN_THREADS opens at once: each is two requests that wait on
 * the store, and there are (children + 1) x SSTs of them; par_for's bound
 * (sized for one request per child) would make them queue. */
#define OPEN_THREADS 128

typedef struct open_pool_job {
    open_list *l;
    _Atomic size_t next;
    _Atomic int failed;          /* an shale_status, first failure */
    char msg[512];
    pthread_mutex_t mu;
} open_pool_job;

static void *open_worker(void *arg)
{
    open_pool_job *j = arg;
    for (size_t i; !atomic_load(&j->failed) && (i = atomic_fetch_add(&j->next, 1)) < j->l->n;) {
        shale_status rc = open_one(j->l, i);
        if (rc) {
            pthread_mutex_lock(&j->mu);
            if (!atomic_load(&j->failed)) {
                snprintf(j->msg, sizeof j->msg, "%s", shale_errmsg());
                atomic_store(&j->failed, (int)rc);
            }
            pthread_mutex_unlock(&j->mu);
        }
    }
    return NULL;
}

static shale_status open_pool(open_list *l)
{
    open_pool_job j;
    memset(&j, 0, sizeof j);
    j.l = l;
    pthread_mutex_init(&j.mu, NULL);
    size_t nth = l->n < OPEN_THREADS ? l->n : OPEN_THREADS, started = 0;
    pthread_t th[OPEN_THREADS];
    while (started + 1 < nth && !pthread_create(&th[started], NULL, open_worker, &j))
        started++;
    open_worker(&j);
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.mu);
    int f = atomic_load(&j.failed);
    return f ? shale_error_set((shale_status)f, "%s", j.msg) : SHALE_OK;
}

shale_status verify_open_ssts(shale_reader *parent, const shale_manifest_view *pinned,
                              shale_reader *const *children, const shale_manifest_view *const *cms,
                              size_t n)
{
    open_list l = {NULL, 0, 0};
    shale_status rc = add_opens(&l, parent, pinned);
    for (size_t i = 0; !rc && i < n; i++)
        rc = add_opens(&l, children[i], cms[i]);
    if (!rc && l.n)
        rc = open_pool(&l);
    free(l.it);
    return rc;
}

