/* kube_queue.c -- see kube_queue.h.  Small linked lists: a controller of
 * one shard has a handful of objects, so linear scans are cheaper than
 * any index. */
#include "kube_queue.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct item {
    struct item *next;
    char *key;
    int64_t due_ms;           /* delayed items only */
} item;

typedef struct failures {
    struct failures *next;
    char *key;
    uint32_t n;
} failures;

struct kube_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t base_ms, max_ms;
    item *ready, *ready_tail;  /* FIFO of queued keys */
    item *delayed;             /* keys waiting for due_ms */
    item *processing;          /* keys handed out, not yet done */
    item *dirty;               /* added while processing */
    failures *fails;
    bool shutdown;
};

static item *find(item *l, const char *key)
{
    for (; l; l = l->next)
        if (!strcmp(l->key, key))
            return l;
    return NULL;
}

static bool unlink_key(item **l, const char *key, item **out)
{
    for (item **p = l; *p; p = &(*p)->next)
        if (!strcmp((*p)->key, key)) {
            *out = *p;
            *p = (*p)->next;
            (*out)->next = NULL;
            return true;
        }
    return false;
}

static void free_list(item *l)
{
    while (l) {
        item *n = l->next;
        free(l->key);
        free(l);
        l = n;
    }
}

static item *new_item(const char *key)
{
    item *i = calloc(1, sizeof *i);
    if (i && !(i->key = agent_strdup(key))) {
        free(i);
        i = NULL;
    }
    return i;
}

shale_status kube_queue_new(uint32_t base_ms, uint32_t max_ms, kube_queue **out)
{
    kube_queue *q = calloc(1, sizeof *q);
    if (!q)
        return AGENT_OOM();
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->base_ms = base_ms ? base_ms : 1;
    q->max_ms = max_ms > q->base_ms ? max_ms : q->base_ms;
    *out = q;
    return SHALE_OK;
}

void kube_queue_free(kube_queue *q)
{
    if (!q)
        return;
    free_list(q->ready);
    free_list(q->delayed);
    free_list(q->processing);
    free_list(q->dirty);
    for (failures *f = q->fails, *n; f; f = n) {
        n = f->next;
        free(f->key);
        free(f);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

/* Queues key now (dirty if it is being processed).  Locked. */
static void add_locked(kube_queue *q, const char *key)
{
    if (q->shutdown || find(q->ready, key) || find(q->dirty, key))
        return;
    item *i = new_item(key);
    if (!i)
        return;   /* out of memory: the next event or resync adds it again */
    if (find(q->processing, key)) {
        i->next = q->dirty;
        q->dirty = i;
        return;
    }
    if (q->ready_tail)
        q->ready_tail->next = i;
    else
        q->ready = i;
    q->ready_tail = i;
    pthread_cond_broadcast(&q->cv);
}

void kube_queue_add(kube_queue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    item *d = NULL;
    if (unlink_key(&q->delayed, key, &d)) {   /* due now: no need to wait */
        free(d->key);
        free(d);
    }
    add_locked(q, key);
    pthread_mutex_unlock(&q->mu);
}

void kube_queue_add_after(kube_queue *q, const char *key, uint32_t delay_ms)
{
    if (!delay_ms) {
        kube_queue_add(q, key);
        return;
    }
    pthread_mutex_lock(&q->mu);
    int64_t due = agent_mono_ms() + delay_ms;
    item *d = find(q->delayed, key);
    if (d) {
        if (due < d->due_ms)
            d->due_ms = due;
    } else if (!q->shutdown && (d = new_item(key))) {
        d->due_ms = due;
        d->next = q->delayed;
        q->delayed = d;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static failures *fails_of(kube_queue *q, const char *key, bool create)
{
    for (failures *f = q->fails; f; f = f->next)
        if (!strcmp(f->key, key))
            return f;
    if (!create)
        return NULL;
    failures *f = calloc(1, sizeof *f);
    if (f && !(f->key = agent_strdup(key))) {
        free(f);
        return NULL;
    }
    if (f) {
        f->next = q->fails;
        q->fails = f;
    }
    return f;
}

static uint32_t backoff_locked(kube_queue *q, uint32_t n)
{
    uint64_t d = q->base_ms;
    for (uint32_t i = 0; i < n && d < q->max_ms; i++)
        d *= 2;
    return d < q->max_ms ? (uint32_t)d : q->max_ms;
}

uint32_t kube_queue_next_backoff(kube_queue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    failures *f = fails_of(q, key, false);
    uint32_t d = backoff_locked(q, f ? f->n : 0);
    pthread_mutex_unlock(&q->mu);
    return d;
}

uint32_t kube_queue_failures(kube_queue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    failures *f = fails_of(q, key, false);
    uint32_t n = f ? f->n : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

uint32_t kube_queue_add_rate_limited(kube_queue *q, const char *key, uint32_t min_ms)
{
    pthread_mutex_lock(&q->mu);
    failures *f = fails_of(q, key, true);
    uint32_t d = backoff_locked(q, f ? f->n : 0);
    if (f && f->n < 64)
        f->n++;
    pthread_mutex_unlock(&q->mu);
    if (d < min_ms)
        d = min_ms;
    kube_queue_add_after(q, key, d);
    return d;
}

void kube_queue_forget(kube_queue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    for (failures **p = &q->fails; *p; p = &(*p)->next)
        if (!strcmp((*p)->key, key)) {
            failures *f = *p;
            *p = f->next;
            free(f->key);
            free(f);
            break;
        }
    pthread_mutex_unlock(&q->mu);
}

/* Moves delayed keys that are due to the ready list; returns the earliest
 * due time left (INT64_MAX if none).  Locked. */
static int64_t promote_locked(kube_queue *q)
{
    int64_t now = agent_mono_ms(), next = INT64_MAX;
    for (item **p = &q->delayed; *p;) {
        item *d = *p;
        if (d->due_ms <= now) {
            *p = d->next;
            add_locked(q, d->key);
            free(d->key);
            free(d);
            continue;
        }
        if (d->due_ms < next)
            next = d->due_ms;
        p = &d->next;
    }
    return next;
}

bool kube_queue_get(kube_queue *q, int64_t wait_ms, char **key)
{
    *key = NULL;
    int64_t deadline = wait_ms < 0 ? INT64_MAX : agent_mono_ms() + wait_ms;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shutdown)
            break;
        int64_t next = promote_locked(q);
        if (q->ready) {
            item *i = q->ready;
            q->ready = i->next;
            if (!q->ready)
                q->ready_tail = NULL;
            i->next = q->processing;
            q->processing = i;
            *key = agent_strdup(i->key);
            break;
        }
        int64_t until = next < deadline ? next : deadline;
        if (until <= agent_mono_ms())
            break;
        if (until == INT64_MAX) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts;
            ts.tv_sec = until / 1000;
            ts.tv_nsec = (long)(until % 1000) * 1000000L;
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return *key != NULL;
}

void kube_queue_done(kube_queue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    item *i = NULL;
    if (unlink_key(&q->processing, key, &i)) {
        free(i->key);
        free(i);
    }
    if (unlink_key(&q->dirty, key, &i)) {
        add_locked(q, i->key);
        free(i->key);
        free(i);
    }
    pthread_mutex_unlock(&q->mu);
}

void kube_queue_shutdown(kube_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->shutdown = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t kube_queue_len(kube_queue *q)
{
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    promote_locked(q);
    for (item *i = q->ready; i; i = i->next)
        n++;
    pthread_mutex_unlock(&q->mu);
    return n;
}
